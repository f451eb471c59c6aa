/**
 * The phones homed to this call manager: phone → { lastSeen, busy, intervalMs }.
 *
 * A phone counts as homed while a non-probe keep-alive from it was seen within
 * the last {@link HOMED_INTERVALS} of its keep-alive intervals. Entries past
 * that are dropped by {@link PhoneTable.sweep} (called periodically and before
 * counting), so memory stays bounded by the phones that are really here.
 * Pure: time is passed in as `now` (ms).
 */

/** A phone is homed while its last keep-alive is at most this many intervals old. */
export const HOMED_INTERVALS = 2;

export interface HomedPhone {
  readonly phone: string;
  readonly busy: boolean;
  /** ms timestamp of the last non-probe keep-alive. */
  readonly lastSeen: number;
  /** The phone's keep-alive interval (ms): it leaves the table {@link HOMED_INTERVALS} of them after it left. */
  readonly intervalMs?: number;
}

interface Row {
  lastSeen: number;
  busy: boolean;
  intervalMs: number;
}

export class PhoneTable {
  readonly #rows = new Map<string, Row>();
  readonly #defaultIntervalMs: number;

  /** @param defaultIntervalMs keep-alive interval assumed when a phone does not say (ms, > 0). */
  constructor(defaultIntervalMs: number) {
    this.#defaultIntervalMs = defaultIntervalMs;
  }

  /**
   * Record a non-probe keep-alive. Returns true when the phone was NOT homed
   * before it (a new arrival). Mutates the existing row in place: this runs
   * for every keep-alive.
   */
  touch(phone: string, busy: boolean, intervalMs: number | undefined, now: number): boolean {
    const iv = intervalMs ?? this.#defaultIntervalMs;
    const row = this.#rows.get(phone);
    if (row === undefined) {
      this.#rows.set(phone, { lastSeen: now, busy, intervalMs: iv });
      return true;
    }
    const wasHomed = now - row.lastSeen <= HOMED_INTERVALS * row.intervalMs;
    row.lastSeen = now;
    row.busy = busy;
    row.intervalMs = iv;
    return !wasHomed;
  }

  /** True while `phone` is homed here at `now`. */
  isHomed(phone: string, now: number): boolean {
    const row = this.#rows.get(phone);
    return row !== undefined && now - row.lastSeen <= HOMED_INTERVALS * row.intervalMs;
  }

  /** Drop every phone no longer homed at `now`. Returns how many were dropped. */
  sweep(now: number): number {
    let dropped = 0;
    for (const [phone, row] of this.#rows) {
      if (now - row.lastSeen > HOMED_INTERVALS * row.intervalMs) {
        this.#rows.delete(phone);
        dropped++;
      }
    }
    return dropped;
  }

  /** Number of phones homed at `now` (sweeps first). */
  count(now: number): number {
    this.sweep(now);
    return this.#rows.size;
  }

  /** Rows held, homed or not yet swept (for bounded-memory checks). */
  get size(): number {
    return this.#rows.size;
  }

  /** The phones homed at `now`, for the rebalancer. */
  *homedPhones(now: number): Iterable<HomedPhone> {
    for (const [phone, row] of this.#rows) {
      if (now - row.lastSeen <= HOMED_INTERVALS * row.intervalMs) yield { phone, busy: row.busy, lastSeen: row.lastSeen, intervalMs: row.intervalMs };
    }
  }
}
