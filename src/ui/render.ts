import type { CiscoObject } from './cisco-xml.js';

/**
 * A Cisco IP Phone object → rows of text for a character display of
 * `cols × rows`. Layout:
 *
 * - row 0 is always the status row (the caller's text, e.g. `CM cm-a` or
 *   `No service`);
 * - on displays of 4 rows or more, row 1 is the object's title;
 * - the remaining rows show the body: menu items numbered (`1 Directory`;
 *   `01 …` once a menu has 10 items or more, so every number has the same
 *   number of digits), directory entries with the number right-aligned, text
 *   word-wrapped; on smaller displays the title is the body's first line;
 * - when the body does not fit it is cut into pages and a `page/pages`
 *   indicator sits at the right of the title row (or of the status row when
 *   there is no title row); `#` moves to the next page (see ScreenController).
 *
 * Pure functions; no state.
 */

/** `ascii` for character LCDs (HD44780 ROMs differ above 0x7E), `unicode` for the terminal simulator. */
export type Charset = 'ascii' | 'unicode';

export interface RenderOptions {
  /** Characters per row (≥ 1). */
  cols: number;
  /** Rows (≥ 1). */
  rows: number;
  /** Text of row 0. */
  status: string;
  /** Body page to show, 0-based; clamped into range. Default 0. */
  page?: number;
  /** Default `ascii`. */
  charset?: Charset;
  /** A transient line shown on row 1 over whatever is there. */
  notice?: string;
}

export interface Rendered {
  /** Exactly `rows` lines, each at most `cols` characters, trailing blanks trimmed. */
  lines: string[];
  /** The page shown (after clamping) and the number of pages (≥ 1). */
  page: number;
  pages: number;
}

/** Typographic characters with an obvious ASCII spelling; everything else non-ASCII becomes `?`. */
const ASCII_SPELLING: Record<string, string> = {
  '\u2014': '-',
  '\u2013': '-',
  '\u2010': '-',
  '\u2011': '-',
  '\u2212': '-',
  '\u2018': "'",
  '\u2019': "'",
  '\u201c': '"',
  '\u201d': '"',
  '\u2026': '...',
  '\u00a0': ' ',
};

/**
 * Text fit for the display: control characters (tabs included) become spaces;
 * with `ascii`, dashes, quotes and `…` get their ASCII spelling and any other
 * character outside printable ASCII becomes `?`.
 */
export function displayText(s: string, charset: Charset = 'ascii'): string {
  let out = '';
  for (const ch of s) {
    const code = ch.codePointAt(0)!;
    if (code < 0x20 || code === 0x7f || (code >= 0x80 && code < 0xa0)) out += ' ';
    else if (charset === 'unicode' || code <= 0x7e) out += ch;
    else out += ASCII_SPELLING[ch] ?? '?';
  }
  return out;
}

/** Length in characters (code points), not UTF-16 units. */
const len = (s: string): number => Array.from(s).length;
/** The first `n` characters. */
const cut = (s: string, n: number): string => Array.from(s).slice(0, Math.max(0, n)).join('');

/**
 * Word-wrap one text to lines of at most `width` characters. Newlines start
 * a new line (an empty line for a blank one); a word longer than `width` is
 * split. Runs of spaces collapse.
 */
export function wrapText(text: string, width: number): string[] {
  const out: string[] = [];
  for (const para of text.split(/\r?\n/)) {
    const words = para.split(/[ \t]+/).filter((w) => w !== '');
    if (words.length === 0) {
      out.push('');
      continue;
    }
    let line = '';
    for (let word of words) {
      while (len(word) > width) {
        if (line !== '') {
          out.push(line);
          line = '';
        }
        out.push(cut(word, width));
        word = Array.from(word).slice(width).join('');
      }
      if (word === '') continue;
      if (line === '') line = word;
      else if (len(line) + 1 + len(word) <= width) line += ` ${word}`;
      else {
        out.push(line);
        line = word;
      }
    }
    if (line !== '') out.push(line);
  }
  return out;
}

/** Digits of a menu item number: 1 up to 9 items, 2 up to 99, 3 for 100. */
export function menuNumberWidth(items: number): number {
  return String(Math.max(1, items)).length;
}

/** The body lines of an object (title not included), each at most `cols` characters. */
export function bodyLines(obj: CiscoObject, cols: number, charset: Charset = 'ascii'): string[] {
  const t = (s: string) => displayText(s, charset);
  switch (obj.kind) {
    case 'menu': {
      const w = menuNumberWidth(obj.items.length);
      return obj.items.map((it, i) => cut(`${String(i + 1).padStart(w, '0')} ${t(it.name)}`, cols));
    }
    case 'directory':
      return obj.entries.map((e) => {
        const tel = t(e.telephone);
        const name = cut(t(e.name), Math.max(0, cols - len(tel) - 1));
        return cut(tel === '' ? name : `${name}${' '.repeat(Math.max(1, cols - len(name) - len(tel)))}${tel}`, cols);
      });
    case 'text':
      // Line breaks are layout, not control characters: keep them through displayText.
      return wrapText(obj.text.split(/\r?\n/).map(t).join('\n'), cols);
  }
}

/** `left` cut so that `right` fits at the right edge of a `cols`-wide row. */
function withRight(left: string, right: string, cols: number): string {
  if (len(right) >= cols) return cut(right, cols);
  const l = cut(left, cols - len(right) - 1);
  return `${l}${' '.repeat(cols - len(l) - len(right))}${right}`;
}

/** Lay out the screen for `obj` (`null`: no page yet — status row only). */
export function renderScreen(obj: CiscoObject | null, opts: RenderOptions): Rendered {
  const { cols, rows } = opts;
  const charset = opts.charset ?? 'ascii';
  const titleRow = rows >= 4;
  const bodyRows = Math.max(0, rows - 1 - (titleRow ? 1 : 0));
  const title = obj === null ? '' : displayText(obj.title, charset);
  let body: string[] = [];
  if (obj !== null) {
    body = bodyLines(obj, cols, charset);
    if (body.length === 0 && obj.prompt !== undefined) body = wrapText(displayText(obj.prompt, charset), cols);
    if (!titleRow && title !== '') body = [cut(title, cols), ...body];
  }
  const pages = bodyRows === 0 ? 1 : Math.max(1, Math.ceil(body.length / bodyRows));
  const page = Math.min(Math.max(0, Math.floor(opts.page ?? 0)), pages - 1);
  const indicator = pages > 1 ? `${page + 1}/${pages}` : '';
  const status = displayText(opts.status, charset);

  const lines: string[] = [];
  lines.push(!titleRow && indicator !== '' ? withRight(status, indicator, cols) : cut(status, cols));
  if (titleRow) lines.push(indicator !== '' ? withRight(title, indicator, cols) : cut(title, cols));
  lines.push(...body.slice(page * bodyRows, (page + 1) * bodyRows));
  while (lines.length < rows) lines.push('');
  if (opts.notice !== undefined && rows >= 2) lines[1] = cut(displayText(opts.notice, charset), cols);
  return { lines: lines.slice(0, rows).map((l) => l.trimEnd()), page, pages };
}
