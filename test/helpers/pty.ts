/**
 * Real pseudo-terminal pairs for serial tests, made by socat, and a small
 * Matrix Orbital screen emulator to decode what a driver wrote.
 *
 * `socat pty,link=A pty,link=B` creates two ptys joined back to back: bytes
 * written to A come out of B. Killing socat closes both masters, so whoever
 * holds A sees a hangup, as with an unplugged USB serial adapter; socat
 * removes the links on exit. Every socat is SIGKILLed when the test process
 * exits.
 */
import { spawn } from 'node:child_process';
import { constants, existsSync, mkdtempSync, openSync, rmSync, writeFileSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { killAtExit } from './reaper.js';

const SOCAT = '/usr/bin/socat';
/** Poll `cond` every few ms until it is true; throws after `timeoutMs`. */
export async function until(cond: () => boolean, timeoutMs: number, what: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

export interface PtyPair {
  /** Link to the end the code under test opens. */
  readonly near: string;
  /** Link to the end the test reads. */
  readonly far: string;
  /** socat's stderr so far (for failure messages). */
  log(): string;
  /** SIGTERM socat and wait for it to exit and remove its links (bounded). */
  kill(): Promise<void>;
}

/**
 * Start socat making a pty pair at `near` and `far` (symlinks), and wait
 * (≤ `timeoutMs`, default 5000) until it reports the transfer loop and both
 * links exist.
 */
export async function startPtyPair(near: string, far: string, timeoutMs = 5000): Promise<PtyPair> {
  const child = spawn(SOCAT, ['-d', '-d', `pty,raw,echo=0,link=${near}`, `pty,raw,echo=0,link=${far}`], { stdio: ['ignore', 'ignore', 'pipe'] });
  killAtExit(child);
  let stderr = '';
  let exited = false;
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (s: string) => (stderr += s));
  const exit = new Promise<void>((resolve) => {
    child.on('exit', () => {
      exited = true;
      resolve();
    });
  });
  child.on('error', (err) => (stderr += `\nspawn error: ${err.message}`));
  try {
    await until(() => exited || (stderr.includes('starting data transfer loop') && existsSync(near) && existsSync(far)), timeoutMs, 'socat pty pair');
  } catch (err) {
    child.kill('SIGKILL');
    throw new Error(`${(err as Error).message}; socat said: ${stderr}`);
  }
  if (exited) throw new Error(`socat exited early: ${stderr}`);
  return {
    near,
    far,
    log: () => stderr,
    async kill() {
      if (!exited) child.kill('SIGTERM');
      await Promise.race([exit, new Promise((r) => setTimeout(r, 3000))]);
      if (!exited) {
        child.kill('SIGKILL');
        await exit;
      }
      await until(() => !existsSync(near) && !existsSync(far), 2000, 'socat to remove its links');
    },
  };
}

/** A fresh temp dir, removed by the returned function. */
export function tempDir(prefix = 'ipphone-pty-'): { dir: string; remove: () => void } {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  return { dir, remove: () => rmSync(dir, { recursive: true, force: true }) };
}

/**
 * A Matrix Orbital display in software: applies clear (`FE 58`), home
 * (`FE 48`), cursor (`FE 47 col row`, 1-based), backlight (`FE 42 n`,
 * `FE 46`) and text to a cols × rows grid. Text wraps to the next row, as on
 * the real part. Unknown commands are recorded in `errors`.
 */
export class MatrixOrbitalEmulator {
  readonly cols: number;
  readonly rows: number;
  grid: string[][];
  col = 0;
  row = 0;
  backlight = false;
  clears = 0;
  bytes = 0;
  readonly errors: string[] = [];
  #pending: number[] = [];

  constructor(cols: number, rows: number) {
    this.cols = cols;
    this.rows = rows;
    this.grid = this.#blank();
  }

  #blank(): string[][] {
    return Array.from({ length: this.rows }, () => Array.from({ length: this.cols }, () => ' '));
  }

  /** The screen as `rows` strings of `cols` characters. */
  screen(): string[] {
    return this.grid.map((r) => r.join(''));
  }

  feed(chunk: Buffer | Uint8Array): void {
    for (const b of chunk) {
      this.bytes++;
      if (this.#pending.length > 0 || b === 0xfe) {
        this.#pending.push(b);
        this.#command();
      } else {
        this.#put(b);
      }
    }
  }

  #command(): void {
    const [, cmd, a, b] = this.#pending;
    if (cmd === undefined) return;
    switch (cmd) {
      case 0x58:
        this.grid = this.#blank();
        this.col = this.row = 0;
        this.clears++;
        break;
      case 0x48:
        this.col = this.row = 0;
        break;
      case 0x46:
        this.backlight = false;
        break;
      case 0x42:
        if (a === undefined) return;
        this.backlight = true;
        break;
      case 0x47:
        if (a === undefined || b === undefined) return;
        if (a < 1 || a > this.cols || b < 1 || b > this.rows) this.errors.push(`cursor out of range: ${a},${b}`);
        this.col = Math.min(Math.max(a - 1, 0), this.cols - 1);
        this.row = Math.min(Math.max(b - 1, 0), this.rows - 1);
        break;
      default:
        this.errors.push(`unknown command 0x${cmd.toString(16)}`);
    }
    this.#pending = [];
  }

  #put(b: number): void {
    if (b < 0x20 || b > 0x7e) this.errors.push(`non-printable byte 0x${b.toString(16)}`);
    const row = this.grid[this.row];
    if (row) row[this.col] = String.fromCharCode(b);
    this.col++;
    if (this.col >= this.cols) {
      this.col = 0;
      this.row = (this.row + 1) % this.rows;
    }
  }
}

/**
 * Read the far end of a pty pair into a fresh emulator. `close()` stops
 * reading. The pty is read through a non-blocking tty handle (epoll), not
 * fs.createReadStream, whose blocking reads would pin libuv pool threads.
 */
export function emulateFar(far: string, cols: number, rows: number): { emu: MatrixOrbitalEmulator; close: () => void; stream: ReadStream } {
  const emu = new MatrixOrbitalEmulator(cols, rows);
  const fd = openSync(far, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  const stream = new ReadStream(fd);
  stream.on('data', (chunk) => emu.feed(chunk as Buffer));
  // EIO when socat goes away: expected, the test kills it on purpose.
  stream.on('error', () => {});
  return { emu, stream, close: () => stream.destroy() };
}

/**
 * A 20×4 Matrix Orbital LCD on a socat pty, as a phone's board sees it: the
 * board profile (`board`, written into `dir`) drives the pty's near end, an
 * emulator reads the far end. `unplug()` kills socat (the driver sees a
 * hangup); `plug()` brings a fresh, blank display back at the same path.
 */
export class PtyLcd {
  private constructor(
    readonly board: string,
    readonly near: string,
    readonly far: string,
    public pair: PtyPair,
    public reader: ReturnType<typeof emulateFar>,
  ) {}

  static async start(dir: string): Promise<PtyLcd> {
    const near = path.join(dir, 'lcd');
    const far = path.join(dir, 'far');
    const pair = await startPtyPair(near, far);
    const board = path.join(dir, 'board.json');
    writeFileSync(
      board,
      JSON.stringify({
        name: 'pty-20x4',
        display: { driver: 'serial-lcd', path: near, baudRate: 19200, cols: 20, rows: 4, protocol: 'matrix-orbital' },
        keypad: { driver: 'none' },
        hook: null,
      }),
    );
    return new PtyLcd(board, near, far, pair, emulateFar(far, 20, 4));
  }

  /** What the display shows, a line a row. */
  screen(): string[] {
    return this.reader.emu.screen();
  }

  async unplug(): Promise<void> {
    await this.pair.kill();
    this.reader.close();
  }

  async plug(): Promise<void> {
    this.pair = await startPtyPair(this.near, this.far);
    this.reader = emulateFar(this.far, 20, 4);
  }

  async close(): Promise<void> {
    this.reader.close();
    await this.pair.kill().catch(() => undefined);
  }

  /** {@link start} in a temp dir of its own; display and dir are gone at the test's teardown. */
  static async forTest(t: { teardown(fn: () => unknown): void }): Promise<PtyLcd> {
    const tmp = tempDir();
    t.teardown(tmp.remove);
    const lcd = await PtyLcd.start(tmp.dir);
    t.teardown(() => lcd.close());
    return lcd;
  }
}
