import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { FakeGpioBus, makeFakeSysfs } from '../../../src/hw/gpio-fake.js';
import { GpioHookSwitch } from '../../../src/hw/gpio-hook.js';

const flush = () => new Promise<void>((r) => setImmediate(r));
const LINE = 512 + 17;

function setup(t: { teardown(fn: () => void): void }, activeLow: boolean, initial: 0 | 1) {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-hook-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const sysfsRoot = makeFakeSysfs(dir, [{ label: 'pinctrl-bcm2835', base: 512, ngpio: 54 }]);
  const bus = new FakeGpioBus();
  const clock = new FakeClock();
  bus.set(LINE, initial);
  const hook = new GpioHookSwitch({
    line: { chip: 'pinctrl-bcm2835', line: 17 },
    activeLow,
    debounceMs: 30,
    gpio: bus.factory,
    sysfsRoot,
    clock,
    log: silentLogger(),
  });
  const events: boolean[] = [];
  hook.onChange((off) => events.push(off));
  const step = async (ms: number) => {
    clock.advance(ms);
    await flush();
  };
  return { bus, clock, hook, events, step };
}

// [activeLow, electrical level when on hook, when off hook]
const polarities: Array<[boolean, 0 | 1, 0 | 1]> = [
  [true, 1, 0],
  [false, 0, 1],
];

for (const [activeLow, onLevel, offLevel] of polarities) {
  test(`start state is read (activeLow ${activeLow})`, async (t) => {
    const a = setup(t, activeLow, offLevel);
    await a.hook.start();
    t.true(a.hook.isOffHook());
    const b = setup(t, activeLow, onLevel);
    await b.hook.start();
    t.false(b.hook.isOffHook());
    t.deepEqual([...a.events, ...b.events], []);
  });

  test(`off and on hook after debounce (activeLow ${activeLow})`, async (t) => {
    const { bus, hook, events, step } = setup(t, activeLow, onLevel);
    await hook.start();
    bus.set(LINE, offLevel);
    await step(29);
    t.deepEqual(events, [], 'not before debounceMs');
    t.false(hook.isOffHook());
    await step(1);
    t.deepEqual(events, [true]);
    t.true(hook.isOffHook());
    bus.set(LINE, onLevel);
    await step(30);
    t.deepEqual(events, [true, false]);
    t.false(hook.isOffHook());
    await step(1000);
    t.deepEqual(events, [true, false]);
  });
}

test('flapping faster than debounce reports nothing; a sustained change reports once', async (t) => {
  const { bus, clock, hook, events, step } = setup(t, true, 1);
  await hook.start();
  const levels: Array<0 | 1> = [];
  for (let i = 0; i < 40; i++) levels.push(i % 2 === 0 ? 0 : 1); // ends on hook (1)
  bus.bounce(LINE, levels, 10, clock);
  for (let i = 0; i < 40; i++) await step(10);
  await step(100);
  t.deepEqual(events, [], 'flap ending where it began');
  bus.bounce(LINE, [0, 1, 0, 1, 0], 10, clock); // ends off hook
  for (let i = 0; i < 4; i++) await step(10);
  t.deepEqual(events, []);
  await step(29);
  t.deepEqual(events, []);
  await step(1);
  t.deepEqual(events, [true]);
  await step(500);
  t.deepEqual(events, [true]);
});

test('close unexports, stops events and is idempotent', async (t) => {
  const { bus, hook, events, step } = setup(t, true, 1);
  await hook.start();
  t.true(bus.isExported(LINE));
  bus.set(LINE, 0);
  await hook.close();
  await hook.close();
  t.false(bus.isExported(LINE));
  await step(100);
  t.deepEqual(events, []);
});

test('an unknown chip fails start with HW_UNAVAILABLE and exports nothing', async (t) => {
  const { bus } = setup(t, true, 1);
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-hook-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const hook = new GpioHookSwitch({
    line: { chip: 'gpio-brcmstb', line: 3 },
    activeLow: true,
    debounceMs: 30,
    gpio: bus.factory,
    sysfsRoot: makeFakeSysfs(dir, [{ label: 'pinctrl-bcm2835', base: 512, ngpio: 54 }]),
    clock: new FakeClock(),
    log: silentLogger(),
  });
  const err = await t.throwsAsync(hook.start());
  t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));
  t.regex(err!.message, /labels seen: pinctrl-bcm2835/);
  t.false(bus.isExported(512 + 3));
  t.false(bus.isExported(LINE));
});
