/**
 * How often a phone may move the version clock (issue 15): a phone's keep-alive
 * version that is ABOVE everything this call manager has seen advances its
 * clock (version-clock.ts), and every advance may cost a write of the version
 * reservation to flash (version-lease.ts). Versions at or below what was seen —
 * the keep-alives of every phone holding a list of this group — cost nothing and
 * are not limited.
 *
 * Rule: one advancing report per phone per {@link REPORT_GAP_MS} (1 s: a phone's
 * keep-alive interval is a second or more in the field; a phone sending faster
 * gains nothing), and — because the phone id on the shared keep-alive topic is
 * only what the payload claims — at most {@link REPORTS_PER_SECOND} advancing
 * reports a second from all phones together. Legitimate advances are rare (a
 * phone arriving with a list from a peer whose clock runs ahead: the first one
 * moves the clock, every later one is at or below it), so neither limit delays
 * a real one for long; a refused report is simply not observed (the phone's
 * version is judged again at its next keep-alive).
 *
 * Memory: at most {@link MAX_TRACKED} phones are remembered, the least recently
 * reporting forgotten first (Map insertion order). Pure: time is passed in (ms).
 */

/** Least gap between two advancing reports of one phone (ms). */
export const REPORT_GAP_MS = 1000;
/** Most advancing reports a second from all phones together. */
export const REPORTS_PER_SECOND = 50;
/** Phones remembered (bounded memory). */
export const MAX_TRACKED = 10_000;

export interface ReportLimiterOptions {
  gapMs?: number;
  perSecond?: number;
  maxTracked?: number;
}

export class ReportLimiter {
  readonly #gapMs: number;
  readonly #perSecond: number;
  readonly #maxTracked: number;
  /** Phone → time of its last accepted report; oldest first. */
  readonly #last = new Map<string, number>();
  #second = -1;
  #inSecond = 0;
  /** Reports refused. */
  refused = 0;

  constructor(o: ReportLimiterOptions = {}) {
    this.#gapMs = o.gapMs ?? REPORT_GAP_MS;
    this.#perSecond = o.perSecond ?? REPORTS_PER_SECOND;
    this.#maxTracked = Math.max(1, o.maxTracked ?? MAX_TRACKED);
  }

  /** Phones remembered now (≤ maxTracked). */
  get tracked(): number {
    return this.#last.size;
  }

  /** May `phone` move the clock at `now`? Counts it when yes. */
  allow(phone: string, now: number): boolean {
    const last = this.#last.get(phone);
    const sec = Math.floor(now / 1000);
    if (sec !== this.#second) {
      this.#second = sec;
      this.#inSecond = 0;
    }
    if ((last !== undefined && now - last < this.#gapMs) || this.#inSecond >= this.#perSecond) {
      this.refused++;
      return false;
    }
    this.#inSecond++;
    if (last !== undefined) this.#last.delete(phone);
    else if (this.#last.size >= this.#maxTracked) this.#last.delete(this.#last.keys().next().value!);
    this.#last.set(phone, now);
    return true;
  }
}
