/**
 * The liveness challenges waiting for this call manager's answer
 * (`P/cm/{cmId}/challenge/{from}`, protocol/cm-liveness.ts): who asked, and
 * when each may be answered. Pure: challenges and the monotonic time in,
 * the ones to answer now out; the call manager signs and publishes them.
 *
 * Every answer is an Ed25519 signature, and anyone who may publish a
 * challenge may ask for one, so:
 *
 * - one pending challenge per challenger: a newer one replaces it (the
 *   receiver holds its newest few), so a hostile phone holds one place in
 *   the queue however fast it sends;
 * - a challenger is answered at most once per {@link PER_CHALLENGER_GAP_MS}
 *   (a receiver challenges a call manager at most once a second anyway);
 * - at most {@link ANSWERS_PER_SECOND} answers a second for everyone (a
 *   token bucket of one second's worth; an answer costs ~80 µs of signing
 *   here, so the bound is ~4 % of a core), in the order challengers first
 *   asked (first in, first answered; answered ones go to the back): a
 *   challenger that floods waits its turn like anyone, and the others are
 *   answered within the bound of the queue ahead of them;
 * - at most {@link MAX_PENDING} challengers wait; more are dropped (counted)
 *   and ask again (a receiver challenges again at its next unordered online).
 *   With an ACL each challenger is one certificate: the topic names it.
 * - a challenge older than {@link CHALLENGE_TTL_MS} is dropped unanswered:
 *   its receiver would refuse the answer.
 */
import { CHALLENGE_TTL_MS } from '../protocol/cm-liveness.js';

/** Least time between two answers to one challenger (ms). */
export const PER_CHALLENGER_GAP_MS = 1000;
/** Answers a second for all challengers together (and the burst). */
export const ANSWERS_PER_SECOND = 500;
/** Challengers waiting at most. */
export const MAX_PENDING = 10_000;

export interface ChallengeQueueOptions {
  perSecond?: number;
  gapMs?: number;
  maxPending?: number;
}

export class ChallengeQueue {
  readonly #perSecond: number;
  readonly #gapMs: number;
  readonly #maxPending: number;
  /** Challenger → its newest challenge and when that came; insertion order is the order of service. */
  readonly #pending = new Map<string, { challenge: string; at: number }>();
  /** Challenger → when it was last answered, oldest first (pruned once past the gap). */
  readonly #answeredAt = new Map<string, number>();
  #tokens: number;
  #tokensAt = -Infinity;
  #answered = 0;
  #dropped = 0;

  constructor(o: ChallengeQueueOptions = {}) {
    this.#perSecond = o.perSecond ?? ANSWERS_PER_SECOND;
    this.#gapMs = o.gapMs ?? PER_CHALLENGER_GAP_MS;
    this.#maxPending = o.maxPending ?? MAX_PENDING;
    this.#tokens = this.#perSecond;
  }

  /** Challenges answered so far. */
  get answered(): number {
    return this.#answered;
  }

  /** Challenges dropped: the queue was full, or one waited past its validity. */
  get dropped(): number {
    return this.#dropped;
  }

  /** Challengers waiting. */
  get pending(): number {
    return this.#pending.size;
  }

  /** A challenge from `from` at `now`. False when dropped (the queue is full). */
  offer(from: string, challenge: string, now: number): boolean {
    const had = this.#pending.get(from);
    if (had !== undefined) {
      had.challenge = challenge;
      had.at = now;
      return true;
    }
    if (this.#pending.size >= this.#maxPending) {
      this.#dropped++;
      return false;
    }
    this.#pending.set(from, { challenge, at: now });
    return true;
  }

  /** The challenges to answer now, in order (each taken out of the queue). */
  take(now: number): { from: string; challenge: string }[] {
    this.#refill(now);
    while (true) {
      const first = this.#answeredAt.entries().next();
      if (first.done === true || now - first.value[1] < this.#gapMs) break;
      this.#answeredAt.delete(first.value[0]);
    }
    const out: { from: string; challenge: string }[] = [];
    for (const [from, p] of this.#pending) {
      if (now - p.at > CHALLENGE_TTL_MS) {
        this.#pending.delete(from);
        this.#dropped++;
        continue;
      }
      if (this.#tokens < 1) break;
      const last = this.#answeredAt.get(from);
      if (last !== undefined && now - last < this.#gapMs) continue;
      this.#pending.delete(from);
      this.#answeredAt.delete(from);
      this.#answeredAt.set(from, now);
      this.#tokens--;
      this.#answered++;
      out.push({ from, challenge: p.challenge });
    }
    return out;
  }

  /** Ms from `now` until {@link take} may give something, or undefined with nothing waiting. */
  nextIn(now: number): number | undefined {
    if (this.#pending.size === 0) return undefined;
    this.#refill(now);
    if (this.#tokens < 1) return Math.ceil(((1 - this.#tokens) * 1000) / this.#perSecond);
    let soonest = Infinity;
    for (const [from] of this.#pending) {
      const last = this.#answeredAt.get(from);
      if (last === undefined || now - last >= this.#gapMs) return 0;
      soonest = Math.min(soonest, last + this.#gapMs - now);
    }
    return soonest;
  }

  #refill(now: number): void {
    if (this.#tokensAt === -Infinity) this.#tokensAt = now;
    this.#tokens = Math.min(this.#perSecond, this.#tokens + ((now - this.#tokensAt) * this.#perSecond) / 1000);
    this.#tokensAt = now;
  }
}
