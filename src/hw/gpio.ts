/**
 * GPIO as the keypad and hook switch see it: a line named by chip label and
 * offset (never a global number), and the small subset of onoff's `Gpio` we
 * use. The real adapter is gpio-onoff.ts (the only importer of `onoff`); the
 * fake that ships for tests and the simulator is gpio-fake.ts.
 */

/**
 * One GPIO line, as a board profile names it.
 * `chip` is the gpiochip LABEL (`/sys/class/gpio/gpiochipN/label`, e.g.
 * `pinctrl-bcm2835`), `line` the offset within that chip (0 … ngpio-1).
 */
export interface GpioLineRef {
  chip: string;
  line: number;
}

/** A level or logical value: 0 or 1. */
export type Bit = 0 | 1;

/** Sysfs direction: `in`, or an output with `high`/`low` (raw) or unchanged (`out`) initial level. */
export type GpioDirection = 'in' | 'out' | 'high' | 'low';

/** Which logical transitions call the watchers. */
export type GpioEdge = 'none' | 'rising' | 'falling' | 'both';

/**
 * An exported line. Values are logical: with `activeLow` they are the
 * inverse of the electrical level (as the sysfs `value` file is).
 */
export interface Gpio {
  /** The logical value now. Rejects on an I/O error. */
  read(): Promise<Bit>;
  /** Drive an output line (logical value). Rejects on an I/O error. */
  write(v: Bit): Promise<void>;
  /**
   * Call `cb` on every edge chosen at export, with the logical value read
   * after it. Real hardware calls back asynchronously (epoll).
   */
  watch(cb: (err: Error | null | undefined, value: Bit) => void): void;
  /** Remove every watcher. */
  unwatchAll(): void;
  /** Stop watching and give the line back (sysfs `unexport`). */
  unexport(): void;
}

/**
 * Export a line by its sysfs number (chip base + offset, see
 * `resolveGpioLine`). `opts.activeLow` inverts values; `opts.debounceTimeout`
 * (ms) is onoff's own debounce — our keypad and hook debounce on the injected
 * clock instead and leave it unset. Throws `IpphoneError('HW_UNAVAILABLE')`.
 */
export type GpioFactory = (
  sysfsNumber: number,
  direction: GpioDirection,
  edge: GpioEdge,
  opts: { activeLow?: boolean; debounceTimeout?: number },
) => Gpio;

/** `pinctrl-bcm2835:17` — how logs and messages name a line. */
export function formatLineRef(ref: GpioLineRef): string {
  return `${ref.chip}:${ref.line}`;
}
