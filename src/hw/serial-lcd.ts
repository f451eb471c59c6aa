/**
 * A character LCD on a serial port (Matrix Orbital or HD44780 backpack, see
 * lcd-protocol.ts). The only module that imports `serialport`.
 *
 * Why it looks like this: the agent calls {@link SerialLcd.show} from its
 * failover path, so the display must never block or throw. `show()` only
 * records the desired frame; a single writer sends the difference between
 * that frame and a shadow of what the device shows, with at most one write in
 * flight. A slow port therefore coalesces frames (only the latest matters)
 * instead of queueing them. When the device goes away (write/read error,
 * `close`) the port is reopened with exponential backoff and full jitter, and
 * the screen is cleared and redrawn, because the shadow no longer holds.
 */
import { autoDetect } from '@serialport/bindings-cpp';
import { SerialPortStream, type OpenOptions } from '@serialport/stream';
import { systemClock, type Clock, type Random, type TimerHandle } from '../lib/clock.js';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Display } from './types.js';
import { LCD_PROTOCOLS, codecFor, encodeDiff, encodeFull, sanitizeFrame, type LcdCodec, type LcdProtocol } from './lcd-protocol.js';

export interface SerialLcdOptions {
  /** Serial device, e.g. `/dev/ttyS1` or a udev symlink. */
  path: string;
  /** Line speed in baud, e.g. 19200 (Matrix Orbital default) or 9600 (SerLCD default). */
  baudRate: number;
  /** Character cells per row: 1–40 (HD44780 backpack: ≤ 20 when rows is 4). */
  cols: number;
  /** Rows: 1–4 (HD44780 backpack: 1, 2 or 4). */
  rows: number;
  protocol: LcdProtocol;
  /** Parent logger; the adapter logs under `mod: 'lcd'`. */
  log: Logger;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Jitter source for reopen delays. Default `Math.random`. */
  random?: Random;
  /** serialport binding; default the platform binding. Tests pass `MockBinding`. */
  binding?: BindingInterface;
  /**
   * Reopen backoff: attempt n (0-based) waits `random() × min(maxMs, baseMs × 2^n)` ms
   * ("full jitter"). Defaults baseMs 500, maxMs 30000.
   */
  reopen?: { baseMs?: number; maxMs?: number };
  /**
   * A write not finished after this many ms, plus its time on the wire at
   * `baudRate`, counts as a lost device (e.g. stuck flow control): the port
   * is dropped and reopened. Default 2000.
   */
  writeTimeoutMs?: number;
}

/**
 * A serialport binding (`@serialport/bindings-interface` `BindingInterface`),
 * named through `@serialport/stream` because the interface package's
 * `exports` map hides its typings.
 */
export type BindingInterface = OpenOptions['binding'];

type State = 'new' | 'opening' | 'open' | 'waiting' | 'closed';

export class SerialLcd implements Display {
  readonly cols: number;
  readonly rows: number;
  readonly #o: SerialLcdOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #baseMs: number;
  readonly #maxMs: number;
  #codec: LcdCodec | null = null;
  #state: State = 'new';
  #port: SerialPortStream | null = null;
  /** Bumped per port, so callbacks of a lost port cannot touch the next one. */
  #gen = 0;
  /** Frame the agent wants shown (raw; sanitized when flushed). */
  #desired: readonly string[] = [];
  /** What the device shows; null = unknown (just opened): clear and redraw. */
  #shown: string[] | null = null;
  #writing = false;
  #flushQueued = false;
  #attempt = 0;
  #everOpened = false;
  #timer: TimerHandle | null = null;
  #writeTimer: TimerHandle | null = null;
  #closing: Promise<void> | null = null;
  /** The open attempt in progress, so close() can wait for it. */
  #opening: Promise<void> | null = null;

  /** Counters for tests and diagnostics. */
  readonly stats = { opens: 0, losses: 0, flushes: 0, bytes: 0 };

  constructor(opts: SerialLcdOptions) {
    this.#o = opts;
    this.cols = opts.cols;
    this.rows = opts.rows;
    this.#log = opts.log.child({ mod: 'lcd' });
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#baseMs = opts.reopen?.baseMs ?? 500;
    this.#maxMs = opts.reopen?.maxMs ?? 30_000;
  }

  /** True while the port is open. */
  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /**
   * Validate the options and make the first open attempt. A missing or
   * unopenable device is not fatal: it logs a warning and keeps retrying.
   * @throws IpphoneError `BOARD_INVALID` for invalid options (every problem in `context.problems`).
   */
  async start(): Promise<void> {
    if (this.#state !== 'new') return;
    const problems: string[] = [];
    if (typeof this.#o.path !== 'string' || this.#o.path === '') problems.push('display/path: must be a non-empty device path');
    if (!Number.isInteger(this.#o.baudRate) || this.#o.baudRate <= 0) problems.push(`display/baudRate: must be a positive integer (got ${this.#o.baudRate})`);
    const known = LCD_PROTOCOLS.includes(this.#o.protocol);
    if (!known) problems.push(`display/protocol: must be ${LCD_PROTOCOLS.join(' or ')} (got ${JSON.stringify(this.#o.protocol)})`);
    if (!(this.#baseMs > 0) || !(this.#maxMs >= this.#baseMs)) problems.push('display/reopen: need 0 < baseMs <= maxMs');
    if (this.#o.writeTimeoutMs !== undefined && !(this.#o.writeTimeoutMs > 0)) problems.push(`display/writeTimeoutMs: must be > 0 (got ${this.#o.writeTimeoutMs})`);
    try {
      // With an unknown protocol, still report a bad geometry (checked as Matrix Orbital).
      this.#codec = codecFor(known ? this.#o.protocol : 'matrix-orbital', this.cols, this.rows);
    } catch (err) {
      problems.push(`display: ${errorMessage(err)}`);
    }
    if (problems.length > 0) {
      this.#state = 'closed';
      throw new IpphoneError(`serial LCD options are invalid: ${problems.join('; ')}`, 'BOARD_INVALID', { problems });
    }
    await this.#open();
    // #open() moved the state on; TS keeps the narrowing from above.
    if ((this.#state as State) === 'waiting') this.#log.warn({ path: this.#o.path }, 'lcd not available at start; retrying');
  }

  show(lines: readonly string[]): void {
    if (this.#state === 'closed') return;
    try {
      this.#desired = Array.from(lines, (l) => String(l));
      this.#queueFlush();
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'lcd show failed');
    }
  }

  async close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#state = 'closed';
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#clearWriteTimer();
    const port = this.#port;
    this.#port = null;
    this.#gen++;
    const opening = this.#opening;
    this.#closing = (async () => {
      await opening;
      if (port) await closePort(port);
    })();
    return this.#closing;
  }

  /** One open attempt; on failure schedules the next one. */
  #open(): Promise<void> {
    this.#state = 'opening';
    const gen = ++this.#gen;
    const attempt = new Promise<void>((resolve) => {
      let port: SerialPortStream;
      try {
        port = new SerialPortStream({
          binding: this.#o.binding ?? (autoDetect() as BindingInterface),
          path: this.#o.path,
          baudRate: this.#o.baudRate,
          autoOpen: false,
        });
      } catch (err) {
        this.#retry(err);
        resolve();
        return;
      }
      // Every stream error is a lost device: the stream closes itself on a
      // failed read/write; anything else we treat the same way.
      port.on('error', (err: Error) => this.#lost(gen, err));
      port.on('close', (err: Error | null) => this.#lost(gen, err ?? new Error('port closed')));
      // Keep reading: a pty/USB hangup shows up as a read error, and some
      // displays send keypad bytes we do not use.
      port.on('data', () => {});
      port.open((err) => {
        if (gen !== this.#gen || this.#state !== 'opening') {
          // close() was called meanwhile: do not keep the port.
          if (!err) {
            void closePort(port).then(resolve);
            return;
          }
        } else if (err) {
          this.#retry(err);
        } else {
          this.#port = port;
          this.#state = 'open';
          this.#shown = null;
          this.#writing = false;
          this.#attempt = 0;
          this.stats.opens++;
          this.#log.info({ path: this.#o.path, protocol: this.#o.protocol }, this.#everOpened ? 'lcd reopened' : 'lcd opened');
          this.#everOpened = true;
          this.#queueFlush();
        }
        resolve();
      });
    });
    this.#opening = attempt;
    void attempt.then(() => {
      if (this.#opening === attempt) this.#opening = null;
    });
    return attempt;
  }

  /** No usable port (open failed or port lost): wait with backoff and try again. */
  #retry(err: unknown): void {
    if (this.#state === 'closed') return;
    this.#state = 'waiting';
    const ceiling = Math.min(this.#maxMs, this.#baseMs * 2 ** Math.min(this.#attempt, 30));
    const delay = Math.floor(this.#random() * ceiling);
    this.#attempt++;
    this.#log.debug({ path: this.#o.path, err: errorMessage(err), attempt: this.#attempt, delayMs: delay }, 'lcd reopen scheduled');
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#state === 'waiting') void this.#open();
    }, delay);
  }

  /** The open port failed (or closed under us): drop it and reopen. */
  #lost(gen: number, err: unknown): void {
    if (gen !== this.#gen || this.#state !== 'open') return;
    const port = this.#port;
    this.#port = null;
    this.#gen++;
    this.#shown = null;
    this.#writing = false;
    this.#clearWriteTimer();
    this.stats.losses++;
    this.#log.info({ path: this.#o.path, err: errorMessage(err) }, 'lcd lost');
    if (port?.isOpen) void closePort(port);
    this.#retry(err);
  }

  #queueFlush(): void {
    if (this.#flushQueued) return;
    this.#flushQueued = true;
    // A microtask, not a timer: show() calls in one tick coalesce, and no
    // clock (real or fake) has to run for a frame to go out.
    queueMicrotask(() => {
      this.#flushQueued = false;
      this.#flush();
    });
  }

  /** Send the difference between the shadow and the desired frame; one write at a time. */
  #flush(): void {
    const codec = this.#codec;
    const port = this.#port;
    if (this.#state !== 'open' || this.#writing || codec === null || port === null) return;
    const next = sanitizeFrame(codec, this.#desired);
    const full = this.#shown === null;
    const bytes = this.#shown === null ? encodeFull(codec, next) : encodeDiff(codec, this.#shown, next);
    if (bytes.length === 0) return;
    // The shadow moves now: if this write fails the port is lost and the
    // reopen redraws everything anyway.
    this.#shown = next;
    this.#writing = true;
    this.stats.flushes++;
    this.stats.bytes += bytes.length;
    this.#log.debug({ bytes: bytes.length, full }, 'lcd flush');
    const gen = this.#gen;
    // 10 bits per byte on the wire (start + 8 data + stop).
    const timeout = (this.#o.writeTimeoutMs ?? 2000) + Math.ceil((bytes.length * 10 * 1000) / this.#o.baudRate);
    this.#writeTimer = this.#clock.setTimeout(() => {
      this.#writeTimer = null;
      this.#lost(gen, new IpphoneError(`write not done after ${timeout} ms`, 'TIMEOUT', { bytes: bytes.length }));
    }, timeout);
    try {
      port.write(bytes, (err) => {
        if (gen !== this.#gen) return;
        this.#clearWriteTimer();
        this.#writing = false;
        if (err) this.#lost(gen, err);
        else this.#queueFlush();
      });
    } catch (err) {
      this.#lost(gen, err);
    }
  }

  #clearWriteTimer(): void {
    if (this.#writeTimer !== null) this.#clock.clearTimeout(this.#writeTimer);
    this.#writeTimer = null;
  }
}

/** Close a port, swallowing errors (it may already be gone). Resolves once closed or failed. */
function closePort(port: SerialPortStream): Promise<void> {
  return new Promise((resolve) => {
    if (!port.isOpen) {
      resolve();
      return;
    }
    port.close(() => resolve());
  });
}
