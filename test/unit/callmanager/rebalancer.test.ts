import test from 'ava';
import { Rebalancer, type RebalancerOptions } from '../../../src/callmanager/rebalancer.js';
import { silentLogger } from '../../../src/lib/log.js';

function setup(over: Partial<RebalancerOptions> = {}, phones = 60) {
  const homed = new Map<string, boolean>(Array.from({ length: phones }, (_, i) => [`p${i}`, false]));
  const offline = new Set<string>();
  const pushes: { phone: string; to: string; at: number }[] = [];
  const released: { phone: string; at: number }[] = [];
  let now = 0;
  const r = new Rebalancer({
    self: 'a',
    group: [
      { id: 'a', capacity: 30 },
      { id: 'b', capacity: 30 },
      { id: 'c', capacity: 30 },
    ],
    enabled: true,
    periodMs: 1000,
    threshold: 0.1,
    maxMovesPerSec: 10,
    cooldownMs: 2000,
    log: silentLogger(),
    homed: () => [...homed].map(([phone, busy]) => ({ phone, busy, lastSeen: now })),
    isOffline: (id) => offline.has(id),
    push: (phone, to) => pushes.push({ phone, to, at: now }),
    release: (phone) => released.push({ phone, at: now }),
    ...over,
  });
  const at = (t: number): void => {
    now = t;
  };
  /** Run the drain loop every 100 ms from `from` for `ms`, as the call manager does. */
  const drainFor = (from: number, ms: number): void => {
    for (let x = from; x <= from + ms; x += 100) {
      at(x);
      r.drain(x);
    }
  };
  return { r, homed, offline, pushes, released, at, drainFor };
}

test('one round moves exactly the surplus, at no more than maxMovesPerSec, never the same phone twice', (t) => {
  const s = setup();
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.at(0);
  s.r.tick(0);
  t.is(s.r.queued, 40);
  for (let ms = 0; ms <= 5000; ms += 100) {
    s.at(ms);
    s.r.drain(ms);
  }
  t.is(s.pushes.length, 40);
  t.is(new Set(s.pushes.map((p) => p.phone)).size, 40, 'no phone twice');
  t.is(s.pushes.filter((p) => p.to === 'b').length, 20);
  t.is(s.pushes.filter((p) => p.to === 'c').length, 20);
  // Rate: never more than 10 (+ the initial bucket) in any second.
  for (let sec = 0; sec < 5; sec++) t.true(s.pushes.filter((p) => p.at >= sec * 1000 && p.at < (sec + 1) * 1000).length <= 10);
});

test('moves in flight count against the mover: no second round while phones are leaving', (t) => {
  const s = setup({ maxMovesPerSec: 1000 });
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.tick(0);
  s.drainFor(0, 500);
  t.is(s.pushes.length, 40);
  // The phones have not left yet and the peers' loads are stale: still nothing more to do
  // (within the in-flight window).
  for (let ms = 1000; ms <= 3500; ms += 500) {
    s.at(ms);
    s.r.tick(ms);
    s.drainFor(ms, 500);
  }
  t.is(s.pushes.length, 40);
});

test('busy phones are skipped and picked in a later round', (t) => {
  const s = setup({ maxMovesPerSec: 1000 }, 60);
  for (let i = 0; i < 60; i++) s.homed.set(`p${i}`, i < 45); // 45 busy, 15 idle
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.tick(0);
  s.drainFor(0, 500);
  t.is(s.pushes.length, 15);
  t.false(s.pushes.some((p) => Number(p.phone.slice(1)) < 45));
  // Some busy phones hang up. From now on the world follows the moves: a pushed phone leaves
  // within a second, and the targets' published loads count it.
  for (let i = 0; i < 45; i++) s.homed.set(`p${i}`, false);
  for (let ms = 1000; ms <= 15_000; ms += 1000) {
    for (const p of s.pushes) s.homed.delete(p.phone);
    s.r.onLoad('b', { phones: s.pushes.filter((p) => p.to === 'b').length, capacity: 30, servicesRps: 0 }, -1e9);
    s.r.onLoad('c', { phones: s.pushes.filter((p) => p.to === 'c').length, capacity: 30, servicesRps: 0 }, -1e9);
    s.at(ms);
    s.r.tick(ms);
    s.drainFor(ms, 500);
  }
  t.is(s.pushes.length, 40, 'the rest of the surplus in later rounds, and not one more');
  t.is(new Set(s.pushes.map((p) => p.phone)).size, 40);
});

test('an offline or silent peer is never a target; a target dying drops its queued moves', (t) => {
  const s = setup({ maxMovesPerSec: 5 });
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.offline.add('c');
  s.r.tick(0);
  t.is(s.r.queued, 30, 'only b: fair share of two members');
  s.drainFor(0, 1000); // 1 + 5 per second
  s.offline.add('b');
  s.drainFor(1100, 5000);
  t.true(s.pushes.every((p) => p.to === 'b'));
  t.is(s.pushes.length, 6);
  t.is(s.r.queued, 0);
});

test('disabled → plans nothing', (t) => {
  const s = setup({ enabled: false });
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.tick(0);
  s.r.drain(0);
  t.is(s.pushes.length, 0);
});

test('idle drains do not postpone the next round (rounds keep coming every period)', (t) => {
  const s = setup();
  s.r.onLoad('b', { phones: 20, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 20, capacity: 30, servicesRps: 0 }, -1e9);
  s.homed.clear();
  for (let i = 0; i < 20; i++) s.homed.set(`p${i}`, false);
  for (let ms = 0; ms <= 5000; ms += 100) {
    s.at(ms);
    if (ms % 1000 === 0) s.r.tick(ms);
    s.r.drain(ms);
  }
  t.is(s.pushes.length, 0, 'balanced: nothing to do');
  // Now cm-b empties (its phones left): the next periodic round must notice.
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 40, capacity: 30, servicesRps: 0 }, -1e9);
  s.at(6000);
  s.r.tick(6000);
  t.true(s.r.lastPlan!.imbalanced);
});

test('a member still receiving phones does not move any out (the view is in motion)', (t) => {
  const s = setup({ maxMovesPerSec: 1000 }, 20);
  s.r.onLoad('b', { phones: 20, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 20, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.tick(0);
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  // Phones keep arriving (e.g. another member's round lands here), and c looks empty (stale).
  for (let ms = 1000; ms <= 3000; ms += 1000) {
    s.homed.set(`arrival${ms}`, false);
    s.at(ms);
    s.r.tick(ms);
    s.drainFor(ms, 500);
  }
  t.is(s.pushes.length, 0, 'nothing moved while arriving');
  // Arrivals stop; after the cool-down the (now settled) imbalance is acted on.
  for (let ms = 4000; ms <= 8000; ms += 1000) {
    s.at(ms);
    s.r.tick(ms);
    s.drainFor(ms, 500);
  }
  t.true(s.pushes.length > 0);
});

test('a returning peer: restored lists are released at the move rate, before any new round', (t) => {
  const s = setup({ maxMovesPerSec: 10 }, 30);
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 30, capacity: 30, servicesRps: 0 }, -1e9);
  s.r.restore([...s.homed.keys()].map((phone) => ({ phone, to: 'b' })));
  s.r.tick(0);
  t.is(s.r.queued, 30, 'no round planned while releasing');
  s.drainFor(0, 1000);
  t.true(s.released.length >= 10 && s.released.length <= 11, `${s.released.length} released in the first second`);
  s.drainFor(1100, 3000);
  t.is(s.released.length, 30);
  t.is(new Set(s.released.map((r) => r.phone)).size, 30);
  t.is(s.pushes.length, 0);
  t.is(s.r.inflight, 30, 'released phones count as on their way to b');
});

test('a member that is up but has published no load yet is waited for, not left out of the fair shares', (t) => {
  const s = setup({ maxMovesPerSec: 1000 });
  s.r.onLoad('c', { phones: 0, capacity: 30, servicesRps: 0 }, 0);
  for (let ms = 0; ms <= 3000; ms += 1000) {
    s.at(ms);
    s.r.tick(ms);
    s.drainFor(ms, 500);
  }
  t.is(s.pushes.length, 0, 'b has not published: wait');
  s.r.onLoad('b', { phones: 0, capacity: 30, servicesRps: 0 }, 3500);
  s.at(4000);
  s.r.tick(4000);
  s.drainFor(4000, 1000);
  t.is(s.pushes.length, 40);
  t.is(s.pushes.filter((p) => p.to === 'b').length, 20);
});

test('a moved phone that left and came back is a new arrival: its old move no longer counts as incoming to the target (the group simulation, seed 100,095)', (t) => {
  const group = [
    { id: 'a', capacity: 3 },
    { id: 'b', capacity: 3 },
    { id: 'c', capacity: 3 },
  ];
  const s = setup({ maxMovesPerSec: 10, group }, 2);
  s.r.onLoad('b', { phones: 0, capacity: 3, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 0, capacity: 3, servicesRps: 0 }, -1e9);
  // A peer came back: p0 is released to b and leaves a.
  s.r.restore([{ phone: 'p0', to: 'b' }]);
  s.r.tick(0);
  s.drainFor(0, 200);
  t.is(s.released.length, 1);
  s.homed.delete('p0');
  s.r.tick(1000);
  s.r.tick(2000);
  // Later (a fault, an operator's list) p0 is back on a, and b still holds no phone: a holds 2, b 0,
  // c 0, so the fair shares are {a 1, b 1, c 0} and a's one move goes to b. Counting p0 as still on
  // its way to b (b 1) would make them {1, 1, 1} and send it to c instead.
  s.homed.set('p0', false);
  for (let x = 3000; x <= 12_000; x += 1000) {
    s.r.tick(x);
    s.drainFor(x, 900);
  }
  t.deepEqual(s.pushes.map((p) => p.to), ['b'], 'one move, to b');
});

/** a holds p0 and p1, b none, c one (capacity 10, threshold 0.1: within one phone); p0 released to b as version 100. */
function releasedToB(ours: () => number) {
  const group = [
    { id: 'a', capacity: 10 },
    { id: 'b', capacity: 10 },
    { id: 'c', capacity: 10 },
  ];
  const released: string[] = [];
  const s = setup({ maxMovesPerSec: 10, group, release: (phone) => (released.push(phone), 100), listVersion: () => ours() }, 2);
  s.r.onLoad('b', { phones: 0, capacity: 10, servicesRps: 0 }, -1e9);
  s.r.onLoad('c', { phones: 1, capacity: 10, servicesRps: 0 }, -1e9);
  s.r.restore([{ phone: 'p0', to: 'b' }]);
  s.r.tick(0);
  s.drainFor(0, 200);
  return { ...s, released };
}

test('a release ends when the phone reports a list other than the one released to it: an operator\'s list that keeps it here is not counted as on its way for the 120 s time-out (the group simulation, seed 7189)', (t) => {
  const s = releasedToB(() => 100);
  t.deepEqual(s.released, ['p0']);
  t.true(s.r.awaits('p0'));
  // Before it takes ours it reports the list it held; then ours: the release goes on.
  s.r.onReport('p0', 90, 1000);
  s.r.onReport('p0', 100, 2000);
  for (let x = 1000; x <= 4000; x += 1000) {
    s.r.tick(x);
    s.drainFor(x, 900);
  }
  t.true(s.r.awaits('p0'), 'still on its way to b');
  t.deepEqual(s.pushes, [], 'a counts p0 as b\'s: loads a 1, b 1, c 1');
  // An operator's list (version 200) puts a first: p0 stays here. Its release is over: a holds 2,
  // b 0, c 1, and a's one move goes to b at its next round — not 40 periods later.
  s.r.onReport('p0', 200, 5000);
  t.false(s.r.awaits('p0'));
  for (let x = 5000; x <= 12_000; x += 1000) {
    s.r.tick(x);
    s.drainFor(x, 900);
  }
  t.deepEqual(s.pushes.map((p) => p.to), ['b'], 'one move, to b');
});

test('a release goes on when the phone reports the list this member gives it now (the group list changed again), and when it reports an older list before taking the released one', (t) => {
  let ours = 100;
  const s = releasedToB(() => ours);
  s.r.onReport('p0', 50, 1000);
  t.true(s.r.awaits('p0'), 'an older list: ours not taken yet');
  ours = 150;
  s.r.onReport('p0', 150, 2000);
  t.true(s.r.awaits('p0'), 'our own newer list');
  s.r.onReport('p0', 100, 3000);
  t.false(s.r.awaits('p0'), 'once it held ours, any other list ends the move (a rebase down included)');
});

test('a rebalance push ends the same way: a phone that reports another list than the one pushed stays here, off the target\'s count', (t) => {
  const group = [
    { id: 'a', capacity: 10 },
    { id: 'b', capacity: 10 },
  ];
  const s = setup({ maxMovesPerSec: 10, group, push: () => 300, listVersion: () => 300 }, 4);
  s.r.onLoad('b', { phones: 0, capacity: 10, servicesRps: 0 }, -1e9);
  s.r.tick(0);
  s.drainFor(0, 900);
  const moving = [...s.homed.keys()].filter((p) => s.r.awaits(p));
  t.is(moving.length, 2, 'a moves two of four to b');
  s.r.onReport(moving[0]!, 299, 1000);
  t.true(s.r.awaits(moving[0]!));
  s.r.onReport(moving[0]!, 400, 1100);
  t.false(s.r.awaits(moving[0]!), 'superseded');
  t.true(s.r.awaits(moving[1]!));
});

test('a move to a member that goes offline is over: once that member is back the phone is not counted as on its way there, and the surplus moves at the next round (the group simulation, seed 700,037)', (t) => {
  let ours = 100;
  const s = releasedToB(() => ours);
  t.true(s.r.awaits('p0'));
  s.r.onReport('p0', 100, 1000); // it took the released list
  // b dies: the list we give p0 now (our own, version 110) demotes b, and p0 stays here.
  s.offline.add('b');
  ours = 110;
  s.r.onReport('p0', 110, 2000);
  s.r.tick(2000);
  t.false(s.r.awaits('p0'), 'not on its way to a dead member');
  // b is back with no phones; a still holds both (p0 never left): a moves one to b within a few periods.
  s.offline.delete('b');
  for (let x = 3000; x <= 12_000; x += 1000) {
    s.r.tick(x);
    s.drainFor(x, 900);
  }
  t.deepEqual(s.pushes.map((p) => p.to), ['b'], 'one move, to b — not 40 periods later');
});
