/**
 * Time as an input. Everything that waits takes a {@link Clock}; unit tests
 * pass a {@link FakeClock} and advance it, so no test sleeps.
 *
 * Two clocks, because they answer different questions. {@link Clock.now} is
 * the wall clock: what a signed body's `expires` and a log line mean. NTP (or
 * an operator, or a board without an RTC booting in 1970) steps it by hours.
 * {@link Clock.elapsed} is monotonic: every deadline, hold-down, backoff, rate
 * limit and measured duration runs on it, so a wall-clock step changes none
 * of them (issue 10, "Deadlines follow the wall clock").
 */

/** Opaque timer handle returned by {@link Clock.setTimeout}. */
export type TimerHandle = { readonly __timer: unique symbol } | object;

export interface Clock {
  /** Wall clock: milliseconds since the epoch. May step either way; use it only where wall time is meant. */
  now(): number;
  /**
   * Monotonic milliseconds since an arbitrary origin (near 0 at process start):
   * never steps, only differences mean anything. For deadlines and durations.
   */
  elapsed(): number;
  /** Run `fn` once after `ms` milliseconds of {@link Clock.elapsed} time (clamped to ≥ 0). */
  setTimeout(fn: () => void, ms: number): TimerHandle;
  /** Cancel a timer; a no-op for a timer that already ran or was cancelled. */
  clearTimeout(handle: TimerHandle): void;
}

/** Source of uniformly distributed numbers in [0, 1). Injected for jitter. */
export type Random = () => number;

/** The real clock. Timers are unref'd so they never keep a process alive. */
export const systemClock: Clock = {
  now: () => Date.now(),
  // performance.now() reads CLOCK_MONOTONIC (libuv's hrtime), as Node's own timers do; cheap enough per keep-alive.
  elapsed: () => performance.now(),
  setTimeout(fn, ms) {
    const t = setTimeout(fn, Math.max(0, ms));
    t.unref();
    return t;
  },
  clearTimeout(handle) {
    clearTimeout(handle as NodeJS.Timeout);
  },
};

interface FakeTimer {
  id: number;
  at: number;
  fn: () => void;
}

/**
 * Virtual time for tests: timers run only inside {@link FakeClock.advance},
 * in due order (ties by creation order). One per test.
 *
 * The two clocks move together in {@link FakeClock.advance} (time passing)
 * and apart in {@link FakeClock.stepWall} (an NTP step): timers follow the
 * monotonic clock only.
 */
export class FakeClock implements Clock {
  #wall: number;
  #mono: number;
  #timers: FakeTimer[] = [];
  #nextId = 1;

  /**
   * @param start wall clock at creation (ms since the epoch)
   * @param elapsedStart monotonic clock at creation (ms); 0 as for a process just started
   */
  constructor(start = 1_700_000_000_000, elapsedStart = 0) {
    this.#wall = start;
    this.#mono = elapsedStart;
  }

  now(): number {
    return this.#wall;
  }

  elapsed(): number {
    return this.#mono;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const timer: FakeTimer = { id: this.#nextId++, at: this.#mono + Math.max(0, ms), fn };
    this.#timers.push(timer);
    return timer;
  }

  clearTimeout(handle: TimerHandle): void {
    this.#timers = this.#timers.filter((t) => t !== handle);
  }

  /** Number of timers not yet run. */
  get pending(): number {
    return this.#timers.length;
  }

  /** Let `ms` pass on both clocks, running every timer that falls due on the way. */
  advance(ms: number): void {
    const end = this.#mono + ms;
    for (;;) {
      let next: FakeTimer | undefined;
      for (const t of this.#timers) {
        if (t.at <= end && (next === undefined || t.at < next.at || (t.at === next.at && t.id < next.id))) next = t;
      }
      if (next === undefined) break;
      this.#timers = this.#timers.filter((t) => t !== next);
      const to = Math.max(this.#mono, next.at);
      this.#wall += to - this.#mono;
      this.#mono = to;
      next.fn();
    }
    this.#wall += end - this.#mono;
    this.#mono = end;
  }

  /** Step the wall clock by `ms` (either sign) as NTP would; the monotonic clock and timers do not move. */
  stepWall(ms: number): void {
    this.#wall += ms;
  }
}

/** A deterministic {@link Random} (mulberry32) for tests and repeatable runs. */
export function seededRandom(seed: number): Random {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
