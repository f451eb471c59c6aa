/**
 * Linux input event codes (`linux/input-event-codes.h`) a phone keypad and
 * hook switch use, by name. Board profiles name keys as the device tree does
 * (`linux,code = <KEY_PHONE>` → `"KEY_PHONE"`); any other code is given as its
 * number. The values are the kernel's ABI and never change;
 * test/unit/hw/input-codes.test.ts compares every entry with the header.
 */

/** Event types (`EV_*`). */
export const EV_SYN = 0x00;
export const EV_KEY = 0x01;
export const EV_SW = 0x05;

/** `EV_SYN` codes. */
export const SYN_REPORT = 0;
export const SYN_DROPPED = 3;

/** Highest `EV_KEY` code (`KEY_MAX`) and `EV_SW` code (`SW_MAX`). */
export const KEY_MAX = 0x2ff;
export const SW_MAX = 0x10;

/**
 * `EV_KEY` codes by name: digits (top row, keypad `KEY_KP*`, phone `KEY_NUMERIC_*`),
 * star and pound, telephony keys, navigation, soft keys F1–F24 and the `BTN_0`–`BTN_9`
 * that `gpio-keys` nodes often use.
 */
export const KEY_CODES: Readonly<Record<string, number>> = {
  KEY_ESC: 1, KEY_1: 2, KEY_2: 3, KEY_3: 4, KEY_4: 5, KEY_5: 6, KEY_6: 7, KEY_7: 8, KEY_8: 9, KEY_9: 10, KEY_0: 11,
  KEY_BACKSPACE: 14, KEY_TAB: 15, KEY_ENTER: 28, KEY_SPACE: 57,
  KEY_KPASTERISK: 55, KEY_KP0: 82, KEY_KP1: 79, KEY_KP2: 80, KEY_KP3: 81, KEY_KP4: 75, KEY_KP5: 76, KEY_KP6: 77,
  KEY_KP7: 71, KEY_KP8: 72, KEY_KP9: 73, KEY_KPMINUS: 74, KEY_KPPLUS: 78, KEY_KPDOT: 83, KEY_KPENTER: 96,
  KEY_KPSLASH: 98, KEY_KPEQUAL: 117, KEY_KPCOMMA: 121,
  KEY_HOME: 102, KEY_END: 107, KEY_UP: 103, KEY_DOWN: 108, KEY_LEFT: 105, KEY_RIGHT: 106, KEY_PAGEUP: 104,
  KEY_PAGEDOWN: 109, KEY_INSERT: 110, KEY_DELETE: 111,
  KEY_MUTE: 113, KEY_VOLUMEDOWN: 114, KEY_VOLUMEUP: 115, KEY_POWER: 116, KEY_MICMUTE: 248,
  KEY_HELP: 138, KEY_MENU: 139, KEY_SETUP: 141, KEY_MAIL: 155, KEY_BACK: 158, KEY_FORWARD: 159,
  KEY_PHONE: 169, KEY_CONFIG: 171, KEY_HOMEPAGE: 172, KEY_EXIT: 174,
  KEY_PROG1: 148, KEY_PROG2: 149, KEY_PROG3: 202, KEY_PROG4: 203,
  KEY_CANCEL: 223, KEY_SEND: 231, KEY_REPLY: 232,
  KEY_OK: 352, KEY_SELECT: 353, KEY_CLEAR: 355, KEY_OPTION: 357, KEY_INFO: 358, KEY_DIRECTORY: 394,
  KEY_NEXT: 407, KEY_PREVIOUS: 412, KEY_VIDEOPHONE: 416, KEY_VOICEMAIL: 428, KEY_ADDRESSBOOK: 429,
  KEY_MESSENGER: 430, KEY_PICKUP_PHONE: 445, KEY_HANGUP_PHONE: 446,
  KEY_NUMERIC_0: 512, KEY_NUMERIC_1: 513, KEY_NUMERIC_2: 514, KEY_NUMERIC_3: 515, KEY_NUMERIC_4: 516,
  KEY_NUMERIC_5: 517, KEY_NUMERIC_6: 518, KEY_NUMERIC_7: 519, KEY_NUMERIC_8: 520, KEY_NUMERIC_9: 521,
  KEY_NUMERIC_STAR: 522, KEY_NUMERIC_POUND: 523, KEY_NUMERIC_A: 524, KEY_NUMERIC_B: 525, KEY_NUMERIC_C: 526,
  KEY_NUMERIC_D: 527, KEY_NUMERIC_11: 620, KEY_NUMERIC_12: 621,
  KEY_F1: 59, KEY_F2: 60, KEY_F3: 61, KEY_F4: 62, KEY_F5: 63, KEY_F6: 64, KEY_F7: 65, KEY_F8: 66, KEY_F9: 67,
  KEY_F10: 68, KEY_F11: 87, KEY_F12: 88, KEY_F13: 183, KEY_F14: 184, KEY_F15: 185, KEY_F16: 186, KEY_F17: 187,
  KEY_F18: 188, KEY_F19: 189, KEY_F20: 190, KEY_F21: 191, KEY_F22: 192, KEY_F23: 193, KEY_F24: 194,
  BTN_0: 256, BTN_1: 257, BTN_2: 258, BTN_3: 259, BTN_4: 260, BTN_5: 261, BTN_6: 262, BTN_7: 263, BTN_8: 264,
  BTN_9: 265,
};

/** `EV_SW` codes by name: every switch the kernel defines. */
export const SW_CODES: Readonly<Record<string, number>> = {
  SW_LID: 0, SW_TABLET_MODE: 1, SW_HEADPHONE_INSERT: 2, SW_RFKILL_ALL: 3, SW_MICROPHONE_INSERT: 4, SW_DOCK: 5,
  SW_LINEOUT_INSERT: 6, SW_JACK_PHYSICAL_INSERT: 7, SW_VIDEOOUT_INSERT: 8, SW_CAMERA_LENS_COVER: 9,
  SW_KEYPAD_SLIDE: 10, SW_FRONT_PROXIMITY: 11, SW_ROTATE_LOCK: 12, SW_LINEIN_INSERT: 13, SW_MUTE_DEVICE: 14,
  SW_PEN_INSERTED: 15, SW_MACHINE_COVER: 16,
};

/**
 * The keymap an evdev keypad gets when its profile has none: the digits of
 * the top row, the numeric keypad and the phone keypad, star and pound.
 */
export const DEFAULT_EVDEV_KEYMAP: Readonly<Record<string, string>> = Object.fromEntries([
  ...[...'0123456789'].flatMap((d) => [[`KEY_${d}`, d], [`KEY_KP${d}`, d], [`KEY_NUMERIC_${d}`, d]]),
  ['KEY_KPASTERISK', '*'], ['KEY_NUMERIC_STAR', '*'], ['KEY_NUMERIC_POUND', '#'],
]);

/** An event a board names: its type (`EV_KEY` or `EV_SW`) and code. */
export interface InputCode {
  type: typeof EV_KEY | typeof EV_SW;
  code: number;
}

/**
 * Resolve a board's name for an input code: a name from the tables above
 * (`KEY_*`, `BTN_*`, `SW_*`) or a decimal number, which is an `EV_KEY` code
 * (0–`KEY_MAX`; a switch is named by its `SW_*` name). Returns the reason
 * when it cannot, for a config problem line.
 */
export function parseInputCode(name: string | number): { ok: true; value: InputCode } | { ok: false; problem: string } {
  if (typeof name === 'number' || /^[0-9]+$/.test(name)) {
    const code = Number(name);
    if (Number.isInteger(code) && code >= 1 && code <= KEY_MAX) return { ok: true, value: { type: EV_KEY, code } };
    return { ok: false, problem: `key code ${name} is out of range (1–${KEY_MAX})` };
  }
  const key = KEY_CODES[name];
  if (key !== undefined) return { ok: true, value: { type: EV_KEY, code: key } };
  const sw = SW_CODES[name];
  if (sw !== undefined) return { ok: true, value: { type: EV_SW, code: sw } };
  return {
    ok: false,
    problem: `unknown input event code ${JSON.stringify(name)}: use a KEY_, BTN_ or SW_ name from linux/input-event-codes.h that docs/boards.md lists, or the key's number`,
  };
}
