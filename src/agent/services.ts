/**
 * Which call manager's services page the phone shows.
 *
 * The page comes from the home's `services` URL. When that server errors or
 * times out, the phone fetches the next pointer's URL (`services-timeout`)
 * while it keeps showing the last good page, and retries the better URL every
 * `retryMs`. Fetches are serialised: at most one in flight.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Pointer } from '../protocol/types.js';
import type { ServicesFetcher } from './ports.js';

export interface ServicesOptions {
  phoneId: string;
  fetch: ServicesFetcher;
  clock: Clock;
  log: Logger;
  /** Per-fetch deadline, ms. */
  timeoutMs: number;
  /** Refresh period of a good page, ms. */
  refreshMs: number;
  /** Period of retries of a better (higher) URL while showing a backup's page, ms. */
  retryMs: number;
  /**
   * Spread of the first fetch after a home change, ms (default 0): after a
   * call manager dies, thousands of phones change home within a second; their
   * services fetches are spread over this window instead of hitting the new
   * services server — and the phones' own failover work — all at once.
   */
  jitterMs?: number;
  random?: () => number;
  /** Called when the pointer whose page is shown changes. */
  onChange(change: { from: string | null; to: string | null; reason: 'services-timeout' | 'home'; detectMs: number; rehomeMs: number }): void;
  /**
   * Checks a page before it is accepted (e.g. parses it as Cisco XML); a
   * throw counts as that server failing, so a 200 with a page the phone
   * cannot show fails over like a time-out. Default: every body is accepted.
   */
  validate?(page: string): void;
  /** Called with each new page body, the pointer that gave it and the URL it came from. */
  onPage(page: string, from: string, url: string): void;
}

export class ServicesController {
  readonly #o: ServicesOptions & { timeoutMs: number; refreshMs: number };
  #list: Pointer[] = [];
  #home: string | null = null;
  /** Id of the pointer whose page is shown, or null. */
  #shown: string | null = null;
  #page: string | null = null;
  #busy = false;
  #again = false;
  #timer: TimerHandle | null = null;
  #closed = false;
  /** Fetches made and failed, for status and tests. */
  fetches = 0;
  failures = 0;

  constructor(opts: ServicesOptions) {
    this.#o = { ...opts };
  }

  get shown(): string | null {
    return this.#shown;
  }

  get page(): string | null {
    return this.#page;
  }

  /** Tell the controller the current list and home; fetches when the home changed. */
  update(list: Pointer[], home: string | null): void {
    this.#list = list;
    const changed = home !== this.#home;
    this.#home = home;
    if (!changed || home === null || home === this.#shown) return;
    const jitter = this.#o.jitterMs ?? 0;
    if (jitter > 0) this.#schedule(Math.floor((this.#o.random ?? Math.random)() * jitter));
    else this.#kick();
  }

  /** New per-fetch deadline and refresh period (remote reconfiguration), ms. */
  setTiming(timeoutMs: number, refreshMs: number): void {
    this.#o.timeoutMs = timeoutMs;
    this.#o.refreshMs = refreshMs;
  }

  close(): void {
    this.#closed = true;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  #kick(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    void this.#run();
  }

  #schedule(ms: number): void {
    if (this.#closed) return;
    if (this.#timer) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = null;
      this.#kick();
    }, ms);
  }

  /** Candidate order: the home, then the pointers after it, wrapping. */
  #order(): Pointer[] {
    const list = this.#list;
    const i = Math.max(0, list.findIndex((p) => p.id === this.#home));
    return [...list.slice(i), ...list.slice(0, i)];
  }

  async #run(): Promise<void> {
    if (this.#closed || this.#home === null) return;
    this.#busy = true;
    const o = this.#o;
    const start = o.clock.elapsed();
    let detectMs = 0;
    let firstError: string | null = null;
    try {
      for (const p of this.#order()) {
        const t0 = o.clock.elapsed();
        try {
          this.fetches++;
          const page = await o.fetch(p.services, o.phoneId, o.timeoutMs);
          if (this.#closed) return;
          o.validate?.(page);
          const from = this.#shown;
          this.#shown = p.id;
          this.#page = page;
          o.onPage(page, p.id, p.services);
          if (from !== p.id) {
            const reason = p.id === this.#home ? 'home' : 'services-timeout';
            o.onChange({ from, to: p.id, reason, detectMs, rehomeMs: o.clock.elapsed() - t0 });
          }
          this.#schedule(p.id === this.#home ? o.refreshMs : o.retryMs);
          return;
        } catch (err) {
          this.failures++;
          if (firstError === null) {
            firstError = errorMessage(err);
            detectMs = o.clock.elapsed() - start;
          }
          o.log.warn({ pointer: p.id, url: p.services, err: errorMessage(err) }, 'services fetch failed');
        }
      }
      // Nobody answered: keep the last good page, try again later.
      this.#schedule(o.retryMs);
    } finally {
      this.#busy = false;
      if (this.#again && !this.#closed) {
        this.#again = false;
        this.#kick();
      }
    }
  }
}
