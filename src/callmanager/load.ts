/**
 * Load measurement and the policy for publishing `P/cm/{cmId}/load`. Pure:
 * every method takes `now` (ms) so tests drive it with a FakeClock.
 */

/**
 * Events per second over a sliding window, kept in one-second buckets (a
 * ring of `windowSec` counters: fixed memory whatever the rate).
 */
export class RateMeter {
  readonly #buckets: Float64Array;
  readonly #windowSec: number;
  /** Second (floor(now/1000)) that bucket `i` counts for, per bucket. */
  readonly #secondOf: Float64Array;
  readonly #start: number;

  /**
   * @param windowSec window length in seconds (≥ 1; default 10)
   * @param startMs time the meter starts (ms); the rate of a young meter is over its age, not the full window
   */
  constructor(startMs: number, windowSec = 10) {
    this.#windowSec = Math.max(1, Math.floor(windowSec));
    this.#buckets = new Float64Array(this.#windowSec);
    this.#secondOf = new Float64Array(this.#windowSec).fill(-1);
    this.#start = startMs;
  }

  /** Count `n` events at `now`. */
  add(now: number, n = 1): void {
    const sec = Math.floor(now / 1000);
    const i = sec % this.#windowSec;
    if (this.#secondOf[i] !== sec) {
      this.#secondOf[i] = sec;
      this.#buckets[i] = 0;
    }
    this.#buckets[i] = (this.#buckets[i] ?? 0) + n;
  }

  /** Events per second over the last `windowSec` one-second buckets (the current one included; fewer while the meter is younger). */
  rate(now: number): number {
    const sec = Math.floor(now / 1000);
    let total = 0;
    for (let i = 0; i < this.#windowSec; i++) {
      const s = this.#secondOf[i] ?? -1;
      if (s > sec - this.#windowSec && s <= sec) total += this.#buckets[i] ?? 0;
    }
    // Divide by the buckets the window covers (the current, partial one included),
    // or by fewer while the meter is younger than the window.
    const covered = Math.max(1, Math.min(this.#windowSec, sec - Math.floor(this.#start / 1000) + 1));
    return total / covered;
  }
}

export interface LoadPolicyOptions {
  /** Publish at least this often (ms; config `rebalance.periodMs`). */
  periodMs: number;
  /** Relative change of `phones` that triggers an early publish (default 0.05 = 5 %). */
  changeRatio?: number;
  /** Minimum gap between two publishes (ms, default 1000). */
  minGapMs?: number;
}

/**
 * When to publish the load: every `periodMs`, and early when the phone count
 * moved by ≥ `changeRatio` since the last publish — never more than once per
 * `minGapMs`.
 */
export class LoadPolicy {
  readonly #periodMs: number;
  readonly #ratio: number;
  readonly #minGapMs: number;
  #lastAt: number | undefined;
  #lastPhones = 0;

  constructor(opts: LoadPolicyOptions) {
    this.#periodMs = opts.periodMs;
    this.#ratio = opts.changeRatio ?? 0.05;
    this.#minGapMs = opts.minGapMs ?? 1000;
  }

  /** True when a load message should go out now. */
  due(phones: number, now: number): boolean {
    if (this.#lastAt === undefined) return true;
    const since = now - this.#lastAt;
    if (since >= this.#periodMs) return true;
    if (since < this.#minGapMs) return false;
    const base = Math.max(1, this.#lastPhones);
    return Math.abs(phones - this.#lastPhones) / base >= this.#ratio;
  }

  /** Record that the load with `phones` was published at `now`. */
  published(phones: number, now: number): void {
    this.#lastAt = now;
    this.#lastPhones = phones;
  }
}
