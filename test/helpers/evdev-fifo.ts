/**
 * A FIFO standing in for `/dev/input/eventN`: the test writes `struct
 * input_event` records (src/hw/evdev-codec.ts `encodeEvents`, either layout)
 * and the driver reads them as it reads a device (non-blocking, src/hw/evdev.ts).
 *
 * The feeder opens its end read-write (Linux allows it on a FIFO, and it never
 * blocks): the FIFO then always has a writer, so the driver's reads find
 * "nothing yet" rather than end of file, and always has a reader, so a record
 * written before the driver has it open waits in the pipe instead of failing
 * with EPIPE. Closing the feeder is the device going away (the driver reads end
 * of file); unlinking the FIFO first makes the reopen attempts fail with ENOENT
 * until it is made again.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, openSync, unlinkSync, writeSync } from 'node:fs';
import { encodeEvents, layoutFor, type InputEvent } from '../../src/hw/evdev-codec.js';
import { EV_KEY, EV_SW, EV_SYN, SYN_DROPPED, SYN_REPORT } from '../../src/hw/input-codes.js';

export function mkfifo(path: string): void {
  const r = spawnSync('mkfifo', ['-m', '0600', path], { encoding: 'utf8' });
  if (r.status !== 0) throw new Error(`mkfifo ${path}: ${r.stderr}`);
}

/** Events of common shapes. */
export const ev = {
  key: (code: number, value: number): InputEvent => ({ type: EV_KEY, code, value }),
  sw: (code: number, value: number): InputEvent => ({ type: EV_SW, code, value }),
  report: (): InputEvent => ({ type: EV_SYN, code: SYN_REPORT, value: 0 }),
  dropped: (): InputEvent => ({ type: EV_SYN, code: SYN_DROPPED, value: 0 }),
};

/** The kernel's end of a FIFO device. */
export class FifoFeeder {
  readonly path: string;
  readonly arch: string;
  #fd: number | null = null;

  /** Make the FIFO at `path` (unless `exists`) and open the feeding end. */
  constructor(path: string, arch: string, exists = false) {
    this.path = path;
    this.arch = arch;
    if (!exists) mkfifo(path);
    this.open();
  }

  /** Open (again) the feeding end; the FIFO must exist. */
  open(): void {
    if (this.#fd === null) this.#fd = openSync(this.path, constants.O_RDWR | constants.O_NONBLOCK);
  }

  /** Write events as the kernel lays them out for `arch`. */
  write(events: readonly InputEvent[]): void {
    this.bytes(encodeEvents(events, layoutFor(this.arch)!, 1_700_000_000, 123_456));
  }

  /** Raw bytes (a record may be split across writes). */
  bytes(buf: Buffer): void {
    if (this.#fd === null) throw new Error('feeder not open');
    writeSync(this.#fd, buf);
  }

  /** Close the feeding end: a reader with no data left reads end of file. */
  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  /** The device is unplugged: the FIFO is gone, then its feeding end closes. */
  remove(): void {
    unlinkSync(this.path);
    this.close();
  }

  /** Plugged in again: a new FIFO at the same path. */
  replug(): void {
    mkfifo(this.path);
    this.open();
  }
}
