/**
 * A lamp the kernel drives (device-tree `gpio-leds`, `pwm-leds`, an I²C LED
 * chip): the LED class directory `/sys/class/leds/NAME`. Lit = its
 * `max_brightness` written to `brightness`, dark = 0 (the contract's rule; a
 * PWM lamp at full brightness is what a phone's lamp means).
 *
 * Never throws into the agent: {@link ClassLed.set} only records the wanted
 * state; one writer makes the files match it, one write at a time (a burst of
 * sets coalesces to the last). A failure — the directory not there yet (the
 * driver probes late), `max_brightness` unreadable, a write refused — is
 * logged once per outage and retried with backoff; the lamp catches up when
 * the LED appears. A `brightness` write of 0 also removes a trigger the
 * device tree set (`linux,default-trigger`), which is what we want: the agent
 * owns this lamp.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { systemClock, type Clock, type Random, type TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { backoffDelay } from './backoff.js';
import type { Led } from './types.js';

/** The two files the lamp uses; tests inject failures. */
export interface LedFs {
  readFile(path: string): Promise<string>;
  writeFile(path: string, text: string): Promise<void>;
}

const nodeLedFs: LedFs = { readFile: (p) => readFile(p, 'utf8'), writeFile: (p, t) => writeFile(p, t) };

export interface ClassLedOptions {
  /** The LED class directory, e.g. `/sys/class/leds/red:no-service`. */
  dir: string;
  /** Which lamp, for the logs (`message`, `noService`). */
  name: string;
  log: Logger;
  clock?: Clock;
  random?: Random;
  /** Retry backoff (see {@link backoffDelay}). Defaults baseMs 1000, maxMs 60000. */
  retry?: { baseMs?: number; maxMs?: number };
  fs?: LedFs;
}

export class ClassLed implements Led {
  readonly #o: ClassLedOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #fs: LedFs;
  #max: number | null = null;
  /** The state asked for; null until the first set(): start() leaves the lamp as the kernel has it. */
  #want: boolean | null = null;
  /** What `brightness` holds as far as we know; null = unknown (write it). */
  #written: number | null = null;
  #busy = false;
  #failing = false;
  #attempt = 0;
  #timer: TimerHandle | null = null;
  #started = false;
  #closed = false;

  /** Counters for tests and diagnostics. */
  readonly stats = { writes: 0, failures: 0 };

  constructor(opts: ClassLedOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'led', led: opts.name, dir: opts.dir });
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#fs = opts.fs ?? nodeLedFs;
  }

  /**
   * Read `max_brightness`; write nothing, so a lamp the device tree lit
   * (`default-state = "on"` on the no-service lamp) does not flicker dark
   * before the agent's first word. Resolves after the first attempt; a
   * failure there is logged and retried, never thrown.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    await this.#sync();
  }

  set(on: boolean): void {
    if (this.#closed) return;
    this.#want = on;
    if (this.#timer === null) void this.#sync();
  }

  /** The state asked for last (false before any). */
  get on(): boolean {
    return this.#want === true;
  }

  /** Whether `brightness` is known to hold the asked-for state. */
  get settled(): boolean {
    return this.#want === null || (this.#written !== null && this.#written === (this.#want ? this.#max : 0));
  }

  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
  }

  async #sync(): Promise<void> {
    if (this.#busy || this.#closed || !this.#started) return;
    this.#busy = true;
    try {
      for (;;) {
        if (this.#max === null) this.#max = parseMax(await this.#fs.readFile(join(this.#o.dir, 'max_brightness')));
        if (this.#want === null) break;
        const value = this.#want ? this.#max : 0;
        if (value === this.#written) break;
        await this.#fs.writeFile(join(this.#o.dir, 'brightness'), `${value}\n`);
        this.#written = value;
        this.stats.writes++;
        if (this.#closed) break;
      }
      if (this.#failing) this.#log.info({}, 'lamp writable again');
      this.#failing = false;
      this.#attempt = 0;
    } catch (err) {
      this.stats.failures++;
      this.#written = null;
      this.#max = null; // a lamp that comes back may be another device
      if (!this.#failing) this.#log.warn({ err: errorMessage(err) }, 'lamp write failed; retrying');
      this.#failing = true;
      if (!this.#closed) {
        const delay = backoffDelay(this.#attempt++, this.#o.retry?.baseMs ?? 1000, this.#o.retry?.maxMs ?? 60_000, this.#random);
        this.#timer = this.#clock.setTimeout(() => {
          this.#timer = null;
          void this.#sync();
        }, delay);
      }
    } finally {
      this.#busy = false;
    }
  }
}

/** `max_brightness` as the kernel writes it: a positive integer and a newline. */
function parseMax(text: string): number {
  const t = text.trim();
  const n = Number(t);
  if (!/^[0-9]+$/.test(t) || n < 1) throw new Error(`max_brightness is ${JSON.stringify(t)}, not a positive integer`);
  return n;
}
