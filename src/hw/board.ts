/**
 * Board profiles (`hw/boards/*.json`): which display, keypad and hook switch a
 * phone has. This module picks the adapter for each; a profile naming
 * hardware this build cannot drive is refused with the reason.
 */
import { readJsonFile } from '../config/problems.js';
import { IpphoneError } from '../lib/errors.js';
import { validateBoard, type BoardProfile } from './board-schema.js';
import { HeadlessDisplay, NoKeypad, SoftHook } from './headless.js';
import { TerminalDisplay } from './terminal-display.js';
import { KeyboardKeypad } from './keyboard.js';
import type { Display, HookSwitch, Keypad, Led, PhoneHardware } from './types.js';
import type { GpioFactory } from './gpio.js';
import { systemClock, type Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';

export type { BoardProfile } from './board-schema.js';

/**
 * Read and check a board profile against the board schema (src/hw/board-schema.ts)
 * and fill its defaults. Throws BOARD_INVALID whose message is every problem,
 * one per line as `board PATH: field: what is wrong`; context `{ problems, path }`.
 */
export function loadBoardFile(path: string): BoardProfile {
  const read = readJsonFile(path);
  const result = read.ok ? validateBoard(read.value) : { ok: false as const, problems: read.problems };
  if (!result.ok) {
    throw new IpphoneError(result.problems.map((p) => `board ${path}: ${p}`).join('\n'), 'BOARD_INVALID', { problems: result.problems, path });
  }
  return result.board;
}

export interface HardwareOptions {
  log: Logger;
  clock?: Clock;
  /** Where sysfs GPIO lives (tests use a fake tree); default /sys/class/gpio. */
  sysfsRoot?: string;
  /** GPIO lines; default onoff on sysfs (tests inject the fake bus). */
  gpio?: GpioFactory;
  /** `process.arch` whose `struct input_event` layout evdev devices are read in; default `process.arch`. */
  inputArch?: string;
}

/**
 * Adapters for a profile (null = headless). The real drivers are loaded only
 * when the profile names them: the serial LCD and GPIO pull in native addons.
 * Nothing is opened here; `start()` of each part does that (and reports an
 * unusable device there).
 */
export async function hardwareFor(board: BoardProfile | null, o: HardwareOptions): Promise<PhoneHardware> {
  if (board === null) return { display: new HeadlessDisplay(), keypad: new NoKeypad(), hook: new SoftHook() };
  const clock = o.clock ?? systemClock;
  const d = board.display;
  let display: Display;
  if (d.driver === 'serial-lcd') {
    const { SerialLcd } = await import('./serial-lcd.js');
    display = new SerialLcd({ path: d.path!, baudRate: Number(d.baudRate), cols: d.cols, rows: d.rows, protocol: d.protocol as 'matrix-orbital' | 'hd44780-backpack', log: o.log, clock });
  } else if (d.driver === 'terminal') {
    // The simulated LCD draws on stderr: stdout carries the JSON log lines. On a terminal it is
    // pinned at the top and the log lines scroll below it (terminal-display.ts).
    display = new TerminalDisplay({ cols: d.cols, rows: d.rows, out: process.stderr, isTTY: process.stderr.isTTY === true, title: board.name, pin: true });
  } else display = new HeadlessDisplay(d.cols, d.rows);

  let gpio = o.gpio;
  const gpioFactory = async (): Promise<GpioFactory> => (gpio ??= (await import('./gpio-onoff.js')).onoffGpioFactory());
  // One reader per input device: the keypad and the hook may be keys of one gpio-keys node.
  const inputs = new Map<string, import('./evdev.js').EvdevDevice>();
  const inputDevice = async (path: string) => {
    const { EvdevDevice } = await import('./evdev.js');
    let dev = inputs.get(path);
    if (dev === undefined) inputs.set(path, (dev = new EvdevDevice({ path, log: o.log, clock, ...(o.inputArch ? { arch: o.inputArch } : {}) })));
    return dev;
  };
  let hook: HookSwitch | null = null;
  let softHook: SoftHook | null = null;
  if (board.hook !== null && board.hook.driver === 'keyboard') hook = softHook = new SoftHook();
  else if (board.hook !== null && board.hook.driver === 'evdev') {
    const { EvdevHookSwitch } = await import('./evdev-hook.js');
    const h = board.hook;
    hook = new EvdevHookSwitch({ device: await inputDevice(h.path), event: h.event, offHookValue: h.offHookValue ?? 1, log: o.log });
  } else if (board.hook !== null) {
    const { GpioHookSwitch } = await import('./gpio-hook.js');
    const h = board.hook;
    hook = new GpioHookSwitch({ line: { chip: h.chip, line: h.line }, activeLow: h.activeLow, debounceMs: h.debounceMs ?? 30, gpio: await gpioFactory(), ...(o.sysfsRoot ? { sysfsRoot: o.sysfsRoot } : {}), clock, log: o.log });
  }

  const k = board.keypad;
  let keypad: Keypad;
  if (k.driver === 'gpio-matrix') {
    const { GpioMatrixKeypad } = await import('./gpio-keypad.js');
    keypad = new GpioMatrixKeypad({ rows: k.rows!, cols: k.cols!, keymap: k.keymap as string[][], debounceMs: k.debounceMs, gpio: await gpioFactory(), ...(o.sysfsRoot ? { sysfsRoot: o.sysfsRoot } : {}), clock, log: o.log });
  } else if (k.driver === 'evdev') {
    const { EvdevKeypad } = await import('./evdev-keypad.js');
    keypad = new EvdevKeypad({ device: await inputDevice(k.path!), ...(k.keymap !== undefined ? { keymap: k.keymap as Record<string, string> } : {}), log: o.log });
  } else if (k.driver === 'keyboard') {
    keypad = new KeyboardKeypad({ hook: softHook, hookKey: board.hook !== null && board.hook.driver === 'keyboard' ? board.hook.key : 'h' });
  } else keypad = new NoKeypad();

  const leds: { message?: Led; noService?: Led } = {};
  if (board.leds !== undefined) {
    for (const name of ['message', 'noService'] as const) {
      const l = board.leds[name];
      if (l === undefined) continue;
      if ('led' in l) {
        const { ClassLed } = await import('./class-led.js');
        leds[name] = new ClassLed({ dir: l.led, name, log: o.log, clock });
      } else {
        const { GpioLed } = await import('./gpio-led.js');
        leds[name] = new GpioLed({ line: { chip: l.chip, line: l.line }, activeLow: l.activeLow ?? false, gpio: await gpioFactory(), ...(o.sysfsRoot ? { sysfsRoot: o.sysfsRoot } : {}), log: o.log });
      }
    }
  }
  return { display, keypad, hook: hook ?? new SoftHook(), leds };
}
