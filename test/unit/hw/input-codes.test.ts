import { readFileSync } from 'node:fs';
import test from 'ava';
import { DEFAULT_EVDEV_KEYMAP, EV_KEY, EV_SW, EV_SYN, KEY_CODES, KEY_MAX, SW_CODES, SW_MAX, SYN_DROPPED, SYN_REPORT, parseInputCode } from '../../../src/hw/input-codes.js';

/** The kernel's own header (Debian linux-libc-dev, which every C toolchain here pulls in). */
const HEADER = '/usr/include/linux/input-event-codes.h';

test('every named code is the value linux/input-event-codes.h defines', (t) => {
  const text = readFileSync(HEADER, 'utf8');
  const defined = new Map<string, number>();
  for (const m of text.matchAll(/^#define\s+([A-Z][A-Z0-9_]*)\s+(0x[0-9a-fA-F]+|[0-9]+)\b/gm)) defined.set(m[1]!, Number(m[2]));
  const ours: Record<string, number> = { ...KEY_CODES, ...SW_CODES, EV_SYN, EV_KEY, EV_SW, SYN_REPORT, SYN_DROPPED, KEY_MAX, SW_MAX };
  for (const [name, value] of Object.entries(ours)) t.is(defined.get(name), value, name);
  t.true(Object.keys(KEY_CODES).length > 100);
  t.is(Object.keys(SW_CODES).length, SW_MAX + 1, 'every switch');
});

test('names resolve to their type and code; a number is an EV_KEY code', (t) => {
  t.deepEqual(parseInputCode('KEY_PHONE'), { ok: true, value: { type: EV_KEY, code: 169 } });
  t.deepEqual(parseInputCode('KEY_NUMERIC_POUND'), { ok: true, value: { type: EV_KEY, code: 0x20b } });
  t.deepEqual(parseInputCode('BTN_0'), { ok: true, value: { type: EV_KEY, code: 0x100 } });
  t.deepEqual(parseInputCode('SW_LID'), { ok: true, value: { type: EV_SW, code: 0 } });
  t.deepEqual(parseInputCode('SW_DOCK'), { ok: true, value: { type: EV_SW, code: 5 } });
  t.deepEqual(parseInputCode('257'), { ok: true, value: { type: EV_KEY, code: 257 } });
  t.deepEqual(parseInputCode(169), { ok: true, value: { type: EV_KEY, code: 169 } });
});

test('an unknown name or an out-of-range number is a problem that says what is accepted', (t) => {
  const bad = parseInputCode('KEY_PHONEY');
  t.false(bad.ok);
  if (!bad.ok) t.regex(bad.problem, /unknown input event code "KEY_PHONEY".*input-event-codes\.h.*number/);
  for (const n of ['0', '768', 0, 100000]) t.false(parseInputCode(n).ok, String(n));
  t.false(parseInputCode('key_1').ok, 'names are as the header spells them');
});

test('the default evdev keymap covers the digits of every keypad kind, star and pound', (t) => {
  for (const d of '0123456789') for (const prefix of ['KEY_', 'KEY_KP', 'KEY_NUMERIC_']) t.is(DEFAULT_EVDEV_KEYMAP[`${prefix}${d}`], d);
  t.is(DEFAULT_EVDEV_KEYMAP.KEY_NUMERIC_STAR, '*');
  t.is(DEFAULT_EVDEV_KEYMAP.KEY_KPASTERISK, '*');
  t.is(DEFAULT_EVDEV_KEYMAP.KEY_NUMERIC_POUND, '#');
  for (const name of Object.keys(DEFAULT_EVDEV_KEYMAP)) t.true(parseInputCode(name).ok, name);
});
