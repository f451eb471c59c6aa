import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { FakeGpioBus } from '../../../src/hw/gpio-fake.js';
import type { Bit } from '../../../src/hw/gpio.js';

test('read and write honour activeLow; written() records electrical levels', async (t) => {
  const bus = new FakeGpioBus();
  bus.set(3, 0);
  const inv = bus.factory(3, 'in', 'none', { activeLow: true });
  t.is(await inv.read(), 1);
  const out = bus.factory(4, 'low', 'none', { activeLow: true });
  await out.write(1);
  await out.write(0);
  t.deepEqual(bus.written(4), [0, 0, 1]);
  t.is(bus.level(4), 1);
  await t.throwsAsync(inv.write(1), { message: /write to an input/ });
});

test('watchers fire on the selected logical edges only', (t) => {
  const bus = new FakeGpioBus();
  bus.set(1, 1);
  bus.set(2, 1);
  const seen: Array<[string, Bit]> = [];
  bus.factory(1, 'in', 'falling', {}).watch((_e, v) => seen.push(['plain', v]));
  // activeLow: electrical 1 → 0 is a logical rising edge.
  bus.factory(2, 'in', 'rising', { activeLow: true }).watch((_e, v) => seen.push(['inv', v]));
  bus.set(1, 0);
  bus.set(1, 0); // no change, no edge
  bus.set(1, 1);
  bus.set(2, 0);
  bus.set(2, 1);
  t.deepEqual(seen, [
    ['plain', 0],
    ['inv', 1],
  ]);
});

test('bounce plays levels on the clock', (t) => {
  const bus = new FakeGpioBus();
  const clock = new FakeClock();
  const seen: Bit[] = [];
  bus.factory(7, 'in', 'both', {}).watch((_e, v) => seen.push(v));
  bus.bounce(7, [1, 0, 1], 4, clock);
  t.deepEqual(seen, [1]);
  clock.advance(4);
  t.deepEqual(seen, [1, 0]);
  clock.advance(4);
  t.deepEqual(seen, [1, 0, 1]);
});

test('export twice and export failures are HW_UNAVAILABLE; unexport frees the line', (t) => {
  const bus = new FakeGpioBus();
  const g = bus.factory(5, 'in', 'none', {});
  t.true(isIpphoneError(t.throws(() => bus.factory(5, 'in', 'none', {})), 'HW_UNAVAILABLE'));
  g.unexport();
  t.false(bus.isExported(5));
  bus.failExport(5, new Error('EBUSY'));
  t.true(isIpphoneError(t.throws(() => bus.factory(5, 'in', 'none', {})), 'HW_UNAVAILABLE'));
  t.true(bus.isExported(5) === false);
  bus.factory(5, 'in', 'none', {});
  t.true(bus.isExported(5));
});

test('the diodeless matrix model shows the ghost of a 3-key rectangle; with diodes it does not', (t) => {
  for (const diodes of [false, true]) {
    const bus = new FakeGpioBus();
    const m = bus.matrix({ rows: [10, 11], cols: [20, 21], diodes });
    const r0 = bus.factory(10, 'high', 'none', {});
    const r1 = bus.factory(11, 'high', 'none', {});
    t.deepEqual([bus.level(20), bus.level(21)], [1, 1]);
    m.press(0, 0);
    m.press(0, 1);
    m.press(1, 0);
    void r0.write(1);
    void r1.write(0); // drive row 1 only
    // Row 1 has only key (1,0); column 1 reads low only through the chain (1,0)→(0,0)→(0,1).
    t.deepEqual([bus.level(20), bus.level(21)], diodes ? [0, 1] : [0, 0], `diodes=${diodes}`);
  }
});
