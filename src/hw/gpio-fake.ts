/**
 * A GPIO bus that ships, as serialport ships `MockBinding`: the keypad and
 * hook switch run against it in unit tests and on simulated boards. Lines are
 * driven by the test (`set`, `bounce`, a keypad matrix model) and outputs are
 * recorded (`written`). `makeFakeSysfs` builds a `/sys/class/gpio` look-alike
 * in a temp dir for `resolveGpioLine`.
 *
 * Levels passed to and returned by the bus are ELECTRICAL (what a scope would
 * show); lines exported with `activeLow` see the inverse, as with sysfs.
 * Watchers are called synchronously from `set`/`write` (real onoff calls them
 * later, from epoll; code under test must cope with both).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Clock } from '../lib/clock.js';
import { IpphoneError } from '../lib/errors.js';
import type { Bit, Gpio, GpioDirection, GpioEdge, GpioFactory } from './gpio.js';

type Watcher = (err: Error | null | undefined, value: Bit) => void;

interface FakeLine {
  direction: GpioDirection;
  edge: GpioEdge;
  activeLow: boolean;
  watchers: Watcher[];
}

const flip = (b: Bit): Bit => (b === 1 ? 0 : 1);

/** A fake bus of sysfs-numbered lines. Unset lines idle at level 0. */
export class FakeGpioBus {
  readonly #levels = new Map<number, Bit>();
  readonly #lines = new Map<number, FakeLine>();
  readonly #written = new Map<number, Bit[]>();
  readonly #failures = new Map<number, Error>();
  readonly #matrices: FakeKeypadMatrix[] = [];

  /** The factory to hand to the code under test. */
  readonly factory: GpioFactory = (n, direction, edge, opts) => this.#open(n, direction, edge, opts.activeLow === true);

  /** Make the next export of `sysfsNumber` throw `err` (wrapped as HW_UNAVAILABLE). */
  failExport(sysfsNumber: number, err: Error): void {
    this.#failures.set(sysfsNumber, err);
  }

  /** Whether the line is exported now. */
  isExported(sysfsNumber: number): boolean {
    return this.#lines.has(sysfsNumber);
  }

  /** Electrical level of a line now (0 when never set). */
  level(sysfsNumber: number): Bit {
    return this.#levels.get(sysfsNumber) ?? 0;
  }

  /**
   * Drive a line from outside (a switch, a pull-up): electrical `value`.
   * Watchers of an exported input are called when the logical value changes
   * in a direction its edge setting selects. Works before export too (the
   * level is kept), which is how a test sets the state seen at start.
   */
  set(sysfsNumber: number, value: Bit): void {
    this.#drive(sysfsNumber, value);
  }

  /**
   * Contact bounce: `values[0]` now, `values[i]` at `i × gapMs` on `clock`
   * (electrical levels, as `set`).
   */
  bounce(sysfsNumber: number, values: readonly Bit[], gapMs: number, clock: Clock): void {
    values.forEach((v, i) => {
      if (i === 0) this.set(sysfsNumber, v);
      else clock.setTimeout(() => this.set(sysfsNumber, v), i * gapMs);
    });
  }

  /** Every electrical level the code under test wrote to the line, oldest first (initial `high`/`low` included). */
  written(sysfsNumber: number): Bit[] {
    return [...(this.#written.get(sysfsNumber) ?? [])];
  }

  /** Wire a key matrix between `rows` (outputs) and `cols` (inputs with pull-ups) sysfs numbers. */
  matrix(opts: { rows: readonly number[]; cols: readonly number[]; diodes?: boolean }): FakeKeypadMatrix {
    const m = new FakeKeypadMatrix(this, opts.rows, opts.cols, opts.diodes === true);
    this.#matrices.push(m);
    m.recompute();
    return m;
  }

  /** @internal Used by the matrix model: is this line an output now? */
  isOutput(sysfsNumber: number): boolean {
    const l = this.#lines.get(sysfsNumber);
    return l !== undefined && l.direction !== 'in';
  }

  #drive(n: number, value: Bit): void {
    const before = this.level(n);
    this.#levels.set(n, value);
    const line = this.#lines.get(n);
    if (line === undefined || line.direction !== 'in' || before === value) return;
    const logical = line.activeLow ? flip(value) : value;
    const wanted = line.edge === 'both' || (line.edge === 'rising' && logical === 1) || (line.edge === 'falling' && logical === 0);
    if (wanted) for (const w of [...line.watchers]) w(null, logical);
  }

  #afterOutput(): void {
    for (const m of this.#matrices) m.recompute();
  }

  #open(n: number, direction: GpioDirection, edge: GpioEdge, activeLow: boolean): Gpio {
    const failure = this.#failures.get(n);
    if (failure !== undefined) {
      this.#failures.delete(n);
      throw new IpphoneError(`gpio${n}: export failed: ${failure.message}`, 'HW_UNAVAILABLE', { sysfsNumber: n }, { cause: failure });
    }
    if (this.#lines.has(n)) throw new IpphoneError(`gpio${n}: already exported`, 'HW_UNAVAILABLE', { sysfsNumber: n });
    const line: FakeLine = { direction, edge, activeLow, watchers: [] };
    this.#lines.set(n, line);
    const record = (level: Bit) => {
      const h = this.#written.get(n) ?? [];
      h.push(level);
      this.#written.set(n, h);
      this.#levels.set(n, level);
      this.#afterOutput();
    };
    // sysfs `high`/`low` set the raw level, whatever active_low says.
    if (direction === 'high') record(1);
    else if (direction === 'low') record(0);
    else if (direction === 'out') this.#afterOutput();
    const alive = () => {
      if (this.#lines.get(n) !== line) throw new IpphoneError(`gpio${n}: not exported`, 'HW_UNAVAILABLE', { sysfsNumber: n });
    };
    return {
      read: async () => {
        alive();
        const v = this.level(n);
        return line.activeLow ? flip(v) : v;
      },
      write: async (v: Bit) => {
        alive();
        if (line.direction === 'in') throw new IpphoneError(`gpio${n}: write to an input`, 'HW_UNAVAILABLE', { sysfsNumber: n });
        record(line.activeLow ? flip(v) : v);
      },
      watch: (cb) => {
        alive();
        line.watchers.push(cb);
      },
      unwatchAll: () => {
        line.watchers = [];
      },
      unexport: () => {
        line.watchers = [];
        if (this.#lines.get(n) === line) this.#lines.delete(n);
        this.#afterOutput();
      },
    };
  }
}

/**
 * A key matrix on a {@link FakeGpioBus}: a column reads low when a pressed
 * key joins it to a row driven low, else high (pull-up). Rows not exported as
 * outputs float. Without `diodes`, current also runs through chains of
 * pressed keys, so three keys on the corners of a rectangle make the fourth
 * corner read as pressed (a ghost) — as on a real diodeless pad.
 */
export class FakeKeypadMatrix {
  readonly #pressed = new Set<string>();
  private readonly bus: FakeGpioBus;
  private readonly rows: readonly number[];
  private readonly cols: readonly number[];
  private readonly diodes: boolean;

  /** @internal Made by {@link FakeGpioBus.matrix}. */
  constructor(bus: FakeGpioBus, rows: readonly number[], cols: readonly number[], diodes: boolean) {
    this.bus = bus;
    this.rows = rows;
    this.cols = cols;
    this.diodes = diodes;
  }

  press(row: number, col: number): void {
    this.#pressed.add(`${row},${col}`);
    this.recompute();
  }

  release(row: number, col: number): void {
    this.#pressed.delete(`${row},${col}`);
    this.recompute();
  }

  /** Contact bounce of one key: `states[i]` (1 pressed, 0 released) at `i × gapMs`. */
  bounceKey(row: number, col: number, states: readonly Bit[], gapMs: number, clock: Clock): void {
    const apply = (s: Bit) => (s === 1 ? this.press(row, col) : this.release(row, col));
    states.forEach((s, i) => {
      if (i === 0) apply(s);
      else clock.setTimeout(() => apply(s), i * gapMs);
    });
  }

  /** @internal Recompute the column levels from the rows and the pressed keys. */
  recompute(): void {
    const driving = (r: number) => {
      const n = this.rows[r];
      return n !== undefined && this.bus.isOutput(n) && this.bus.level(n) === 0;
    };
    const low = new Set<number>();
    if (this.diodes) {
      for (const k of this.#pressed) {
        const [r, c] = k.split(',').map(Number) as [number, number];
        if (driving(r)) low.add(c);
      }
    } else {
      // Union-find over row nodes 0..R-1 and column nodes R..R+C-1.
      const R = this.rows.length;
      const parent = Array.from({ length: R + this.cols.length }, (_, i) => i);
      const find = (i: number): number => (parent[i] === i ? i : (parent[i] = find(parent[i]!)));
      for (const k of this.#pressed) {
        const [r, c] = k.split(',').map(Number) as [number, number];
        parent[find(r)] = find(R + c);
      }
      const lowRoots = new Set<number>();
      for (let r = 0; r < R; r++) if (driving(r)) lowRoots.add(find(r));
      for (let c = 0; c < this.cols.length; c++) if (lowRoots.has(find(R + c))) low.add(c);
    }
    this.cols.forEach((n, c) => this.bus.set(n, low.has(c) ? 0 : 1));
  }
}

/** One chip of a fake sysfs tree; `dir` defaults to `gpiochip{base}`. */
export interface FakeChip {
  label: string;
  base: number;
  ngpio: number;
  dir?: string;
}

/**
 * Build `dir` as a `/sys/class/gpio` look-alike: `export`, `unexport` and a
 * `gpiochipN/{label,base,ngpio}` per chip. Returns `dir`, to pass as
 * `sysfsRoot`.
 */
export function makeFakeSysfs(dir: string, chips: readonly FakeChip[]): string {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, 'export'), '');
  writeFileSync(join(dir, 'unexport'), '');
  for (const c of chips) {
    const d = join(dir, c.dir ?? `gpiochip${c.base}`);
    mkdirSync(d, { recursive: true });
    writeFileSync(join(d, 'label'), `${c.label}\n`);
    writeFileSync(join(d, 'base'), `${c.base}\n`);
    writeFileSync(join(d, 'ngpio'), `${c.ngpio}\n`);
  }
  return dir;
}
