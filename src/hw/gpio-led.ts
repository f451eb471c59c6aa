/**
 * A lamp on a GPIO line (message lamp, no-service lamp). Writes only when the
 * state changes; a failing write is logged once and never stops the agent.
 */
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { formatLineRef, type Gpio, type GpioFactory, type GpioLineRef } from './gpio.js';
import { resolveGpioLine } from './gpio-sysfs.js';
import type { Led } from './types.js';

export class GpioLed implements Led {
  readonly #o: { line: GpioLineRef; activeLow: boolean; gpio: GpioFactory; sysfsRoot?: string; log: Logger };
  #gpio: Gpio | null = null;
  #on: boolean | null = null;
  #warned = false;

  constructor(opts: { line: GpioLineRef; activeLow: boolean; gpio: GpioFactory; sysfsRoot?: string; log: Logger }) {
    this.#o = opts;
  }

  /** Resolve and export the line, lamp off. Throws HW_UNAVAILABLE like the keypad does. */
  async start(): Promise<void> {
    const o = this.#o;
    const n = resolveGpioLine(o.line, o.sysfsRoot);
    // 'low' = output, initially inactive; onoff applies activeLow to every write.
    this.#gpio = o.gpio(n, 'low', 'none', { activeLow: o.activeLow });
    this.#on = false;
  }

  set(on: boolean): void {
    if (this.#gpio === null || on === this.#on) return;
    this.#on = on;
    this.#gpio.write(on ? 1 : 0).catch((err: unknown) => {
      if (this.#warned) return;
      this.#warned = true;
      this.#o.log.warn({ line: formatLineRef(this.#o.line), err: errorMessage(err) }, 'lamp write failed');
    });
  }

  get on(): boolean {
    return this.#on === true;
  }

  async close(): Promise<void> {
    this.#gpio?.unexport();
    this.#gpio = null;
  }
}
