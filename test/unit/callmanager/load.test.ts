import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { LoadPolicy, RateMeter } from '../../../src/callmanager/load.js';

test('rate over the last 10 s, older events fall out', (t) => {
  const clock = new FakeClock(0);
  const m = new RateMeter(clock.now(), 10);
  for (let s = 0; s < 10; s++) {
    m.add(clock.now(), 20);
    clock.advance(1000);
  }
  // 200 events in seconds 0..9
  t.is(m.rate(clock.now() - 1), 20);
  t.is(m.rate(clock.now()), 18, 'second 0 left the window');
  clock.advance(5000);
  t.is(m.rate(clock.now()), (4 * 20) / 10, 'seconds 6..9 remain');
  clock.advance(20_000);
  t.is(m.rate(clock.now()), 0);
});

test('a young meter divides by the seconds it has covered', (t) => {
  const clock = new FakeClock(0);
  const m = new RateMeter(clock.now(), 10);
  m.add(clock.now(), 3);
  t.is(m.rate(clock.now()), 3);
  clock.advance(2000);
  m.add(clock.now(), 3);
  t.is(m.rate(clock.now()), 2, '6 events over seconds 0, 1, 2');
});

test('ring buckets are reused, not summed across laps', (t) => {
  const clock = new FakeClock(0);
  const m = new RateMeter(clock.now(), 10);
  m.add(clock.now(), 100);
  clock.advance(10_000); // same bucket index, next lap
  m.add(clock.now(), 1);
  t.is(m.rate(clock.now()), 0.1);
});

test('load is published first, then every period, early on a ≥5% change but at most once per second', (t) => {
  const clock = new FakeClock(0);
  const p = new LoadPolicy({ periodMs: 5000 });
  t.true(p.due(100, clock.now()));
  p.published(100, clock.now());
  clock.advance(500);
  t.false(p.due(200, clock.now()), 'rate-limited');
  clock.advance(500);
  t.false(p.due(104, clock.now()), '4% is not enough');
  t.true(p.due(105, clock.now()), '5% is');
  t.true(p.due(95, clock.now()), 'down too');
  p.published(105, clock.now());
  clock.advance(4999);
  t.false(p.due(105, clock.now()));
  clock.advance(1);
  t.true(p.due(105, clock.now()), 'period');
});

test('from zero phones any phone is a change', (t) => {
  const p = new LoadPolicy({ periodMs: 5000 });
  p.published(0, 0);
  t.true(p.due(1, 1000));
  t.false(p.due(0, 1000));
});
