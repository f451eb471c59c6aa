import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';

test('first keep-alive is a new arrival, the next within 2 intervals is not', (t) => {
  const clock = new FakeClock(0);
  const table = new PhoneTable(1000);
  t.true(table.touch('p1', false, undefined, clock.now()));
  clock.advance(1500);
  t.false(table.touch('p1', true, undefined, clock.now()));
  t.true(table.isHomed('p1', clock.now()));
  t.deepEqual([...table.homedPhones(clock.now())], [{ phone: 'p1', busy: true, lastSeen: 1500, intervalMs: 1000 }]);
});

test('a phone is homed for exactly 2 of its intervals after its last keep-alive', (t) => {
  const clock = new FakeClock(0);
  const table = new PhoneTable(1000);
  table.touch('p1', false, undefined, clock.now());
  table.touch('p2', false, 5000, clock.now());
  clock.advance(2000);
  t.is(table.count(clock.now()), 2);
  clock.advance(1);
  t.false(table.isHomed('p1', clock.now()));
  t.true(table.isHomed('p2', clock.now()), 'its own interval counts');
  t.is(table.count(clock.now()), 1);
  t.is(table.size, 1, 'count swept the expired row');
  clock.advance(8000);
  t.is(table.count(clock.now()), 0);
  t.is(table.size, 0);
});

test('a phone back after expiry is a new arrival again', (t) => {
  const clock = new FakeClock(0);
  const table = new PhoneTable(1000);
  table.touch('p1', false, undefined, clock.now());
  clock.advance(2001);
  t.true(table.touch('p1', false, undefined, clock.now()), 'expired but not yet swept');
  clock.advance(2001);
  table.sweep(clock.now());
  t.true(table.touch('p1', false, undefined, clock.now()), 'swept');
});

test('sweep bounds memory to the phones still here', (t) => {
  const clock = new FakeClock(0);
  const table = new PhoneTable(1000);
  for (let i = 0; i < 1000; i++) table.touch(`p${i}`, false, undefined, clock.now());
  clock.advance(1500);
  for (let i = 0; i < 10; i++) table.touch(`p${i}`, false, undefined, clock.now());
  clock.advance(1000);
  t.is(table.sweep(clock.now()), 990);
  t.is(table.size, 10);
  t.deepEqual([...table.homedPhones(clock.now())].map((h) => h.phone).sort(), Array.from({ length: 10 }, (_, i) => `p${i}`).sort());
});
