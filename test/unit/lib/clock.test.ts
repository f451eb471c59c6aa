import test from 'ava';
import { FakeClock, seededRandom } from '../../../src/lib/clock.js';

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
