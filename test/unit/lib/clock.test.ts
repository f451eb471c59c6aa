import test from 'ava';
import { FakeClock, seededRandom, systemClock } from '../../../src/lib/clock.js';

test('fake clock runs timers in due order, ties by creation', (t) => {
  const clock = new FakeClock(0);
  const seen: string[] = [];
  clock.setTimeout(() => seen.push('b'), 20);
  clock.setTimeout(() => seen.push('a'), 10);
  clock.setTimeout(() => seen.push('c'), 20);
  const cancelled = clock.setTimeout(() => seen.push('x'), 5);
  clock.clearTimeout(cancelled);
  clock.advance(15);
  t.deepEqual(seen, ['a']);
  t.is(clock.now(), 15);
  clock.advance(5);
  t.deepEqual(seen, ['a', 'b', 'c']);
  t.is(clock.pending, 0);
});

test('timers set by timers run within the same advance when due', (t) => {
  const clock = new FakeClock(0);
  const at: number[] = [];
  const tick = (): void => {
    at.push(clock.now());
    if (at.length < 3) clock.setTimeout(tick, 10);
  };
  clock.setTimeout(tick, 10);
  clock.advance(100);
  t.deepEqual(at, [10, 20, 30]);
});

test('seeded random is repeatable and in [0,1)', (t) => {
  const a = seededRandom(42);
  const b = seededRandom(42);
  for (let i = 0; i < 1000; i++) {
    const x = a();
    t.is(x, b());
    t.true(x >= 0 && x < 1);
  }
});

test('advance moves both clocks; stepWall moves the wall clock alone and no timer', (t) => {
  const clock = new FakeClock(1_000_000, 0);
  const fired: number[] = [];
  clock.setTimeout(() => fired.push(clock.elapsed()), 100);
  clock.advance(50);
  t.is(clock.now(), 1_000_050);
  t.is(clock.elapsed(), 50);
  clock.stepWall(-3_600_000);
  t.is(clock.now(), 1_000_050 - 3_600_000);
  t.is(clock.elapsed(), 50);
  t.deepEqual(fired, []);
  clock.advance(50);
  t.deepEqual(fired, [100], 'the timer follows the monotonic clock');
  t.is(clock.now(), 1_000_100 - 3_600_000, 'wall time passes from where it was stepped to');
  clock.stepWall(7_200_000);
  clock.setTimeout(() => fired.push(clock.elapsed()), 10);
  clock.advance(9);
  t.deepEqual(fired, [100]);
  clock.advance(1);
  t.deepEqual(fired, [100, 110]);
});

test('the system clock: elapsed() is monotonic ms, now() the epoch', (t) => {
  const a = systemClock.elapsed();
  const b = systemClock.elapsed();
  t.true(b >= a);
  t.true(Math.abs(systemClock.now() - Date.now()) < 1000);
});
