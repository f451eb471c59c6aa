/**
 * The simulator's rebalancing setup and the `converge` checker's arithmetic
 * (src/sim/rebalance.ts, docs/simulation.md): the fewest moves that bring
 * loads within the threshold, the bound derived from the configs, and the
 * draw that leaves seeds without rebalancing as they were.
 */
import test from 'ava';
import { convergeBounds, drawRebalance, minimumMoves, REBALANCE, SPARE, withPlan } from '../../src/sim/rebalance.js';
import { defaultTopology } from '../../src/sim/group.js';
import { bounds } from '../../src/sim/invariants.js';
import { Rng } from '../../src/sim/rng.js';
import { scheduleFor } from '../../src/sim/run.js';

test('the fewest moves within threshold: every phone on one member of three needs all but a third moved', (t) => {
  t.is(minimumMoves([6, 0, 0], [10, 10, 10], 0.1), 4);
  t.is(minimumMoves([5, 0, 0], [10, 10, 10], 0.1), 3);
  t.is(minimumMoves([2, 2, 2], [10, 10, 10], 0.1), 0);
});

test('the fewest moves keep the extra phone where it already is (not on the first member by id)', (t) => {
  // Fair shares by largest remainder, ties by id, would give cm-a the extra phone: 4 moves. Keeping it on the loaded member: 3.
  t.is(minimumMoves([0, 0, 5], [10, 10, 10], 0.1), 3);
  t.is(minimumMoves([3, 2, 1], [10, 10, 10], 0.1), 1);
});

test('the fewest moves follow capacities: a member twice the size takes twice the phones', (t) => {
  t.is(minimumMoves([0, 6], [10, 20], 0.1), 2);
  t.is(minimumMoves([2, 4], [10, 20], 0.1), 0);
});

test('the converge bound is derived from the rebalancing and the phones\' configs', (t) => {
  const topo = defaultTopology(6);
  const b = convergeBounds(REBALANCE, topo, bounds(topo, 30).fallbackMs);
  // cool-down 6000 + 3 × (period 3000 + cool-down 6000) + ⌈6 / 5⌉ s of moves + connect 3000 + round 4150 + 2000
  t.is(b.convergeMs, 6000 + 27_000 + 2000 + 3000 + 4150 + 2000);
  t.is(b.settleMs, topo.holdMs + bounds(topo, 30).fallbackMs);
  t.is(b.rounds, 3);
});

test('rebalancing is drawn from its own stream: a seed\'s faults and phones do not depend on it', (t) => {
  for (let seed = 1; seed <= 30; seed++) {
    const plain = scheduleFor(seed);
    const forced = scheduleFor(seed, { plant: 'wide-threshold' });
    t.deepEqual(plain.faults, forced.faults);
    t.deepEqual(plain.topo.phones, forced.topo.phones);
    t.not(forced.plan.setting, undefined);
  }
});

test('about half the seeds run rebalancing, a fifth change membership, and an added member is a spare host', (t) => {
  let on = 0;
  let change = 0;
  const topo = defaultTopology(4);
  for (let seed = 1; seed <= 400; seed++) {
    const plan = drawRebalance(new Rng(seed).fork('rebalance'), topo);
    if (plan.setting !== undefined) on++;
    if (plan.membership !== undefined) {
      change++;
      const t2 = withPlan(topo, plan);
      if (plan.membership.kind === 'add') t.deepEqual(t2.spare, [SPARE]);
      else t.true(topo.group.some((c) => c.id === plan.membership!.cm));
    }
  }
  t.true(on > 150 && on < 250, `on ${on}`);
  t.true(change > 50 && change < 110, `change ${change}`);
});
