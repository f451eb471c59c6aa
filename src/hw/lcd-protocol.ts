/**
 * Pure byte encoders for serial character LCDs: no I/O, no state. The
 * {@link SerialLcd} adapter keeps a shadow of the screen and sends only what
 * {@link encodeDiff} says changed.
 *
 * Two command sets:
 *
 * - `matrix-orbital` — Matrix Orbital LK/VK/LCD series (and the many clones
 *   that speak it): command prefix `0xFE`; clear `FE 58`; cursor
 *   `FE 47 col row` with 1-based column and row; backlight on `FE 42 n`
 *   (n = minutes before it turns off, 0 = stay on), off `FE 46`.
 * - `hd44780-backpack` — the SparkFun "SerLCD" / generic "LCD backpack" style:
 *   `0xFE` followed by one raw HD44780 instruction byte (clear `FE 01`, set
 *   DDRAM address `FE 80|addr`), and backpack settings behind `0x7C`
 *   (backlight full `7C 9D`, off `7C 80`). DDRAM row start addresses are
 *   `00 40` for 1–2 rows, `00 40 10 50` for 16×4 and `00 40 14 54` for 20×4
 *   (generally `00 40 cols 40+cols` for 4 rows). Because the backpack reads
 *   `0x7C` (`|`) as a command prefix, `|` is never sent as text.
 */
import { IpphoneError } from '../lib/errors.js';

/** The command sets {@link codecFor} knows. */
export type LcdProtocol = 'matrix-orbital' | 'hd44780-backpack';

export const LCD_PROTOCOLS: readonly LcdProtocol[] = ['matrix-orbital', 'hd44780-backpack'];

/** Encoders for one protocol and one display geometry. Rows and columns are 0-based here. */
export interface LcdCodec {
  readonly protocol: LcdProtocol;
  readonly cols: number;
  readonly rows: number;
  /** Blank the screen and home the cursor. */
  clear(): Buffer;
  /** Move the cursor to `col` (0 … cols−1), `row` (0 … rows−1). */
  cursor(col: number, row: number): Buffer;
  /** Bytes of one {@link cursor} command; decides when merging runs pays off. */
  readonly cursorBytes: number;
  /** Backlight on (stays on) or off. */
  backlight(on: boolean): Buffer;
  /** Bytes that must not be sent as text, because the device reads them as commands. */
  readonly reserved: ReadonlySet<number>;
}

const MO = 0xfe;

function checkCell(codec: { cols: number; rows: number }, col: number, row: number): void {
  if (!Number.isInteger(col) || !Number.isInteger(row) || col < 0 || row < 0 || col >= codec.cols || row >= codec.rows) {
    throw new IpphoneError(`cursor (${col},${row}) is outside the ${codec.cols}x${codec.rows} display`, 'BOARD_INVALID', { col, row });
  }
}

/** Matrix Orbital geometry limits: the largest parts are 40×4. */
function matrixOrbital(cols: number, rows: number): LcdCodec {
  return {
    protocol: 'matrix-orbital',
    cols,
    rows,
    cursorBytes: 4,
    reserved: new Set(),
    clear: () => Buffer.from([MO, 0x58]),
    cursor(col, row) {
      checkCell(this, col, row);
      return Buffer.from([MO, 0x47, col + 1, row + 1]);
    },
    backlight: (on) => Buffer.from(on ? [MO, 0x42, 0x00] : [MO, 0x46]),
  };
}

/**
 * HD44780 DDRAM start address of each row, or a reason the geometry cannot
 * be driven by one HD44780 controller (80 bytes of DDRAM, two 40-byte lines).
 */
export function hd44780RowOffsets(cols: number, rows: number): number[] | string {
  if (rows === 1 || rows === 2) return cols <= 40 ? [0x00, 0x40].slice(0, rows) : `${cols} columns exceed the 40 an HD44780 line holds`;
  if (rows === 4) return cols <= 20 ? [0x00, 0x40, cols, 0x40 + cols] : `a ${cols}x4 display needs two HD44780 controllers (at most 20x4 supported)`;
  return `${rows} rows is not an HD44780 geometry (1, 2 or 4)`;
}

function hd44780Backpack(cols: number, rows: number): LcdCodec {
  const offsets = hd44780RowOffsets(cols, rows);
  if (typeof offsets === 'string') throw new IpphoneError(`hd44780-backpack: ${offsets}`, 'BOARD_INVALID', { cols, rows });
  return {
    protocol: 'hd44780-backpack',
    cols,
    rows,
    cursorBytes: 2,
    reserved: new Set([0x7c]),
    clear: () => Buffer.from([MO, 0x01]),
    cursor(col, row) {
      checkCell(this, col, row);
      return Buffer.from([MO, 0x80 | ((offsets[row] ?? 0) + col)]);
    },
    backlight: (on) => Buffer.from([0x7c, on ? 0x9d : 0x80]),
  };
}

/**
 * The codec for `protocol` on a `cols` × `rows` display (Matrix Orbital:
 * 1–40 × 1–4; HD44780 backpack: see {@link hd44780RowOffsets}).
 * @throws IpphoneError `BOARD_INVALID` for an unknown protocol or geometry.
 */
export function codecFor(protocol: string, cols: number, rows: number): LcdCodec {
  if (!Number.isInteger(cols) || cols < 1 || cols > 40) throw new IpphoneError(`display cols must be an integer 1-40 (got ${cols})`, 'BOARD_INVALID', { cols });
  if (!Number.isInteger(rows) || rows < 1 || rows > 4) throw new IpphoneError(`display rows must be an integer 1-4 (got ${rows})`, 'BOARD_INVALID', { rows });
  if (protocol === 'matrix-orbital') return matrixOrbital(cols, rows);
  if (protocol === 'hd44780-backpack') return hd44780Backpack(cols, rows);
  throw new IpphoneError(`display protocol must be ${LCD_PROTOCOLS.join(' or ')} (got ${JSON.stringify(protocol)})`, 'BOARD_INVALID', { protocol });
}

/**
 * One row as the device can show it: exactly `cols` cells of printable ASCII
 * (0x20–0x7E). Anything else — control characters, Latin-1, emoji (one `?`
 * per code point) — becomes `?`, since LCD character ROMs are not Unicode;
 * so do `reserved` bytes. Short rows are padded with spaces, long rows cut.
 */
export function sanitizeRow(text: string, cols: number, reserved: ReadonlySet<number> = new Set()): string {
  let out = '';
  for (const ch of text) {
    if (out.length >= cols) break;
    const c = ch.codePointAt(0) ?? 0x3f;
    out += c >= 0x20 && c <= 0x7e && !reserved.has(c) ? ch : '?';
  }
  return out.padEnd(cols, ' ');
}

/** All rows of a frame, sanitized; missing rows blank, extra rows dropped. */
export function sanitizeFrame(codec: LcdCodec, lines: readonly string[]): string[] {
  return Array.from({ length: codec.rows }, (_, r) => sanitizeRow(lines[r] ?? '', codec.cols, codec.reserved));
}

/** A frame of blank rows: what the device shows right after {@link LcdCodec.clear}. */
export function blankFrame(codec: LcdCodec): string[] {
  return Array.from({ length: codec.rows }, () => ' '.repeat(codec.cols));
}

/** Half-open column range [start, end) of one row to rewrite. */
export interface Run {
  start: number;
  end: number;
}

/**
 * Changed column runs of one row. Two runs whose unchanged gap is shorter
 * than a cursor command are merged: rewriting the gap costs fewer bytes
 * than moving the cursor over it.
 */
export function changedRuns(shown: string, next: string, cursorBytes: number): Run[] {
  const runs: Run[] = [];
  const len = Math.max(shown.length, next.length);
  for (let c = 0; c < len; c++) {
    if (shown[c] === next[c]) continue;
    const last = runs[runs.length - 1];
    if (last !== undefined && c - last.end < cursorBytes) last.end = c + 1;
    else runs.push({ start: c, end: c + 1 });
  }
  return runs;
}

/**
 * The bytes that turn the screen `shown` into `next` (both already
 * sanitized, see {@link sanitizeFrame}): per row, a cursor move and the text
 * of each changed run. Empty when nothing changed.
 */
export function encodeDiff(codec: LcdCodec, shown: readonly string[], next: readonly string[]): Buffer {
  const parts: Buffer[] = [];
  for (let r = 0; r < codec.rows; r++) {
    const from = shown[r] ?? '';
    const to = next[r] ?? '';
    for (const run of changedRuns(from, to, codec.cursorBytes)) {
      parts.push(codec.cursor(run.start, r), Buffer.from(to.slice(run.start, run.end), 'latin1'));
    }
  }
  return Buffer.concat(parts);
}

/**
 * Everything needed after the device was (re)opened, when what it shows is
 * unknown: clear, backlight on, then every non-blank run of `next`.
 */
export function encodeFull(codec: LcdCodec, next: readonly string[]): Buffer {
  return Buffer.concat([codec.clear(), codec.backlight(true), encodeDiff(codec, blankFrame(codec), next)]);
}
