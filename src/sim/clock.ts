/**
 * A host's clocks in simulated time, implementing the project's Clock
 * (src/lib/clock.ts): `elapsed()` is monotonic from the process start, `now()`
 * the host's wall clock, which a `clock-step` fault moves. Timers run on the
 * world's queue; while the host is paused (SIGSTOP) they wait and fire at
 * resume; once the process is dead (crash, power cut) they never fire.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { World } from './world.js';

/** The simulated run starts at this wall time (ms since the epoch) on every host. */
export const EPOCH = 1_780_000_000_000;

/** One host's machine state that outlives its processes: its wall offset and whether it is paused. */
export class Host {
  /** Wall clock minus true time (a clock-step fault changes it). */
  wallOffset = 0;
  paused = false;
  /** Callbacks held while paused, run in order at resume. */
  readonly #held: (() => void)[] = [];
  readonly #onResume: (() => void)[] = [];

  constructor(
    readonly world: World,
    readonly id: string,
  ) {}

  wall(): number {
    return EPOCH + this.world.now + this.wallOffset;
  }

  /** Run `fn` now, or at resume when paused. */
  run(fn: () => void): void {
    if (this.paused) this.#held.push(fn);
    else fn();
  }

  pause(): void {
    this.paused = true;
  }

  resume(): void {
    this.paused = false;
    const held = this.#held.splice(0);
    for (const fn of held) fn();
    for (const fn of this.#onResume) fn();
  }

  onResume(fn: () => void): void {
    this.#onResume.push(fn);
  }

  /** Drop what was held (the process died while paused). */
  dropHeld(): void {
    this.#held.length = 0;
  }
}

interface SimTimer {
  fn: () => void;
  cancelled: boolean;
}

/** The clock of one process on a {@link Host}; {@link kill} ends it. */
export class ProcessClock implements Clock {
  readonly #host: Host;
  readonly #start: number;
  #dead = false;

  constructor(host: Host) {
    this.#host = host;
    this.#start = host.world.now;
  }

  get dead(): boolean {
    return this.#dead;
  }

  /** The process is gone: none of its timers fire again. */
  kill(): void {
    this.#dead = true;
  }

  now(): number {
    return this.#host.wall();
  }

  elapsed(): number {
    // A small origin as for a process just started; monotonic, never steps.
    return 1000 + this.#host.world.now - this.#start;
  }

  setTimeout(fn: () => void, ms: number): TimerHandle {
    const t: SimTimer = { fn, cancelled: false };
    const w = this.#host.world;
    w.after(Math.max(0, Math.ceil(ms)), () => {
      if (t.cancelled || this.#dead) return;
      this.#host.run(() => {
        if (t.cancelled || this.#dead) return;
        t.cancelled = true;
        t.fn();
      });
    });
    return t;
  }

  clearTimeout(handle: TimerHandle): void {
    if (handle !== undefined && handle !== null) (handle as SimTimer).cancelled = true;
  }
}
