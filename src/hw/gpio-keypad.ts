/**
 * A phone keypad wired as a row × column matrix on GPIO, scanned on column
 * edges rather than in a loop.
 *
 * Electrical assumption (say so in the board profile's notes when it differs):
 * rows are outputs, columns are inputs with pull-ups (internal or external);
 * a pressed key joins its row to its column, so a column reads LOW when a
 * pressed key sits on a row driven LOW. Every key should have a diode
 * (anode at the column, cathode at the row): with push-pull rows, two keys in
 * one column otherwise short a high row to a low one during a scan, and a
 * diodeless pad shows ghost keys (below).
 *
 * Idle: all rows driven low, columns watched for edges (both), no CPU used.
 * A column edge (re)arms a settle timer of `debounceMs`; when the columns have
 * been quiet that long, one scan drives one row low at a time and reads the
 * columns, then drives all rows low again. The pressed set is compared with
 * what was reported: new keys are reported once (row-major order, so two keys
 * at once give two reports), released keys are forgotten (a release shows as
 * its column returning high, which is again an edge).
 *
 * While keys are held the pad is rescanned every `debounceMs` (≥ 5 ms): a key
 * pressed in a column that another held key already pulls low makes no edge,
 * and a fast roll on one column (1 then 4 before 1 is up) would lose the 4.
 * Such edge-less changes are committed when two rescans in a row agree.
 *
 * Ghosts: when a scan shows all four corners of a rectangle (rows r1,r2 ×
 * cols c1,c2), one of them may be a ghost of the other three. The corners not
 * already reported are held back (a warning is logged) until the pattern
 * breaks up; corners already reported stay reported.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { formatLineRef, type Bit, type Gpio, type GpioFactory, type GpioLineRef } from './gpio.js';
import { resolveAll } from './gpio-sysfs.js';
import type { Keypad } from './types.js';

export interface GpioMatrixKeypadOptions {
  /** Row lines (outputs, driven low when active). One per keymap row. */
  rows: GpioLineRef[];
  /** Column lines (inputs with pull-ups). One per keymap column. */
  cols: GpioLineRef[];
  /** `keymap[row][col]` is the key string reported (`0`–`9`, `*`, `#`, soft keys). */
  keymap: string[][];
  /** Quiet time before a change counts, in ms (≥ 0; 20 suits most domes). */
  debounceMs: number;
  gpio: GpioFactory;
  /** Default `/sys/class/gpio`. */
  sysfsRoot?: string;
  clock: Clock;
  log: Logger;
}

const ACTIVE: Bit = 0;
const INACTIVE: Bit = 1;

type Matrix = boolean[][];

export class GpioMatrixKeypad implements Keypad {
  readonly #o: GpioMatrixKeypadOptions;
  readonly #log: Logger;
  readonly #handlers: Array<(key: string) => void> = [];
  #rows: Gpio[] = [];
  #cols: Gpio[] = [];
  #idle: Bit[] = [];
  #timer: TimerHandle | null = null;
  #timerKind: 'settle' | 'hold' | null = null;
  #scanning = false;
  #reported = new Set<string>();
  #lastHold: string | null = null;
  #started = false;
  #closed = false;

  constructor(opts: GpioMatrixKeypadOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'keypad' });
  }

  onKey(handler: (key: string) => void): void {
    this.#handlers.push(handler);
  }

  /**
   * Resolve and export the lines, drive all rows low and watch the columns.
   * Throws `BOARD_INVALID` for a keymap that does not fit the lines and
   * `HW_UNAVAILABLE` (every problem listed) when lines cannot be had.
   */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const { rows, cols, keymap, debounceMs } = this.#o;
    const problems: string[] = [];
    if (rows.length === 0) problems.push('keypad/rows: at least one line');
    if (cols.length === 0) problems.push('keypad/cols: at least one line');
    if (keymap.length !== rows.length) problems.push(`keypad/keymap: ${keymap.length} rows for ${rows.length} row lines`);
    keymap.forEach((r, i) => {
      if (r.length !== cols.length) problems.push(`keypad/keymap/${i}: ${r.length} keys for ${cols.length} column lines`);
      r.forEach((k, j) => {
        if (typeof k !== 'string' || k === '') problems.push(`keypad/keymap/${i}/${j}: must be a non-empty string`);
      });
    });
    if (!Number.isFinite(debounceMs) || debounceMs < 0) problems.push('keypad/debounceMs: must be a number ≥ 0');
    if (problems.length > 0) throw new IpphoneError(problems.join('\n'), 'BOARD_INVALID', { problems });

    const numbers = resolveAll([...rows, ...cols], this.#o.sysfsRoot);
    const opened: Gpio[] = [];
    try {
      for (let i = 0; i < numbers.length; i++) {
        const n = numbers[i]!;
        // `low` = output starting low: idle drives every row active, glitch-free.
        opened.push(i < rows.length ? this.#o.gpio(n, 'low', 'none', {}) : this.#o.gpio(n, 'in', 'both', {}));
      }
    } catch (err) {
      for (const g of opened) this.#release(g);
      throw err;
    }
    this.#rows = opened.slice(0, rows.length);
    this.#cols = opened.slice(rows.length);
    try {
      this.#idle = await Promise.all(this.#cols.map((g) => g.read()));
    } catch (err) {
      for (const g of opened) this.#release(g);
      throw err;
    }
    this.#cols.forEach((g, c) => g.watch((err, v) => this.#onEdge(c, err, v)));
    this.#log.info({ rows: rows.map(formatLineRef), cols: cols.map(formatLineRef), lines: numbers }, 'keypad started');
    if (this.#idle.some((v) => v === ACTIVE)) this.#arm('settle', debounceMs);
  }

  /** Stop watching and unexport every line. Idempotent. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    this.#clearTimer();
    for (const g of [...this.#cols, ...this.#rows]) this.#release(g);
    this.#rows = [];
    this.#cols = [];
  }

  #release(g: Gpio): void {
    try {
      g.unwatchAll();
      g.unexport();
    } catch (err) {
      this.#log.warn({ err: errorMessage(err) }, 'keypad unexport failed');
    }
  }

  #onEdge(col: number, err: Error | null | undefined, value: Bit): void {
    if (this.#closed) return;
    if (err) {
      this.#log.warn({ col, err: errorMessage(err) }, 'keypad edge error');
    } else {
      // Our own scan toggles the columns: ignore edges while scanning (the
      // post-scan check catches real changes), and late ones (onoff reports
      // from epoll after the fact) that only restate the idle level.
      if (this.#scanning) return;
      if (this.#timerKind !== 'settle' && value === this.#idle[col]) return;
    }
    this.#arm('settle', this.#o.debounceMs);
  }

  #clearTimer(): void {
    if (this.#timer !== null) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#timerKind = null;
  }

  #arm(kind: 'settle' | 'hold', ms: number): void {
    this.#clearTimer();
    this.#timerKind = kind;
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = null;
      this.#timerKind = null;
      void this.#run(kind);
    }, ms);
  }

  async #run(kind: 'settle' | 'hold'): Promise<void> {
    if (this.#closed || this.#scanning) return;
    this.#scanning = true;
    let m: Matrix;
    let idle: Bit[];
    try {
      m = await this.#scan();
      idle = await Promise.all(this.#cols.map((g) => g.read()));
    } catch (err) {
      this.#scanning = false;
      if (this.#closed) return;
      this.#log.warn({ err: errorMessage(err) }, 'keypad scan failed');
      this.#arm('hold', this.#holdMs());
      return;
    }
    this.#scanning = false;
    if (this.#closed) return;
    this.#idle = idle;
    // A key that moved during the scan leaves the idle columns disagreeing
    // with the matrix just read: settle again instead of trusting it.
    const moved = idle.some((v, c) => (v === ACTIVE) !== m.some((row) => row[c] === true));
    if (moved) {
      this.#arm('settle', this.#o.debounceMs);
      return;
    }
    const sig = m.map((row) => row.map((p) => (p ? '1' : '0')).join('')).join('/');
    if (kind === 'settle' || sig === this.#lastHold) this.#commit(m);
    this.#lastHold = sig;
    if ((this.#reported.size > 0 || sig.includes('1')) && this.#timer === null) this.#arm('hold', this.#holdMs());
  }

  #holdMs(): number {
    return Math.max(this.#o.debounceMs, 5);
  }

  /** One pass: each row low in turn, columns read; all rows low again after. */
  async #scan(): Promise<Matrix> {
    const m: Matrix = this.#rows.map(() => this.#cols.map(() => false));
    try {
      for (const r of this.#rows) await r.write(INACTIVE);
      for (let r = 0; r < this.#rows.length; r++) {
        const row = this.#rows[r]!;
        await row.write(ACTIVE);
        for (let c = 0; c < this.#cols.length; c++) m[r]![c] = (await this.#cols[c]!.read()) === ACTIVE;
        await row.write(INACTIVE);
      }
    } finally {
      if (!this.#closed) for (const r of this.#rows) await r.write(ACTIVE);
    }
    return m;
  }

  #commit(m: Matrix): void {
    const ambiguous = ghostCorners(m);
    const now = new Set<string>();
    const held: string[] = [];
    m.forEach((row, r) =>
      row.forEach((p, c) => {
        if (!p) return;
        const k = `${r},${c}`;
        if (ambiguous.has(k) && !this.#reported.has(k)) held.push(this.#keyAt(r, c));
        else now.add(k);
      }),
    );
    if (held.length > 0) this.#log.warn({ keys: held }, 'keypad ghost pattern, keys held back');
    for (const k of this.#reported) if (!now.has(k)) this.#log.debug({ key: this.#keyAtSig(k) }, 'key released');
    const pressed = [...now].filter((k) => !this.#reported.has(k));
    this.#reported = now;
    for (const k of pressed) {
      const key = this.#keyAtSig(k);
      this.#log.debug({ key }, 'key pressed');
      for (const h of this.#handlers) {
        try {
          h(key);
        } catch (err) {
          this.#log.warn({ key, err: errorMessage(err) }, 'key handler threw');
        }
      }
    }
  }

  #keyAt(r: number, c: number): string {
    return this.#o.keymap[r]?.[c] ?? `${r},${c}`;
  }

  #keyAtSig(k: string): string {
    const [r, c] = k.split(',').map(Number) as [number, number];
    return this.#keyAt(r, c);
  }
}

/** Cells `"r,c"` that are corners of a rectangle whose four corners all read pressed. */
export function ghostCorners(m: readonly (readonly boolean[])[]): Set<string> {
  const out = new Set<string>();
  for (let r1 = 0; r1 < m.length; r1++) {
    for (let r2 = r1 + 1; r2 < m.length; r2++) {
      const a = m[r1]!;
      const b = m[r2]!;
      const shared: number[] = [];
      for (let c = 0; c < a.length; c++) if (a[c] === true && b[c] === true) shared.push(c);
      if (shared.length < 2) continue;
      for (const c of shared) {
        out.add(`${r1},${c}`);
        out.add(`${r2},${c}`);
      }
    }
  }
  return out;
}
