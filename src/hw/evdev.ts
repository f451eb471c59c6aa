/**
 * One Linux input device (`/dev/input/eventN`): the only module that reads
 * it. Device-tree `matrix-keypad` and `gpio-keys` nodes appear as such
 * devices; the kernel scans and debounces, we read `struct input_event`
 * records (src/hw/evdev-codec.ts) and hand whole frames to listeners (the
 * keypad, the hook switch: both may share one device, e.g. a `gpio-keys`
 * node carrying the hook switch and extra keys).
 *
 * How it reads: the device is opened non-blocking and read until it has
 * nothing (EAGAIN); then it is read again after `poll.idleMs` (100 ms), or
 * `poll.activeMs` (20 ms) within `poll.activeForMs` (2 s) of its last event,
 * so the first key of a number or a lifted handset waits at most 100 ms and
 * the rest of the number 20 ms — on top of the kernel's own debounce — and the
 * kernel queues at least 64 events per reader meanwhile, so none is lost to
 * the wait. Reads fall on a grid of the monotonic clock, so two devices
 * wake the process once per tick. A wake-up, not the read, is the cost
 * (measured here: ~70 µs a timer wake-up, ~10 µs an empty read). Why not wait for data instead: libuv polls
 * only sockets, pipes and ttys as streams (a character device is a "file" to
 * it), and a blocking read in libuv's thread pool would hold the process at
 * exit — Node joins the pool's threads then (uv_library_shutdown), so a
 * SIGTERM with no key pressed would never finish. An epoll addon would do,
 * but then a board without sysfs GPIO would still need a native addon built
 * for its architecture; this way evdev and LED-class boards need none.
 *
 * Like the serial LCD (src/hw/serial-lcd.ts), a device that is missing at
 * start or goes away (ENOENT/ENODEV on open, a read error: the kernel answers
 * ENODEV once the device is unbound; end of file: a FIFO standing in for it
 * lost its writer) is reopened with exponential backoff and full jitter; the
 * agent keeps running without keys meanwhile. A frame cut by the loss is
 * dropped, and listeners are told that events may have been lost.
 */
import { close as fsClose, constants, open as fsOpen, readSync } from 'node:fs';
import { systemClock, type Clock, type Random, type TimerHandle } from '../lib/clock.js';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { backoffDelay } from './backoff.js';
import { EvdevFramer, decodeEvents, layoutFor, ARCH_LAYOUTS, type EvdevLayout, type InputEvent } from './evdev-codec.js';

/** The file operations the reader needs; tests inject failures and a fake clock drives the retries. */
export interface EvdevFs {
  /** Open read-only and non-blocking. Resolves with the fd. */
  open(path: string): Promise<number>;
  /** Read into `buf`; resolves with the byte count (0 = end of file), or null when there is nothing to read now. */
  read(fd: number, buf: Buffer): Promise<number | null>;
  close(fd: number): Promise<void>;
}

/**
 * node:fs. Reads are synchronous on purpose: the fd is non-blocking, so a
 * read returns at once (data or EAGAIN, ~10 µs here) and never stalls the
 * event loop, and a poll costs one syscall instead of a round trip through
 * libuv's thread pool (a thread hand-off and a callback each time).
 */
export const nodeEvdevFs: EvdevFs = {
  open: (path) => new Promise((resolve, reject) => fsOpen(path, constants.O_RDONLY | constants.O_NONBLOCK, (err, fd) => (err ? reject(err) : resolve(fd)))),
  read: async (fd, buf) => {
    // EAGAIN is the usual answer and arrives as a thrown error: no stack trace for it.
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      return readSync(fd, buf, 0, buf.length, null);
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      if (code === 'EAGAIN' || code === 'EWOULDBLOCK') return null;
      throw err;
    } finally {
      Error.stackTraceLimit = limit;
    }
  },
  close: (fd) => new Promise((resolve) => fsClose(fd, () => resolve())),
};

export interface EvdevListener {
  /** The events of one frame (between two SYN_REPORTs), in order; no SYN events. */
  frame(events: readonly InputEvent[]): void;
  /**
   * Events were lost: `dropped` (the kernel's SYN_DROPPED; called again with
   * `resynced` at the next SYN_REPORT) or `device-lost` (the device went away;
   * it is reopened). State learnt from earlier events may be stale.
   */
  lost?(why: 'dropped' | 'resynced' | 'device-lost'): void;
}

export interface EvdevDeviceOptions {
  /** The device, e.g. `/dev/input/by-path/platform-matrix-keypad-event`. */
  path: string;
  /** Parent logger; the reader logs under `mod: 'evdev'`. */
  log: Logger;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Jitter for reopen delays. Default `Math.random`. */
  random?: Random;
  /** `process.arch` whose record layout to read (tests read the other word size). Default `process.arch`. */
  arch?: string;
  /** Reopen backoff (see {@link backoffDelay}). Defaults baseMs 500, maxMs 30000. */
  reopen?: { baseMs?: number; maxMs?: number };
  /**
   * How long to wait before reading again once the device had nothing, ms:
   * `activeMs` (default 20) within `activeForMs` (default 2000) of the last
   * event, else `idleMs` (default 100). All > 0 (activeForMs ≥ 0).
   */
  poll?: { idleMs?: number; activeMs?: number; activeForMs?: number };
  /** Default {@link nodeEvdevFs}. */
  fs?: EvdevFs;
}

type State = 'new' | 'opening' | 'open' | 'waiting' | 'closed';

/** Records per read: a burst of key frames fits in one. */
const RECORDS_PER_READ = 64;

export class EvdevDevice {
  readonly path: string;
  readonly #o: EvdevDeviceOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: Random;
  readonly #fs: EvdevFs;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #poll: { idleMs: number; activeMs: number; activeForMs: number };
  /** {@link Clock.elapsed} of the last data read; -Infinity before any. */
  #lastData = -Infinity;
  readonly #listeners: EvdevListener[] = [];
  readonly #framer = new EvdevFramer();
  #layout: EvdevLayout | null = null;
  #state: State = 'new';
  #users = 0;
  /** Bumped per open, so a late open or read of a lost fd cannot touch the next one. */
  #gen = 0;
  #attempt = 0;
  #everOpened = false;
  #timer: TimerHandle | null = null;
  /** Resumes a read loop waiting out a poll interval, so close() can end it (and close its fd) at once. */
  #wake: (() => void) | null = null;

  /** Counters for tests and diagnostics. */
  readonly stats = { opens: 0, losses: 0, frames: 0, dropped: 0 };

  constructor(opts: EvdevDeviceOptions) {
    this.#o = opts;
    this.path = opts.path;
    this.#log = opts.log.child({ mod: 'evdev', path: opts.path });
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
    this.#fs = opts.fs ?? nodeEvdevFs;
    this.#baseMs = opts.reopen?.baseMs ?? 500;
    this.#maxMs = opts.reopen?.maxMs ?? 30_000;
    this.#poll = { idleMs: opts.poll?.idleMs ?? 100, activeMs: opts.poll?.activeMs ?? 20, activeForMs: opts.poll?.activeForMs ?? 2000 };
  }

  /** True while the device is open. */
  get isOpen(): boolean {
    return this.#state === 'open';
  }

  /** Add a listener (before or after start). */
  listen(l: EvdevListener): void {
    this.#listeners.push(l);
  }

  /**
   * Start reading, for one more user (the keypad and the hook may share a
   * device: the first start opens it, the last {@link close} closes it). A
   * missing device is not fatal: it is retried in the background.
   * @throws IpphoneError `HW_UNAVAILABLE` on an architecture whose record layout is not known.
   */
  async start(): Promise<void> {
    this.#users++;
    if (this.#state !== 'new') return;
    const arch = this.#o.arch ?? process.arch;
    this.#layout = layoutFor(arch);
    if (this.#layout === null) {
      this.#state = 'closed';
      const problem = `input ${this.path}: struct input_event layout unknown for architecture ${arch} (known: ${Object.keys(ARCH_LAYOUTS).join(', ')})`;
      throw new IpphoneError(problem, 'HW_UNAVAILABLE', { problems: [problem] });
    }
    const p = this.#poll;
    if (!(this.#baseMs > 0) || !(this.#maxMs >= this.#baseMs) || !(p.idleMs > 0) || !(p.activeMs > 0) || !(p.activeForMs >= 0)) {
      this.#state = 'closed';
      const problem = 'input: need 0 < reopen.baseMs <= reopen.maxMs, poll.idleMs > 0, poll.activeMs > 0, poll.activeForMs >= 0';
      throw new IpphoneError(problem, 'BOARD_INVALID', { problems: [problem] });
    }
    this.#open();
  }

  /** One user fewer; the last one stops reading (a read loop waiting to poll ends at once and closes its fd). Idempotent. */
  async close(): Promise<void> {
    if (this.#users > 0) this.#users--;
    if (this.#users > 0 || this.#state === 'closed') return;
    this.#state = 'closed';
    this.#gen++;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#wake?.();
  }

  #open(): void {
    this.#state = 'opening';
    const gen = ++this.#gen;
    this.#fs.open(this.path).then(
      (fd) => {
        if (gen !== this.#gen || this.#state !== 'opening') {
          void this.#fs.close(fd);
          return;
        }
        this.#state = 'open';
        this.stats.opens++;
        this.#log.info({}, this.#everOpened ? 'input device reopened' : 'input device opened');
        this.#everOpened = true;
        void this.#readLoop(fd, gen);
      },
      (err: unknown) => {
        if (gen !== this.#gen) return;
        if (!this.#everOpened && this.#attempt === 0) this.#log.warn({ err: errorMessage(err) }, 'input device not available; retrying');
        this.#retry(err);
      },
    );
  }

  /**
   * Read until the device has nothing, then again after a poll interval. At most one
   * read is in flight; a read that returns after close() or a loss closes its fd.
   */
  async #readLoop(fd: number, gen: number): Promise<void> {
    const layout = this.#layout!;
    const buf = Buffer.alloc(layout.size * RECORDS_PER_READ);
    let rest: Buffer = Buffer.alloc(0);
    for (;;) {
      let n: number | null;
      try {
        n = await this.#fs.read(fd, buf);
      } catch (err) {
        await this.#fs.close(fd);
        this.#lost(gen, err);
        return;
      }
      if (gen !== this.#gen) {
        await this.#fs.close(fd);
        return;
      }
      if (n === 0) {
        // A device never ends; a FIFO standing in for one does when its writer goes.
        await this.#fs.close(fd);
        this.#lost(gen, new Error('end of file'));
        return;
      }
      if (n === null) {
        await new Promise<void>((resume) => {
          const now = this.#clock.elapsed();
          const every = now - this.#lastData < this.#poll.activeForMs ? this.#poll.activeMs : this.#poll.idleMs;
          // A timer may run a little early (whole milliseconds): never aim at a grid point under 2 ms away.
          let wait = every - (now % every);
          if (wait < 2) wait += every;
          // On a grid of `every` ms of the monotonic clock, not `every` ms from now: the keypad
          // and the hook (two devices) then wake the process once a tick, not twice.
          this.#timer = this.#clock.setTimeout(
            () => {
              this.#timer = null;
              resume();
            },
            wait,
          );
          this.#wake = resume;
        });
        this.#wake = null;
        if (gen !== this.#gen) {
          await this.#fs.close(fd);
          return;
        }
        continue;
      }
      this.#attempt = 0;
      this.#lastData = this.#clock.elapsed();
      const decoded = decodeEvents(rest.length === 0 ? buf.subarray(0, n) : Buffer.concat([rest, buf.subarray(0, n)]), layout);
      rest = decoded.rest;
      for (const e of decoded.events) this.#event(e);
    }
  }

  #event(e: InputEvent): void {
    const step = this.#framer.push(e);
    if (step.kind === 'frame') {
      this.stats.frames++;
      for (const l of this.#listeners) this.#call(() => l.frame(step.events));
    } else if (step.kind === 'dropped' || step.kind === 'resynced') {
      if (step.kind === 'dropped') {
        this.stats.dropped++;
        this.#log.warn({}, 'input events dropped by the kernel (SYN_DROPPED); resynchronising');
      }
      for (const l of this.#listeners) this.#call(() => l.lost?.(step.kind));
    }
  }

  #call(fn: () => void): void {
    try {
      fn();
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'input listener threw');
    }
  }

  /** The open device failed: forget the partial frame, tell the listeners, reopen. */
  #lost(gen: number, err: unknown): void {
    if (gen !== this.#gen || this.#state !== 'open') return;
    this.#gen++;
    this.stats.losses++;
    this.#framer.reset();
    this.#log.info({ err: errorMessage(err) }, 'input device lost');
    for (const l of this.#listeners) this.#call(() => l.lost?.('device-lost'));
    this.#retry(err);
  }

  #retry(err: unknown): void {
    if (this.#state === 'closed') return;
    this.#state = 'waiting';
    const delay = backoffDelay(this.#attempt, this.#baseMs, this.#maxMs, this.#random);
    this.#attempt++;
    this.#log.debug({ err: errorMessage(err), attempt: this.#attempt, delayMs: delay }, 'input reopen scheduled');
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#state === 'waiting') this.#open();
    }, delay);
  }
}
