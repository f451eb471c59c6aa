import test from 'ava';
import { Rebalancer, type RebalancerOptions } from '../../../src/callmanager/rebalancer.js';
import { silentLogger } from '../../../src/lib/log.js';

/** Issue #10 "Lists": in-flight moves, overrides cleared, moves while the broker is down. */

function setup(over: Partial<RebalancerOptions> = {}, phones = 60, intervalMs = 1000) {
  const homed = new Set<string>(Array.from({ length: phones }, (_, i) => `p${i}`));
  const pushes: { phone: string; to: string; at: number }[] = [];
  const forgotten: string[] = [];
  let now = 0;
  let up = true;
  const r = new Rebalancer({
    self: 'a',
    group: ['a', 'b', 'c'].map((id) => ({ id, capacity: 30 })),
    enabled: true,
    periodMs: 1000,
    threshold: 0.1,
    maxMovesPerSec: 10,
    cooldownMs: 2000,
    log: silentLogger(),
    homed: () => [...homed].map((phone) => ({ phone, busy: false, lastSeen: now, intervalMs })),
    isOffline: () => false,
    push: (phone, to) => pushes.push({ phone, to, at: now }),
    release: () => {},
    forget: (phone) => forgotten.push(phone),
    connected: () => up,
    ...over,
  });
  const run = (from: number, to: number, each?: (ms: number) => void): void => {
    for (let ms = from; ms <= to; ms += 100) {
      now = ms;
      each?.(ms);
      if (ms % 1000 === 0) r.tick(ms);
      r.drain(ms);
    }
  };
  return { r, homed, pushes, forgotten, run, setUp: (v: boolean) => (up = v) };
}

test('no overshoot when departures take longer than 10 periods (phones on a 30 s keep-alive)', (t) => {
  const s = setup({}, 60, 30_000);
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.run(0, 6000);
  t.is(s.pushes.length, 40);
  // The phones moved at once and the peers say so; our table keeps them homed for
  // two of their keep-alive intervals (60 s) after their last keep-alive.
  s.r.onLoad('b', { phones: 20, capacity: 30, servicesRps: 0 }, 6000);
  s.r.onLoad('c', { phones: 20, capacity: 30, servicesRps: 0 }, 6000);
  s.run(6100, 60_000);
  t.is(s.pushes.length, 40, 'nothing moved twice over: the moves are still in flight');
  for (const p of s.pushes) s.homed.delete(p.phone);
  s.run(60_100, 120_000);
  t.is(s.pushes.length, 40, 'balanced 20/20/20');
  t.is(s.r.moves / (s.r.lastPlan?.minimumMoves || 40), 1);
});

test('a moved phone that left has its own list forgotten (overrides are cleared, not kept for ever)', (t) => {
  const s = setup();
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.run(0, 6000);
  t.is(s.pushes.length, 40);
  for (const p of s.pushes) s.homed.delete(p.phone);
  s.r.onLoad('b', { phones: 20, capacity: 30, servicesRps: 0 }, 6000);
  s.r.onLoad('c', { phones: 20, capacity: 30, servicesRps: 0 }, 6000);
  s.run(6100, 20_000);
  t.deepEqual([...s.forgotten].sort(), s.pushes.map((p) => p.phone).sort());
});

test('a phone that stayed (move given up) has its own list forgotten too', (t) => {
  const s = setup({}, 60);
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.run(0, 6000);
  const stayed = s.pushes[0]!.phone;
  for (const p of s.pushes.slice(1)) s.homed.delete(p.phone);
  s.r.onLoad('b', { phones: 20, capacity: 30, servicesRps: 0 }, 6000);
  s.r.onLoad('c', { phones: 19, capacity: 30, servicesRps: 0 }, 6000);
  s.run(6100, 30_000);
  t.true(s.forgotten.includes(stayed));
});

test('moves are not sent while the broker is down, and the stale plan is dropped, not delivered later', (t) => {
  const s = setup();
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.run(0, 1000);
  const before = s.pushes.length;
  t.true(before > 0 && before < 40);
  s.setUp(false);
  s.run(1100, 3000);
  t.is(s.pushes.length, before, 'nothing sent while down');
  t.is(s.r.queued, 0, 'the plan is dropped');
});
