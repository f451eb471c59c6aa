/**
 * The hook switch on one GPIO input. The line is exported with the board's
 * polarity, so its logical value is 1 exactly while the handset is lifted
 * (`activeLow: true`: the switch pulls the line low when off-hook, the usual
 * wiring with a pull-up).
 *
 * The state is read at start; every edge (re)arms a `debounceMs` timer on the
 * injected clock, and when it runs out the line is read again: a change is
 * reported once. Flapping faster than `debounceMs` keeps the timer from ever
 * running out, so it reports nothing; flapping that ends where it began
 * reports nothing either.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { formatLineRef, type Gpio, type GpioFactory, type GpioLineRef } from './gpio.js';
import { resolveGpioLine } from './gpio-sysfs.js';
import type { HookSwitch } from './types.js';

export interface GpioHookSwitchOptions {
  line: GpioLineRef;
  /** True when the line reads low while the handset is lifted. */
  activeLow: boolean;
  /** How long a new state must hold before it counts, in ms (≥ 0; 30 is typical). */
  debounceMs: number;
  gpio: GpioFactory;
  /** Default `/sys/class/gpio`. */
  sysfsRoot?: string;
  clock: Clock;
  log: Logger;
}

export class GpioHookSwitch implements HookSwitch {
  readonly #o: GpioHookSwitchOptions;
  readonly #log: Logger;
  readonly #handlers: Array<(offHook: boolean) => void> = [];
  #gpio: Gpio | null = null;
  #offHook = false;
  #timer: TimerHandle | null = null;
  #started = false;
  #closed = false;

  constructor(opts: GpioHookSwitchOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'hook' });
  }

  /** Resolve, export and read the line. Throws `BOARD_INVALID` / `HW_UNAVAILABLE`. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    if (!Number.isFinite(this.#o.debounceMs) || this.#o.debounceMs < 0) {
      throw new IpphoneError('hook/debounceMs: must be a number ≥ 0', 'BOARD_INVALID', { problems: ['hook/debounceMs: must be a number ≥ 0'] });
    }
    const n = resolveGpioLine(this.#o.line, this.#o.sysfsRoot);
    const g = this.#o.gpio(n, 'in', 'both', { activeLow: this.#o.activeLow });
    this.#gpio = g;
    try {
      this.#offHook = (await g.read()) === 1;
    } catch (err) {
      this.#gpio = null;
      try {
        g.unexport();
      } catch {
        // The read already failed; the first error is the one worth reporting.
      }
      throw err;
    }
    g.watch((err) => this.#onEdge(err));
    this.#log.info({ line: formatLineRef(this.#o.line), sysfs: n, offHook: this.#offHook }, 'hook started');
  }

  isOffHook(): boolean {
    return this.#offHook;
  }

  onChange(handler: (offHook: boolean) => void): void {
    this.#handlers.push(handler);
  }

  /** Stop watching and unexport. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    const g = this.#gpio;
    this.#gpio = null;
    if (g === null) return;
    try {
      g.unwatchAll();
      g.unexport();
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'hook unexport failed');
    }
  }

  #onEdge(err: Error | null | undefined): void {
    if (this.#closed) return;
    if (err) this.#log.warn({ err: errorMessage(err) }, 'hook edge error');
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = null;
      void this.#settle();
    }, this.#o.debounceMs);
  }

  async #settle(): Promise<void> {
    const g = this.#gpio;
    if (g === null || this.#closed) return;
    let offHook: boolean;
    try {
      offHook = (await g.read()) === 1;
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'hook read failed');
      if (!this.#closed && this.#timer === null) this.#onEdge(null); // try again after another debounce
      return;
    }
    // An edge during the read re-armed the timer: let that settle decide.
    if (this.#closed || this.#timer !== null || offHook === this.#offHook) return;
    this.#offHook = offHook;
    this.#log.info({ offHook }, offHook ? 'off hook' : 'on hook');
    for (const h of this.#handlers) {
      try {
        h(offHook);
      } catch (e) {
        this.#log.warn({ err: errorMessage(e) }, 'hook handler threw');
      }
    }
  }
}
