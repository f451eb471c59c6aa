/**
 * A FIFO standing in for `/dev/input/eventN`: the test writes `struct
 * input_event` records (src/hw/evdev-codec.ts `encodeEvents`, either layout)
 * and the driver reads them as it reads a device. Closing the writer is the
 * device going away (the reader sees end of file); unlinking the FIFO first
 * makes the reopen attempts fail with ENOENT until it is made again.
 */
import { spawnSync } from 'node:child_process';
import { closeSync, constants, open, openSync, unlinkSync, writeSync } from 'node:fs';
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

/** The writing end of a FIFO; `open()` resolves once a reader has the FIFO open too. */
export class FifoFeeder {
  readonly path: string;
  readonly arch: string;
  #fd: number | null = null;

  constructor(path: string, arch: string) {
    this.path = path;
    this.arch = arch;
  }

  /** Open for writing: waits (in the thread pool) for the driver to open the read end. */
  async open(): Promise<void> {
    this.#fd = await new Promise<number>((resolve, reject) => open(this.path, 'w', (err, fd) => (err ? reject(err) : resolve(fd))));
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

  /** Close the writing end: the reader sees end of file. */
  close(): void {
    if (this.#fd !== null) closeSync(this.#fd);
    this.#fd = null;
  }

  /**
   * End of the test: close the writer, and wake a reader still blocked opening
   * the FIFO (a non-blocking open for writing succeeds only while a reader is
   * there), so no thread of the pool stays blocked after the test.
   */
  release(): void {
    this.close();
    try {
      closeSync(openSync(this.path, constants.O_WRONLY | constants.O_NONBLOCK));
    } catch {
      // ENXIO: no reader waiting; ENOENT: the FIFO is gone.
    }
  }

  /** The device is unplugged: the FIFO is gone, then the writer closes. */
  remove(): void {
    unlinkSync(this.path);
    this.close();
  }
}
