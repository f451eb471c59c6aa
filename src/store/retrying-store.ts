/**
 * A {@link StateStore} that keeps trying: a failed save is retried with
 * exponential backoff (the newest state wins, older unsaved ones are dropped),
 * and a state directory that cannot be created or listed does not stop the
 * agent — it runs from the config file's list and says so. It tracks what is
 * known to be on flash ({@link RetryingStore.flashed}) and the health of the
 * storage ({@link RetryingStore.storage}) so the status reports only versions
 * a power cut cannot take back (issue 10).
 *
 * No jitter: the flash is the phone's own; there is no herd to spread.
 */
import type { AgentState, StateStore, StorageHealth } from '../agent/ports.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage, isIpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';

/** First retry delay after a failed save (ms). */
export const SAVE_RETRY_BASE_MS = 1000;
/** Longest retry delay (ms): a phone whose flash is full or read-only tries once a minute. */
export const SAVE_RETRY_MAX_MS = 60_000;

export interface RetryingStoreOptions {
  /** The store that touches flash; its `load` rejects with STORE_IO for an unusable directory, `save` with STORE_IO on a failed write. */
  inner: StateStore;
  clock: Clock;
  log: Logger;
  baseMs?: number;
  maxMs?: number;
  /** Reject `load` with STORE_IO for an unusable directory instead of running without flash (the fleet: a bad `--state-dir` should stop it). */
  strict?: boolean;
}

export class RetryingStore implements StateStore {
  readonly #inner: StateStore;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #strict: boolean;
  #storage: StorageHealth = 'ok';
  #flashed: AgentState | null = null;
  /** The newest state asked for and not yet known to be on flash. */
  #want: AgentState | null = null;
  #delayMs: number;
  #timer: TimerHandle | null = null;
  #loaded: Promise<AgentState | null> | undefined;
  #listeners: (() => void)[] = [];
  #closed = false;
  #retries = 0;
  #inflight: Promise<unknown> = Promise.resolve();

  constructor(o: RetryingStoreOptions) {
    this.#inner = o.inner;
    this.#clock = o.clock;
    this.#log = o.log.child({ mod: 'store' });
    this.#baseMs = o.baseMs ?? SAVE_RETRY_BASE_MS;
    this.#maxMs = o.maxMs ?? SAVE_RETRY_MAX_MS;
    this.#delayMs = this.#baseMs;
    this.#strict = o.strict ?? false;
  }

  get writes(): number {
    return this.#inner.writes;
  }

  get storage(): StorageHealth {
    return this.#storage;
  }

  get flashed(): AgentState | null {
    return this.#flashed;
  }

  /** Retries run so far (for tests and logs). */
  get retries(): number {
    return this.#retries;
  }

  /** Resolves once the save attempt in flight (a call's or a retry's) has finished. */
  async idle(): Promise<void> {
    let seen: Promise<unknown>;
    do {
      seen = this.#inflight;
      await seen.catch(() => undefined);
    } while (seen !== this.#inflight);
  }

  onChange(fn: () => void): void {
    this.#listeners.push(fn);
  }

  /**
   * The flash state at boot, read once per process (main.ts reads it for the
   * board before the agent starts; both get the same answer). An unusable
   * directory yields null and storage `unavailable`, not a failed start: a
   * unit that restart-loops on a broken flash helps nobody.
   */
  load(): Promise<AgentState | null> {
    this.#loaded ??= this.#inner.load().then(
      (s) => (this.#flashed = s),
      (err: unknown) => {
        if (!isIpphoneError(err, 'STORE_IO') || this.#strict) throw err;
        this.#storage = 'unavailable';
        this.#log.error({ err: errorMessage(err), ...err.context }, 'state directory unusable: running from the config file; saves are retried');
        return null;
      },
    );
    return this.#loaded;
  }

  /**
   * Try to save `state` now. Resolves true when a slot was written, false
   * when nothing needed writing or the write failed (then it is retried with
   * backoff until it, or a newer state, reaches flash). Rejects only for a
   * state that can never be written (PAYLOAD_INVALID, PAYLOAD_TOO_LARGE).
   */
  save(state: AgentState): Promise<boolean> {
    this.#want = state;
    this.#cancelRetry();
    return this.#track(this.#attempt());
  }

  #track<T>(p: Promise<T>): Promise<T> {
    this.#inflight = p;
    return p;
  }

  close(): void {
    this.#closed = true;
    this.#cancelRetry();
  }

  async #attempt(): Promise<boolean> {
    const state = this.#want;
    if (state === null) return false;
    const was = this.#storage;
    try {
      const wrote = await this.#inner.save(state);
      if (this.#want === state) this.#want = null;
      this.#flashed = state;
      this.#storage = 'ok';
      this.#delayMs = this.#baseMs;
      if (was !== 'ok') this.#log.info({ was }, 'state saved again after failures');
      return wrote;
    } catch (err) {
      if (!isIpphoneError(err, 'STORE_IO')) throw err;
      if (this.#storage === 'ok') this.#storage = 'unsaved';
      this.#scheduleRetry();
      return false;
    } finally {
      if (this.#storage !== was) for (const fn of this.#listeners) fn();
    }
  }

  #scheduleRetry(): void {
    if (this.#closed || this.#timer !== null || this.#want === null) return;
    const ms = this.#delayMs;
    this.#delayMs = Math.min(this.#maxMs, this.#delayMs * 2);
    this.#log.warn({ retryInMs: ms, storage: this.#storage }, 'state not saved; retrying');
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      this.#retries++;
      const before = this.#flashed;
      void this.#track(this.#attempt())
        .then(() => {
          // A retry that reached flash changes what the status may report, even when the health was already 'ok'.
          if (this.#flashed !== before && this.#storage === 'ok') for (const fn of this.#listeners) fn();
        })
        .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'state retry failed for good'));
    }, ms);
  }

  #cancelRetry(): void {
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }
}
