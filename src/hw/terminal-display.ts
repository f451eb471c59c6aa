/**
 * The simulator's LCD: a character display drawn in a terminal, inside a
 * box-drawing frame. On a TTY the frame is redrawn in place with ANSI cursor
 * movement; otherwise (a pipe, a log file, CI) every changed screen is printed
 * as plain lines, so a log stays readable and greppable.
 */
import type { Display } from './types.js';

/** Where the display writes: `process.stdout`, `process.stderr`, or a test fake. */
export interface TextSink {
  write(chunk: string): unknown;
}

export interface TerminalDisplayOptions {
  /** Character cells per row (1–200), e.g. 20. */
  cols: number;
  /** Rows (1–50), e.g. 4. */
  rows: number;
  out: TextSink;
  /** Redraw in place with ANSI escapes. Default: `out.isTTY` when it has one, else false. */
  isTTY?: boolean;
  /** Shown in the top border, e.g. the phone id; cut to fit. Default none. */
  title?: string;
}

const ESC = '\x1b[';

/**
 * Control characters (C0, DEL, C1) become spaces: a services page title comes
 * from the network and must not be able to move the cursor or recolour the
 * operator's terminal.
 */
// eslint-disable-next-line no-control-regex
const CONTROL = /[\u0000-\u001f\u007f-\u009f]/g;

/** Clamp a size option to an integer range; bad values fall back to `dflt`. */
function size(v: number, max: number, dflt: number): number {
  return Number.isInteger(v) && v >= 1 && v <= max ? v : dflt;
}

export class TerminalDisplay implements Display {
  readonly charset = 'unicode' as const;
  readonly cols: number;
  readonly rows: number;
  readonly #out: TextSink;
  readonly #tty: boolean;
  readonly #title: string;
  #lines: string[];
  /** True while a frame is on screen directly above the cursor (TTY mode). */
  #onScreen = false;
  #drawn = false;
  #closed = false;
  /** Screens written; for tests and the demo. */
  draws = 0;

  constructor(o: TerminalDisplayOptions) {
    this.cols = size(o.cols, 200, 20);
    this.rows = size(o.rows, 50, 4);
    this.#out = o.out;
    this.#tty = o.isTTY ?? (o.out as { isTTY?: unknown }).isTTY === true;
    this.#title = (o.title ?? '').replace(CONTROL, ' ');
    this.#lines = Array.from({ length: this.rows }, () => '');
  }

  /** The rows now shown, each exactly `cols` characters wide. */
  get lines(): readonly string[] {
    return this.#lines;
  }

  /** Whether the frame is redrawn in place (ANSI) or printed as plain lines. */
  get tty(): boolean {
    return this.#tty;
  }

  async start(): Promise<void> {}

  show(lines: readonly string[]): void {
    if (this.#closed) return;
    try {
      const next = this.#normalise(lines);
      if (this.#drawn && next.every((l, i) => l === this.#lines[i])) return;
      this.#lines = next;
      this.#draw();
    } catch {
      // Never throws (Display contract): a broken terminal must not stall failover.
    }
  }

  /**
   * Write `text` (one or more lines) to the same output without tearing the
   * frame: on a TTY the frame is erased, the text printed, and the frame drawn
   * again below it, so it stays pinned under the scrolling text.
   */
  printAbove(text: string): void {
    const t = text.endsWith('\n') ? text : `${text}\n`;
    try {
      if (!this.#tty || !this.#onScreen || this.#closed) {
        this.#out.write(t);
        return;
      }
      this.#out.write(`${ESC}${this.rows + 2}A\r${ESC}J${t}${this.#frame().join('\n')}\n`);
    } catch {
      // As show(): output faults are not the caller's problem.
    }
  }

  /** Idempotent. Leaves the last screen visible; later show() calls are ignored. */
  async close(): Promise<void> {
    this.#closed = true;
    this.#onScreen = false;
  }

  #normalise(lines: readonly string[]): string[] {
    const out: string[] = [];
    for (let r = 0; r < this.rows; r++) {
      const raw = typeof lines[r] === 'string' ? (lines[r] as string) : '';
      // Cut by code point so a surrogate pair is never split.
      const chars = Array.from(raw.replace(CONTROL, ' ')).slice(0, this.cols);
      out.push(chars.join('') + ' '.repeat(this.cols - chars.length));
    }
    return out;
  }

  #frame(): string[] {
    const width = this.cols;
    let top = '─'.repeat(width);
    if (this.#title !== '' && width >= 3) {
      const label = Array.from(` ${this.#title} `).slice(0, width - 1).join('');
      top = `─${label}${'─'.repeat(Math.max(0, width - 1 - Array.from(label).length))}`;
    }
    return [`┌${top}┐`, ...this.#lines.map((l) => `│${l}│`), `└${'─'.repeat(width)}┘`];
  }

  #draw(): void {
    const frame = this.#frame();
    if (this.#tty) {
      // Up over the old frame, then rewrite each row after clearing it.
      const up = this.#onScreen ? `${ESC}${frame.length}A` : '';
      this.#out.write(`${up}${frame.map((l) => `\r${ESC}2K${l}`).join('\n')}\n`);
      this.#onScreen = true;
    } else {
      this.#out.write(`${frame.join('\n')}\n`);
    }
    this.#drawn = true;
    this.draws++;
  }
}
