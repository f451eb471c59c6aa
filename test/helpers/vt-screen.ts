/**
 * A small VT100/xterm screen model for tests that look at what a terminal
 * shows, not at the bytes: a grid of cells, a cursor, a DEC scrolling region
 * (DECSTBM), save/restore cursor (DECSC/DECRC), CUP/CUU/CUD/CHA, EL, ED,
 * CR, LF (scrolling the region at its bottom), line wrap at the right margin.
 * Sequences it does not know are skipped whole (so an unknown one never
 * prints garbage into the grid). Written from the VT100 behaviour the
 * programs rely on; enough for the terminal display (src/hw/terminal-display.ts)
 * and JSON log lines sharing one tty.
 */
export class VtScreen {
  readonly grid: string[][];
  row = 0;
  col = 0;
  #top = 0;
  #bottom: number;
  #saved = { row: 0, col: 0 };
  #pending = '';
  /** A character written in the last column sets this; the next printable wraps first (xterm's autowrap). */
  #wrapNext = false;

  /**
   * `onlcr` (default true): a line feed also returns the carriage, as a terminal's line
   * discipline does with `stty onlcr` (the default; libuv's raw mode keeps it).
   */
  constructor(
    readonly cols: number,
    readonly rows: number,
    readonly onlcr = true,
  ) {
    this.grid = Array.from({ length: rows }, () => Array<string>(cols).fill(' '));
    this.#bottom = rows - 1;
  }

  /** The screen as text, one string per row, trailing blanks cut. */
  lines(): string[] {
    return this.grid.map((r) => r.join('').trimEnd());
  }

  feed(data: string | Buffer): void {
    const text = this.#pending + (typeof data === 'string' ? data : data.toString('utf8'));
    this.#pending = '';
    const chars = Array.from(text);
    for (let i = 0; i < chars.length; i++) {
      const ch = chars[i]!;
      if (ch === '\x1b') {
        const rest = chars.slice(i).join('');
        const csi = /^\x1b\[([?0-9;]*)([@-~])/.exec(rest);
        if (csi) {
          this.#csi(csi[1]!, csi[2]!);
          i += Array.from(csi[0]).length - 1;
          continue;
        }
        if (rest.length < 2 || (rest[1] === '[' && !/^\x1b\[[?0-9;]*[@-~]/.test(rest))) {
          // An incomplete sequence at the end of this chunk: wait for the rest.
          if (/^\x1b(\[[?0-9;]*)?$/.test(rest)) {
            this.#pending = rest;
            return;
          }
        }
        if (rest[1] === '7') this.#saved = { row: this.row, col: this.col };
        else if (rest[1] === '8') ({ row: this.row, col: this.col } = this.#saved);
        i += 1;
        this.#wrapNext = false;
        continue;
      }
      if (ch === '\r') {
        this.col = 0;
        this.#wrapNext = false;
      } else if (ch === '\n') {
        if (this.onlcr) this.col = 0;
        this.#lineFeed();
        this.#wrapNext = false;
      } else if (ch === '\b') {
        this.col = Math.max(0, this.col - 1);
      } else if (ch >= ' ') {
        if (this.#wrapNext) {
          this.col = 0;
          this.#lineFeed();
          this.#wrapNext = false;
        }
        this.grid[this.row]![this.col] = ch;
        if (this.col === this.cols - 1) this.#wrapNext = true;
        else this.col++;
      }
    }
  }

  #lineFeed(): void {
    if (this.row === this.#bottom) {
      this.grid.splice(this.#top, 1);
      this.grid.splice(this.#bottom, 0, Array<string>(this.cols).fill(' '));
    } else if (this.row < this.rows - 1) this.row++;
  }

  #csi(params: string, final: string): void {
    const n = params.split(';').map((p) => (p === '' ? NaN : Number(p)));
    const p1 = Number.isNaN(n[0]!) ? 1 : n[0]!;
    this.#wrapNext = false;
    switch (final) {
      case 'H':
      case 'f':
        this.row = Math.min(this.rows - 1, Math.max(0, (Number.isNaN(n[0]!) ? 1 : n[0]!) - 1));
        this.col = Math.min(this.cols - 1, Math.max(0, (Number.isNaN(n[1] ?? NaN) ? 1 : n[1]!) - 1));
        break;
      case 'A':
        this.row = Math.max(this.row >= this.#top ? this.#top : 0, this.row - p1);
        break;
      case 'B':
        this.row = Math.min(this.row <= this.#bottom ? this.#bottom : this.rows - 1, this.row + p1);
        break;
      case 'G':
        this.col = Math.min(this.cols - 1, p1 - 1);
        break;
      case 'K': {
        const mode = Number.isNaN(n[0]!) ? 0 : n[0]!;
        const r = this.grid[this.row]!;
        for (let c = 0; c < this.cols; c++) if (mode === 2 || (mode === 0 && c >= this.col) || (mode === 1 && c <= this.col)) r[c] = ' ';
        break;
      }
      case 'J': {
        const mode = Number.isNaN(n[0]!) ? 0 : n[0]!;
        for (let r = 0; r < this.rows; r++) {
          if (mode === 0 && r < this.row) continue;
          if (mode === 1 && r > this.row) continue;
          for (let c = 0; c < this.cols; c++) {
            if (mode === 0 && r === this.row && c < this.col) continue;
            if (mode === 1 && r === this.row && c > this.col) continue;
            this.grid[r]![c] = ' ';
          }
        }
        break;
      }
      case 'r': {
        const top = Number.isNaN(n[0]!) ? 1 : n[0]!;
        const bottom = Number.isNaN(n[1] ?? NaN) ? this.rows : n[1]!;
        if (top < bottom && bottom <= this.rows) {
          this.#top = top - 1;
          this.#bottom = bottom - 1;
        } else {
          this.#top = 0;
          this.#bottom = this.rows - 1;
        }
        this.row = 0;
        this.col = 0;
        break;
      }
      default:
        // Colours (m), modes (h/l) and the rest: nothing on the grid.
        break;
    }
  }
}
