/**
 * The demo's narration: one line per step, stamped with the wall-clock time
 * and the seconds since the demo began. Lines go through the terminal LCD's
 * `printAbove` so that, on a TTY, the LCD stays pinned below the story.
 */
import type { TextSink } from '../hw/terminal-display.js';

export interface NarratorOptions {
  out: TextSink;
  /** Time zero for the `+s` column (ms since the epoch). */
  t0: number;
  /** Writes text without tearing the LCD frame; default `out.write`. */
  printAbove?: (text: string) => void;
  /** Default `Date.now`. */
  now?: () => number;
}

function clock(ms: number): string {
  const d = new Date(ms);
  const p = (n: number, w = 2): string => String(n).padStart(w, '0');
  return `${p(d.getHours())}:${p(d.getMinutes())}:${p(d.getSeconds())}.${p(d.getMilliseconds(), 3)}`;
}

export class Narrator {
  readonly #o: NarratorOptions;

  constructor(o: NarratorOptions) {
    this.#o = o;
  }

  /** One step: `12:01:02.345  +3.21s  text`. */
  say(text: string): void {
    const now = (this.#o.now ?? Date.now)();
    const plus = `+${((now - this.#o.t0) / 1000).toFixed(2)}s`.padStart(8);
    this.#print(`${clock(now)} ${plus}  ${text}`);
  }

  /** Text without a time stamp (headers, tables). */
  plain(text: string): void {
    this.#print(text);
  }

  #print(text: string): void {
    if (this.#o.printAbove) this.#o.printAbove(text);
    else this.#o.out.write(text.endsWith('\n') ? text : `${text}\n`);
  }
}

/** A left-aligned text table with a header rule. */
export function table(header: readonly string[], rows: readonly (readonly string[])[]): string {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ').trimEnd();
  return [line(header), widths.map((w) => '─'.repeat(w)).join('  '), ...rows.map(line)].join('\n');
}
