import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { FakeGpioBus, makeFakeSysfs } from '../../../src/hw/gpio-fake.js';
import { GpioMatrixKeypad, ghostCorners, type GpioMatrixKeypadOptions } from '../../../src/hw/gpio-keypad.js';

const flush = () => new Promise<void>((r) => setImmediate(r));
const KEYMAP = [
  ['1', '2', '3'],
  ['4', '5', '6'],
  ['7', '8', '9'],
  ['*', '0', '#'],
];
const ROW_LINES = [5, 6, 12, 16];
const COL_LINES = [13, 19, 26];
const BASE = 512;
const chip = 'pinctrl-bcm2835';
const DEBOUNCE = 20;

function setup(t: { teardown(fn: () => void): void }, opts: { diodes?: boolean; overrides?: Partial<GpioMatrixKeypadOptions> } = {}) {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-keypad-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sysfsRoot = makeFakeSysfs(dir, [
    { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
    { label: chip, base: BASE, ngpio: 54 },
  ]);
  const bus = new FakeGpioBus();
  const clock = new FakeClock();
  const rows = ROW_LINES.map((n) => BASE + n);
  const cols = COL_LINES.map((n) => BASE + n);
  const matrix = bus.matrix({ rows, cols, diodes: opts.diodes ?? false });
  const keypad = new GpioMatrixKeypad({
    rows: ROW_LINES.map((line) => ({ chip, line })),
    cols: COL_LINES.map((line) => ({ chip, line })),
    keymap: KEYMAP,
    debounceMs: DEBOUNCE,
    gpio: bus.factory,
    sysfsRoot,
    clock,
    log: silentLogger(),
    ...opts.overrides,
  });
  const keys: string[] = [];
  keypad.onKey((k) => keys.push(k));
  const step = async (ms: number) => {
    for (let i = 0; i < ms; i++) {
      clock.advance(1);
      await flush();
    }
  };
  t.teardown(() => void keypad.close());
  return { bus, clock, matrix, keypad, keys, step, rows, cols };
}

test('idle drives every row low and watches the columns; no timers while idle', async (t) => {
  const { bus, clock, keypad, rows, cols, step } = setup(t);
  await keypad.start();
  for (const n of rows) t.deepEqual(bus.written(n), [0], `row gpio${n}`);
  for (const n of cols) t.is(bus.level(n), 1, 'pull-ups');
  await step(1000);
  t.is(clock.pending, 0, 'no polling while idle');
  for (const n of rows) t.deepEqual(bus.written(n), [0]);
});

test('every key of the 4×3 keymap is reported once, on press', async (t) => {
  const { clock, matrix, keypad, keys, step, bus, rows } = setup(t);
  await keypad.start();
  for (let r = 0; r < 4; r++) {
    for (let c = 0; c < 3; c++) {
      matrix.press(r, c);
      await step(DEBOUNCE);
      t.is(keys.at(-1), KEYMAP[r]![c], `key ${r},${c}`);
      await step(100); // held: rescans do not repeat it
      matrix.release(r, c);
      await step(DEBOUNCE);
      t.is(clock.pending, 0, 'back to idle after release');
      for (const n of rows) t.is(bus.level(n), 0, 'rows active again');
    }
  }
  t.deepEqual(keys, KEYMAP.flat());
});

test('bounces inside the debounce window give one key, after it has been stable for debounceMs', async (t) => {
  const { clock, matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.bounceKey(1, 1, [1, 0, 1, 0, 1, 0, 1], 3, clock); // last change at 18 ms
  await step(18 + DEBOUNCE - 1);
  t.deepEqual(keys, []);
  await step(1);
  t.deepEqual(keys, ['5']);
  // Release bounces too: no second report, nothing repeats.
  matrix.bounceKey(1, 1, [0, 1, 0, 1, 0], 4, clock);
  await step(200);
  t.deepEqual(keys, ['5']);
  t.is(clock.pending, 0);
});

test('a glitch shorter than debounceMs is no key', async (t) => {
  const { clock, matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.bounceKey(2, 2, [1, 0], 5, clock);
  await step(200);
  t.deepEqual(keys, []);
  t.is(clock.pending, 0);
});

test('two keys at once (distinct rows and columns) are both reported', async (t) => {
  const { matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.press(0, 0);
  matrix.press(2, 1);
  await step(DEBOUNCE);
  t.deepEqual(keys, ['1', '8']);
  await step(200);
  matrix.release(0, 0);
  await step(DEBOUNCE);
  matrix.release(2, 1);
  await step(DEBOUNCE);
  t.deepEqual(keys, ['1', '8']);
});

test('release is seen: the same key pressed again is reported again', async (t) => {
  const { clock, matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  for (let i = 0; i < 3; i++) {
    matrix.press(3, 2);
    await step(DEBOUNCE + 50);
    matrix.release(3, 2);
    await step(DEBOUNCE + 50);
  }
  t.deepEqual(keys, ['#', '#', '#']);
  t.is(clock.pending, 0);
});

test('a roll within one column (no column edge) is still reported', async (t) => {
  const { matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.press(0, 0);
  await step(DEBOUNCE);
  matrix.press(1, 0); // column 0 is already low: no edge
  await step(3 * DEBOUNCE);
  matrix.release(0, 0); // column 0 stays low
  await step(3 * DEBOUNCE);
  matrix.release(1, 0);
  await step(3 * DEBOUNCE);
  t.deepEqual(keys, ['1', '4']);
});

test('diodeless pad: a 3-key rectangle reports no ghost; the third key waits until unambiguous', async (t) => {
  const { matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.press(0, 0);
  await step(DEBOUNCE);
  matrix.press(0, 1);
  await step(DEBOUNCE);
  t.deepEqual(keys, ['1', '2']);
  matrix.press(1, 0); // the scan now also shows (1,1) = '5'
  await step(10 * DEBOUNCE);
  t.deepEqual(keys, ['1', '2'], 'neither 4 nor the ghost 5');
  matrix.release(0, 1); // pattern broken: (1,0) is real and alone in its rectangle
  await step(3 * DEBOUNCE);
  t.deepEqual(keys, ['1', '2', '4']);
  t.false(keys.includes('5'));
});

test('diodeless pad: three keys pressed together in an L give no key from the rectangle', async (t) => {
  const { matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.press(2, 1);
  matrix.press(2, 2);
  matrix.press(3, 1);
  await step(10 * DEBOUNCE);
  t.deepEqual(keys, []);
});

test('pad with diodes: the same three keys are three keys and no ghost', async (t) => {
  const { matrix, keypad, keys, step } = setup(t, { diodes: true });
  await keypad.start();
  matrix.press(0, 0);
  await step(DEBOUNCE);
  matrix.press(0, 1);
  await step(DEBOUNCE);
  matrix.press(1, 0);
  await step(3 * DEBOUNCE);
  t.deepEqual(keys, ['1', '2', '4']);
});

test('ghostCorners finds full rectangles only', (t) => {
  const f = false;
  const T = true;
  t.deepEqual([...ghostCorners([[T, T], [T, f]])], []);
  t.deepEqual([...ghostCorners([[T, T], [T, T]])].sort(), ['0,0', '0,1', '1,0', '1,1']);
  t.deepEqual([...ghostCorners([[T, f, T], [f, T, f], [T, f, T]])].sort(), ['0,0', '0,2', '2,0', '2,2']);
});

test('a keymap that does not fit the lines is BOARD_INVALID, listing every problem', async (t) => {
  const { keypad } = setup(t, { overrides: { keymap: [['1', '2'], ['4', '5', '6']], debounceMs: -1 } });
  const err = await t.throwsAsync(keypad.start());
  t.true(isIpphoneError(err, 'BOARD_INVALID'));
  const problems = (err as unknown as { context: { problems: string[] } }).context.problems;
  t.true(problems.some((p) => /2 rows for 4 row lines/.test(p)));
  t.true(problems.some((p) => /keymap\/0: 2 keys for 3 column lines/.test(p)));
  t.true(problems.some((p) => /debounceMs/.test(p)));
});

test('unresolvable lines are HW_UNAVAILABLE with every problem, nothing exported', async (t) => {
  const { keypad, bus, rows } = setup(t, {
    overrides: {
      rows: [{ chip, line: 5 }, { chip, line: 60 }, { chip: 'nope', line: 1 }, { chip, line: 16 }],
    },
  });
  const err = await t.throwsAsync(keypad.start());
  t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));
  t.regex(err!.message, /offset 60 out of range/);
  t.regex(err!.message, /nope:1: no gpiochip/);
  t.false(bus.isExported(rows[0]!));
});

test('an export failure midway gives back the lines already exported', async (t) => {
  const { keypad, bus, rows, cols } = setup(t);
  bus.failExport(cols[1]!, new Error('EBUSY'));
  const err = await t.throwsAsync(keypad.start());
  t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));
  for (const n of [...rows, ...cols]) t.false(bus.isExported(n), `gpio${n}`);
});

test('close unexports every line, is idempotent, and stops reports', async (t) => {
  const { keypad, bus, rows, cols, matrix, keys, step, clock } = setup(t);
  await keypad.start();
  matrix.press(0, 0);
  await keypad.close();
  await keypad.close();
  for (const n of [...rows, ...cols]) t.false(bus.isExported(n));
  await step(100);
  t.deepEqual(keys, []);
  t.is(clock.pending, 0);
});

test('an edge-less blip seen by one rescan only is not a key', async (t) => {
  const { clock, matrix, keypad, keys, step } = setup(t);
  await keypad.start();
  matrix.press(0, 0);
  await step(DEBOUNCE); // '1' reported; rescans every DEBOUNCE ms from here
  await step(DEBOUNCE / 2);
  matrix.bounceKey(1, 0, [1, 0], DEBOUNCE / 2 + 1, clock); // same column: no edge; one rescan sees it
  await step(5 * DEBOUNCE);
  t.deepEqual(keys, ['1']);
});
