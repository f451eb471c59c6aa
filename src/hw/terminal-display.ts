/**
 * The simulator's LCD: a character display drawn in a terminal, inside a
 * box-drawing frame. On a TTY the frame is redrawn in place with ANSI cursor
 * movement; otherwise (a pipe, a log file, CI) every changed screen is printed
 * as plain lines, so a log stays readable and greppable.
 *
 * Pinned (`pin`, the sim board's display): the frame owns the top rows of the
 * terminal and everything else written to the same terminal — the agent's JSON
 * log lines on stdout — scrolls in the region below it (a DEC scrolling region,
 * `CSI top;bottom r`), so log lines never scroll the LCD away (issue 17: with
 * `examples/phone-sim.json` they did within a second, the frame being drawn
 * relative to a cursor the log had moved). Redraws save the cursor, draw at the
 * top and restore it. `close()` gives the whole screen back. A process killed
 * with SIGKILL leaves the region set: `reset` (or `tput reset`) clears it.
 */
import type { Display } from './types.js';

/** Where the display writes: `process.stdout`, `process.stderr`, or a test fake. */
export interface TextSink {
  write(chunk: string): unknown;
  /** The terminal's height in rows (Node's tty.WriteStream has it); a pinned display needs it. */
  rows?: number;
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
  /**
   * On a TTY, keep the frame at the top of the screen and let other output scroll below it
   * (above). Needs the terminal's height (`out.rows`) to leave at least 3 rows below the frame;
   * otherwise the frame is redrawn in place as without it. Default false.
   */
  pin?: boolean;
}

/** What a pinned display reads of its terminal: its height, and its resize events (Node's tty.WriteStream). */
interface SizedSink {
  rows?: unknown;
  on?: (event: 'resize', listener: () => void) => unknown;
  off?: (event: 'resize', listener: () => void) => unknown;
}

/** Rows a pinned frame leaves at least for the scrolling region below it. */
const PIN_MIN_BELOW = 3;

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
  readonly #pin: boolean;
  /** Pinned: the terminal height the scrolling region was set for; 0 while not pinned (yet). */
  #pinnedRows = 0;
  readonly #onResize = (): void => this.#repin();
  /** Screens written; for tests and the demo. */
  draws = 0;

  constructor(o: TerminalDisplayOptions) {
    this.cols = size(o.cols, 200, 20);
    this.rows = size(o.rows, 50, 4);
    this.#out = o.out;
    this.#tty = o.isTTY ?? (o.out as { isTTY?: unknown }).isTTY === true;
    this.#title = (o.title ?? '').replace(CONTROL, ' ');
    this.#lines = Array.from({ length: this.rows }, () => '');
    this.#pin = o.pin === true && this.#tty;
  }

  /** True while the frame is pinned at the top with a scrolling region below it. */
  get pinned(): boolean {
    return this.#pinnedRows > 0;
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
      // Pinned: the text scrolls in the region below the frame by itself.
      if (!this.#tty || !this.#onScreen || this.#closed || this.pinned) {
        this.#out.write(t);
        return;
      }
      this.#out.write(`${ESC}${this.rows + 2}A\r${ESC}J${t}${this.#frame().join('\n')}\n`);
    } catch {
      // As show(): output faults are not the caller's problem.
    }
  }

  /** Idempotent. Leaves the last screen visible; later show() calls are ignored. Pinned: the whole screen scrolls again. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#onScreen = false;
    if (this.pinned) {
      (this.#out as SizedSink).off?.('resize', this.#onResize);
      try {
        // Whole-screen scrolling back (this homes the cursor), then to the last row for what follows.
        this.#out.write(`${ESC}r${ESC}${this.#pinnedRows};1H\n`);
      } catch {
        // As show().
      }
      this.#pinnedRows = 0;
    }
  }

  /** The terminal's height when pinning is possible now, else 0. */
  #screenRows(): number {
    const rows = (this.#out as SizedSink).rows;
    return typeof rows === 'number' && Number.isInteger(rows) && rows >= this.rows + 2 + PIN_MIN_BELOW ? rows : 0;
  }

  /** First pinned draw, or the terminal was resized: clear, set the region below the frame, draw. */
  #repin(): void {
    if (this.#closed) return;
    const screen = this.#screenRows();
    const frame = this.#frame();
    try {
      if (screen === 0) {
        // Too small now: scroll the whole screen, draw in place from here on.
        if (this.pinned) this.#out.write(`${ESC}r${ESC}${this.#pinnedRows};1H\n`);
        this.#pinnedRows = 0;
        this.#onScreen = false;
        return;
      }
      const first = !this.pinned;
      if (first) (this.#out as SizedSink).on?.('resize', this.#onResize);
      this.#pinnedRows = screen;
      // Clear the screen, frame at the top, region below it (setting it homes the cursor), cursor to its last row.
      this.#out.write(`${ESC}H${ESC}2J${this.#atTop(frame)}${ESC}${frame.length + 1};${screen}r${ESC}${screen};1H`);
      this.#onScreen = true;
    } catch {
      // As show().
    }
  }

  /** The frame written at rows 1… with absolute moves, each row cleared first. */
  #atTop(frame: readonly string[]): string {
    return frame.map((l, i) => `${ESC}${i + 1};1H${ESC}2K${l}`).join('');
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
    if (this.#pin && !this.pinned && !this.#drawn) this.#repin();
    if (this.pinned) {
      if (this.#drawn) this.#out.write(`\x1b7${this.#atTop(frame)}\x1b8`);
    } else if (this.#tty) {
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
