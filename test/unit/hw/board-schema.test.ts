import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { BOARD_SCHEMA_PATH, boardSchemaText, writeBoardSchema } from '../../../src/hw/board-schema-gen.js';
import { validateBoard } from '../../../src/hw/board-schema.js';
import { hardwareFor, loadBoardFile } from '../../../src/hw/board.js';
import { FakeGpioBus, makeFakeSysfs } from '../../../src/hw/gpio-fake.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { isIpphoneError } from '../../../src/lib/errors.js';

const BOARDS = new URL('../../../hw/boards/', import.meta.url);
const read = (name: string) => JSON.parse(readFileSync(new URL(name, BOARDS), 'utf8')) as Record<string, any>;
const problems = (raw: unknown) => {
  const r = validateBoard(raw);
  return r.ok ? [] : r.problems;
};

test('schema/board.schema.json is up to date (run: npx tsx src/hw/board-schema-gen.ts)', (t) => {
  t.is(readFileSync(BOARD_SCHEMA_PATH, 'utf8'), boardSchemaText());
  const doc = JSON.parse(boardSchemaText()) as Record<string, any>;
  t.regex(String(doc.$schema), /json-schema\.org/);
  t.deepEqual(doc.required, ['name', 'display', 'keypad', 'hook']);
  t.deepEqual(doc.properties.display.properties.protocol.anyOf.map((s: { const: string }) => s.const), ['matrix-orbital', 'hd44780-backpack']);
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-board-schema-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  t.is(readFileSync(writeBoardSchema(join(dir, 'b.json')), 'utf8'), boardSchemaText());
});

test('every shipped board profile validates, headless and sim included', (t) => {
  const names = readdirSync(BOARDS).filter((n) => n.endsWith('.json'));
  for (const n of ['headless.json', 'sim.json', 'ref-rpi-20x4.json', 'ref-16x2-backpack.json', 'ref-dt-evdev.json']) t.true(names.includes(n), n);
  for (const n of names) t.deepEqual(problems(read(n)), [], n);
});

test('the reference boards say what the hardware is; defaults are filled', (t) => {
  const rpi = loadBoardFile(new URL('ref-rpi-20x4.json', BOARDS).pathname);
  t.like(rpi.display, { driver: 'serial-lcd', path: '/dev/ttyAMA0', baudRate: 19200, protocol: 'matrix-orbital', cols: 20, rows: 4 });
  t.is(rpi.keypad.rows?.length, 4);
  t.is(rpi.keypad.cols?.length, 3);
  t.true(rpi.keypad.rows!.every((l) => l.chip === 'pinctrl-bcm2835'));
  t.like(rpi.hook, { chip: 'pinctrl-bcm2835', activeLow: true });
  t.like(rpi.leds, { message: { chip: 'pinctrl-bcm2835', activeLow: false }, noService: { chip: 'pinctrl-bcm2835' } });
  const small = loadBoardFile(new URL('ref-16x2-backpack.json', BOARDS).pathname);
  t.like(small.display, { protocol: 'hd44780-backpack', cols: 16, rows: 2 });
  t.like(small.hook, { debounceMs: 30 }, 'hook debounce default');
  const headless = loadBoardFile(new URL('headless.json', BOARDS).pathname);
  t.like(headless, { display: { driver: 'none', cols: 20, rows: 4 }, keypad: { driver: 'none', debounceMs: 20 }, hook: null });
  const minimal = validateBoard({ name: 'm', display: { driver: 'none' }, keypad: { driver: 'none' }, hook: null });
  t.true(minimal.ok && minimal.board.display.cols === 20 && minimal.board.display.rows === 4);
});

test('serial-lcd needs path, baudRate and protocol; every problem is named with its path', (t) => {
  const b = read('ref-rpi-20x4.json');
  b.display = { driver: 'serial-lcd', baudRate: 12345, protocol: 'hitachi', cols: 99 };
  t.deepEqual(problems(b), [
    'display/baudRate: must be one of 1200, 2400, 4800, 9600, 19200, 38400, 57600 or 115200 (got 12345)',
    'display/protocol: must be "matrix-orbital" or "hd44780-backpack" (got "hitachi")',
    'display/cols: must be an integer from 8 to 40 (got 99)',
    'display/path: is required for driver serial-lcd',
  ]);
});

test('gpio-matrix needs rows, cols and a keymap of rows × cols', (t) => {
  const b = read('ref-rpi-20x4.json');
  b.keypad.keymap = [['1', '2', '3'], ['4', '5'], ['7', '8', '9']];
  t.deepEqual(problems(b), [
    'keypad/keymap: must have one row per keypad/rows entry (4) (got 3)',
    'keypad/keymap/1: must have one key per keypad/cols entry (3) (got 2)',
  ]);
  t.deepEqual(problems({ ...b, keypad: { driver: 'gpio-matrix' } }), [
    'keypad/rows: is required for driver gpio-matrix',
    'keypad/cols: is required for driver gpio-matrix',
    'keypad/keymap: is required for driver gpio-matrix',
  ]);
});

test('GPIO lines are chip + offset, used once; typos and bad types are named', (t) => {
  const b = read('ref-rpi-20x4.json');
  b.keypad.rows[1] = { chip: 'pinctrl-bcm2835', line: 19 };
  b.keypad.cols[0] = { chip: '', line: -1 };
  b.hook = { chip: 'pinctrl-bcm2835', line: 17, activelow: true };
  b.leds.noService = { chip: 'pinctrl-bcm2835', line: 22 };
  b.colour = 'blue';
  t.deepEqual(problems(b).sort(), [
    'colour: unknown field (typo?)',
    'hook/activeLow: is required',
    'hook/activelow: unknown field (typo?)',
    'keypad/cols/0/chip: must be a non-empty string (got "")',
    'keypad/cols/0/line: must be an integer from 0 to 1023 (got -1)',
    'keypad/cols/1: line pinctrl-bcm2835:19 is already used by keypad/rows/1',
    'leds/noService: line pinctrl-bcm2835:22 is already used by leds/message',
  ]);
});

test('hook: null, a GPIO switch or the simulator key; anything else is refused', (t) => {
  const base = { name: 'x', display: { driver: 'none' }, keypad: { driver: 'none' } };
  t.deepEqual(problems({ ...base, hook: { driver: 'keyboard', key: 'h' } }), []);
  t.deepEqual(problems({ ...base, hook: { driver: 'gpio', chip: 'c', line: 1, activeLow: false } }), []);
  t.deepEqual(problems({ ...base, hook: 5 }), ['hook: must be an object or null (got 5)']);
  t.deepEqual(problems(base), ['hook: is required (null when the board has none)']);
  t.deepEqual(problems({ ...base, hook: { driver: 'keyboard' } }), ['hook/key: is required']);
  t.deepEqual(problems([]), ['(root): must be a JSON object (got [])']);
});

test('evdev keypad and hook: input event codes by name (linux/input-event-codes.h) or number; unknown names and misplaced fields are named', (t) => {
  const base = { name: 'x', display: { driver: 'none' } };
  const ok = { driver: 'evdev', path: '/dev/input/event0', keymap: { KEY_NUMERIC_1: '1', KEY_KPASTERISK: '*', '257': 'menu' } };
  t.deepEqual(problems({ ...base, keypad: ok, hook: { driver: 'evdev', path: '/dev/input/event1', event: 'SW_DOCK', offHookValue: 0 } }), []);
  t.deepEqual(problems({ ...base, keypad: { driver: 'evdev', path: '/dev/input/event0' }, hook: { driver: 'evdev', path: '/dev/input/event0', event: 169 } }), [], 'default keymap; a code number');
  t.deepEqual(problems({ ...base, keypad: { driver: 'evdev' }, hook: null }), ['keypad/path: is required for driver evdev']);
  t.deepEqual(problems({ ...base, keypad: { ...ok, keymap: { KEY_FOO: '1', KEY_1: '' } }, hook: null }), [
    'keypad/keymap/KEY_1: must be a key name of 1 to 16 characters (got "")',
    'keypad/keymap/KEY_FOO: unknown input event code "KEY_FOO": use a KEY_, BTN_ or SW_ name from linux/input-event-codes.h that docs/boards.md lists, or the key\'s number',
  ]);
  t.deepEqual(problems({ ...base, keypad: { ...ok, keymap: [['1']], rows: [{ chip: 'c', line: 1 }] }, hook: null }), [
    'keypad/rows: is for gpio-matrix; the kernel scans an evdev keypad',
    'keypad/keymap: for evdev is an object of input event code → key, e.g. { "KEY_1": "1" }',
  ]);
  t.deepEqual(problems({ ...base, keypad: { driver: 'none' }, hook: { driver: 'evdev', path: '/dev/input/event1', event: 'KEY_PHONY' } }), [
    'hook/event: unknown input event code "KEY_PHONY": use a KEY_, BTN_ or SW_ name from linux/input-event-codes.h that docs/boards.md lists, or the key\'s number',
  ]);
  t.deepEqual(problems({ ...base, keypad: { driver: 'none' }, hook: { driver: 'evdev', event: 'KEY_PHONE', offHookValue: 2 } }), ['hook/path: is required', 'hook/offHookValue: must be 0 or 1 (got 2)']);
  t.deepEqual(problems({ ...base, keypad: { ...ok, keymap: { KEY_PHONE: 'x' } }, hook: { driver: 'evdev', path: ok.path, event: 'KEY_PHONE' } }), [
    'hook/event: KEY_PHONE is also a key in keypad/keymap on the same device',
  ]);
  t.deepEqual(problems({ ...base, keypad: { driver: 'none', path: '/dev/input/event0', keymap: { KEY_1: '1' } }, hook: null }), [
    'keypad/keymap: an object of input event codes is for driver evdev',
    'keypad/path: is for driver evdev',
  ]);
});

test('lamps: a GPIO line or an LED class directory (led), each directory used once', (t) => {
  const base = { name: 'x', display: { driver: 'none' }, keypad: { driver: 'none' }, hook: null };
  t.deepEqual(problems({ ...base, leds: { message: { led: '/sys/class/leds/green:message' }, noService: { chip: 'c', line: 3 } } }), []);
  t.deepEqual(problems({ ...base, leds: { message: { led: 'sys/x' }, noService: { led: '/a', chip: 'x' } } }), [
    'leds/message/led: must be a string matching ^/ (got "sys/x")',
    'leds/noService/chip: unknown field (typo?)',
  ]);
  t.deepEqual(problems({ ...base, leds: { message: { led: '/a' }, noService: { led: '/a' } } }), ['leds/noService/led: /a is already used by leds/message']);
  t.deepEqual(problems({ ...base, leds: { message: { chip: 'c' } } }), ['leds/message/line: is required']);
  const ref = loadBoardFile(new URL('ref-dt-evdev.json', BOARDS).pathname);
  t.like(ref, { keypad: { driver: 'evdev' }, hook: { driver: 'evdev', event: 'KEY_PHONE', offHookValue: 1 }, leds: { noService: { led: '/sys/class/leds/red:no-service' } } });
});

test('loadBoardFile throws BOARD_INVALID with every problem', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-board-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ name: 'bad', display: { driver: 'serial-lcd' }, keypad: { driver: 'none' }, hook: null }));
  const err = t.throws(() => loadBoardFile(bad));
  t.true(isIpphoneError(err, 'BOARD_INVALID'));
  t.is(err!.message.split('\n').length, 3);
  t.regex(err!.message, /^board .*bad\.json: display\/path: is required for driver serial-lcd$/m);
  t.deepEqual((err as { context?: { problems?: string[] } }).context?.problems?.length, 3);
  writeFileSync(bad, '{ nope');
  t.regex(t.throws(() => loadBoardFile(bad))!.message, /not valid JSON/);
});

test('hardwareFor builds the real drivers a profile names; GPIO lines resolve on a (fake) sysfs tree', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-hw-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = silentLogger();
  const clock = new FakeClock(0);
  const board = loadBoardFile(new URL('ref-rpi-20x4.json', BOARDS).pathname);
  const bus = new FakeGpioBus();
  const sysfsRoot = makeFakeSysfs(join(dir, 'sys'), [{ label: 'pinctrl-bcm2835', base: 512, ngpio: 54 }]);
  const hw = await hardwareFor(board, { log, clock, gpio: bus.factory, sysfsRoot });
  t.is(hw.display.constructor.name, 'SerialLcd');
  t.is(hw.keypad.constructor.name, 'GpioMatrixKeypad');
  t.is(hw.hook?.constructor.name, 'GpioHookSwitch');
  await hw.keypad.start();
  await hw.hook!.start();
  t.true(bus.isExported(512 + 5), 'row line 5 of the chip at base 512');
  // The no-service lamp: lit, then off; a repeated state writes nothing.
  const lamp = hw.leds!.noService!;
  await lamp.start();
  lamp.set(true);
  lamp.set(true);
  lamp.set(false);
  await new Promise((r) => setImmediate(r));
  t.deepEqual(bus.written(512 + 27).slice(-2), [1, 0], 'lit, then off');
  t.false(bus.written(512 + 27).slice(0, -2).includes(1), 'off until lit');
  await lamp.close();
  await hw.keypad.close();
  await hw.hook!.close();

  // No sysfs GPIO at all: starting the keypad says so.
  const none = await hardwareFor(board, { log, clock, gpio: new FakeGpioBus().factory, sysfsRoot: join(dir, 'missing') });
  const err = await t.throwsAsync(() => none.keypad.start());
  t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));

  const headless = await hardwareFor(loadBoardFile(new URL('headless.json', BOARDS).pathname), { log });
  t.is(headless.display.cols, 20);
});

test('hardwareFor: an evdev board gets the evdev keypad and hook and LED-class lamps, no GPIO', async (t) => {
  const gpio = () => {
    throw new Error('no GPIO on an evdev board');
  };
  const hw = await hardwareFor(loadBoardFile(new URL('ref-dt-evdev.json', BOARDS).pathname), { log: silentLogger(), clock: new FakeClock(0), gpio });
  t.is(hw.keypad.constructor.name, 'EvdevKeypad');
  t.is(hw.hook?.constructor.name, 'EvdevHookSwitch');
  t.is(hw.leds?.message?.constructor.name, 'ClassLed');
  t.is(hw.leds?.noService?.constructor.name, 'ClassLed');
});
