/**
 * Resolve `{ chip label, line offset }` to a sysfs GPIO number.
 *
 * Sysfs numbers are `base + offset`, and the base belongs to the kernel, not
 * to the board: since Linux 6.6 the bcm2835 chip starts at 512 (571 on some
 * Pi kernels) instead of 0, so every hard-coded "GPIO 17" broke
 * (fivdi/onoff#199). We therefore read `gpiochipN/{label,base,ngpio}` at start
 * and never store a global number anywhere.
 */
import { accessSync, constants, existsSync, readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { formatLineRef, type GpioLineRef } from './gpio.js';

/** Where the kernel puts sysfs GPIO. */
export const DEFAULT_SYSFS_ROOT = '/sys/class/gpio';

/** One `gpiochipN` directory. */
export interface GpioChipInfo {
  /** Directory name, e.g. `gpiochip512`. */
  dir: string;
  label: string;
  /** First sysfs number of the chip (≥ 0). */
  base: number;
  /** Number of lines (offsets 0 … ngpio-1). */
  ngpio: number;
}

const UDEV_HINT =
  'install hw/udev/99-ipphone-gpio.rules and run the agent in group gpio (SupplementaryGroups=gpio dialout)';

/** Words for a failed sysfs access; permission errors name the udev rule and group. */
export function describeSysfsError(err: unknown, path: string): string {
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  if (code === 'EACCES' || code === 'EPERM') return `permission denied on ${path}: ${UDEV_HINT}`;
  if (code === 'EROFS') return `${path} is read-only: the systemd unit must not set ProtectKernelTunables=`;
  return `cannot read ${path}: ${errorMessage(err)}`;
}

function readInt(path: string): number {
  const text = readFileSync(path, 'utf8').trim();
  if (!/^\d+$/.test(text)) throw new Error(`not a number: ${JSON.stringify(text)}`);
  return Number(text);
}

/**
 * Every `gpiochipN` under `sysfsRoot`, in directory-name order, plus a problem
 * per unreadable chip. Throws `HW_UNAVAILABLE` when the directory itself is
 * missing or unreadable (nothing else can be said then).
 */
export function listGpioChips(sysfsRoot = DEFAULT_SYSFS_ROOT): { chips: GpioChipInfo[]; problems: string[] } {
  if (!existsSync(sysfsRoot)) {
    throw new IpphoneError(
      `no ${sysfsRoot}: kernel without CONFIG_GPIO_SYSFS or not mounted`,
      'HW_UNAVAILABLE',
      { sysfsRoot },
    );
  }
  let names: string[];
  try {
    names = readdirSync(sysfsRoot);
  } catch (err) {
    throw new IpphoneError(describeSysfsError(err, sysfsRoot), 'HW_UNAVAILABLE', { sysfsRoot }, { cause: err });
  }
  const chips: GpioChipInfo[] = [];
  const problems: string[] = [];
  for (const dir of names.filter((n) => /^gpiochip\d+$/.test(n)).sort()) {
    let at = join(sysfsRoot, dir, 'label');
    try {
      const label = readFileSync(at, 'utf8').trim();
      at = join(sysfsRoot, dir, 'base');
      const base = readInt(at);
      at = join(sysfsRoot, dir, 'ngpio');
      const ngpio = readInt(at);
      chips.push({ dir, label, base, ngpio });
    } catch (err) {
      problems.push(describeSysfsError(err, at));
    }
  }
  return { chips, problems };
}

/** Resolve one ref against an already-read chip list; a problem string or the number. */
function resolveIn(ref: GpioLineRef, chips: readonly GpioChipInfo[]): number | string {
  const name = formatLineRef(ref);
  if (typeof ref.chip !== 'string' || ref.chip === '') return `gpio line ${name}: chip label must be a non-empty string`;
  if (!Number.isInteger(ref.line) || ref.line < 0) return `gpio line ${name}: line offset must be an integer ≥ 0`;
  const matches = chips.filter((c) => c.label === ref.chip);
  if (matches.length === 0) {
    const seen = chips.map((c) => `${c.label} (${c.dir})`).join(', ') || 'none';
    return `gpio line ${name}: no gpiochip labelled ${JSON.stringify(ref.chip)}; labels seen: ${seen}`;
  }
  if (matches.length > 1) {
    return `gpio line ${name}: label ${JSON.stringify(ref.chip)} is ambiguous, carried by ${matches.map((c) => c.dir).join(', ')}`;
  }
  const chip = matches[0]!;
  if (ref.line >= chip.ngpio) {
    return `gpio line ${name}: offset ${ref.line} out of range, ${chip.dir} has lines 0–${chip.ngpio - 1}`;
  }
  return chip.base + ref.line;
}

/** Export access is what onoff needs first; say how to grant it when it is missing. */
function exportProblem(sysfsRoot: string): string | null {
  const path = join(sysfsRoot, 'export');
  try {
    accessSync(path, constants.W_OK);
    return null;
  } catch (err) {
    return describeSysfsError(err, path);
  }
}

/**
 * The sysfs number (`base + line`) of one line. Throws
 * `IpphoneError('HW_UNAVAILABLE')` saying what is wrong: sysfs missing, chip
 * label unknown (listing the labels seen) or ambiguous (naming the gpiochip
 * dirs), offset ≥ ngpio (giving the range), permission denied (naming the
 * udev rule and group).
 */
export function resolveGpioLine(ref: GpioLineRef, sysfsRoot = DEFAULT_SYSFS_ROOT): number {
  return resolveAll([ref], sysfsRoot)[0]!;
}

/**
 * Resolve several lines at once; returns their numbers in order, or throws one
 * `IpphoneError('HW_UNAVAILABLE')` whose message has one line per problem and
 * whose `context.problems` lists them all — not just the first. Two refs
 * resolving to the same number are a problem too.
 */
export function resolveAll(refs: readonly GpioLineRef[], sysfsRoot = DEFAULT_SYSFS_ROOT): number[] {
  const { chips, problems } = listGpioChips(sysfsRoot);
  const access = exportProblem(sysfsRoot);
  if (access !== null) problems.push(access);
  const numbers: number[] = [];
  const owner = new Map<number, string>();
  for (const ref of refs) {
    const r = resolveIn(ref, chips);
    if (typeof r === 'string') {
      problems.push(r);
      continue;
    }
    const prev = owner.get(r);
    if (prev !== undefined) problems.push(`gpio line ${formatLineRef(ref)}: same line as ${prev} (sysfs gpio${r}), used twice`);
    owner.set(r, formatLineRef(ref));
    numbers.push(r);
  }
  if (problems.length > 0) {
    throw new IpphoneError(problems.join('\n'), 'HW_UNAVAILABLE', { sysfsRoot, problems, refs: refs.map(formatLineRef) });
  }
  return numbers;
}
