import test from 'ava';
import { fairShares, pickMoves, planRebalance, stableHash, type MemberLoad } from '../../../src/callmanager/rebalance.js';
import { seededRandom } from '../../../src/lib/clock.js';

const m = (id: string, phones: number, capacity = 100): MemberLoad => ({ id, phones, capacity });

test('fair shares are integers proportional to capacity and sum to the total', (t) => {
  t.deepEqual(fairShares([m('a', 0, 100), m('b', 0, 200), m('c', 0, 300)], 60), { a: 10, b: 20, c: 30 });
  const f = fairShares([m('a', 0), m('b', 0), m('c', 0)], 10);
  t.is(f.a! + f.b! + f.c!, 10);
  t.deepEqual(f, { a: 4, b: 3, c: 3 }, 'remainder to the smallest id on ties');
});

const table: { name: string; members: MemberLoad[]; threshold: number; transfers: { from: string; to: string; count: number }[]; min: number }[] = [
  { name: 'balanced → nothing', members: [m('a', 20), m('b', 20), m('c', 20)], threshold: 0.1, transfers: [], min: 0 },
  { name: 'within threshold → nothing', members: [m('a', 25), m('b', 20), m('c', 15)], threshold: 0.1, transfers: [], min: 0 },
  {
    name: '60 on one of three equal → 20 to each of the others',
    members: [m('a', 60), m('b', 0), m('c', 0)],
    threshold: 0.1,
    transfers: [
      { from: 'a', to: 'b', count: 20 },
      { from: 'a', to: 'c', count: 20 },
    ],
    min: 40,
  },
  {
    name: 'capacities 100/200/300 → proportional',
    members: [m('a', 60, 100), m('b', 0, 200), m('c', 0, 300)],
    threshold: 0.05,
    transfers: [
      { from: 'a', to: 'b', count: 20 },
      { from: 'a', to: 'c', count: 30 },
    ],
    min: 50,
  },
  {
    name: 'two overloaded, one empty (a returning call manager)',
    members: [m('a', 0), m('b', 30), m('c', 30)],
    threshold: 0.1,
    transfers: [
      { from: 'b', to: 'a', count: 10 },
      { from: 'c', to: 'a', count: 10 },
    ],
    min: 20,
  },
];

for (const row of table) {
  test(`plan: ${row.name}`, (t) => {
    const plan = planRebalance(row.members, row.threshold);
    t.deepEqual(plan.transfers, row.transfers);
    t.is(plan.minimumMoves, row.min);
    t.is(plan.transfers.reduce((a, x) => a + x.count, 0), row.min, 'moves = minimum');
  });
}

test('property: applying a plan lands every member on its fair share, no member crosses it', (t) => {
  const rnd = seededRandom(11);
  for (let run = 0; run < 500; run++) {
    const n = 2 + Math.floor(rnd() * 5);
    const members = Array.from({ length: n }, (_, i) => m(`cm${i}`, Math.floor(rnd() * 300), 50 + Math.floor(rnd() * 300)));
    const plan = planRebalance(members, 0);
    const after = new Map(members.map((x) => [x.id, x.phones]));
    for (const tr of plan.transfers) {
      t.true((plan.fair[tr.from] ?? 0) < members.find((x) => x.id === tr.from)!.phones, 'only from overloaded');
      after.set(tr.from, after.get(tr.from)! - tr.count);
      after.set(tr.to, after.get(tr.to)! + tr.count);
    }
    if (plan.imbalanced) for (const x of members) t.is(after.get(x.id), plan.fair[x.id]);
    // Every member computes the same plan whatever order it sees the group in.
    t.deepEqual(planRebalance([...members].reverse(), 0).transfers, plan.transfers);
  }
});

test('pickMoves: idle phones only, stable order, excluded ones skipped, counts per target', (t) => {
  const plan = planRebalance([m('a', 10), m('b', 0)], 0.05);
  const phones = Array.from({ length: 10 }, (_, i) => ({ phone: `p${i}`, busy: i < 3 }));
  const picks = pickMoves('a', plan, phones, new Set(['p3']));
  t.is(picks.length, 5);
  t.true(picks.every((p) => p.to === 'b'));
  t.false(picks.some((p) => ['p0', 'p1', 'p2', 'p3'].includes(p.phone)));
  t.deepEqual(pickMoves('a', plan, [...phones].reverse(), new Set(['p3'])), picks, 'order independent');
  t.deepEqual(pickMoves('b', plan, phones, new Set()), [], 'an underloaded member moves nothing');
});

test('stable hash is FNV-1a', (t) => {
  t.is(stableHash(''), 0x811c9dc5);
  t.is(stableHash('a'), 0xe40c292c);
});

test('fair shares give a tied remainder to the member already holding the phone: 5 phones all on c of three equal members move 3, not 4', (t) => {
  const plan = planRebalance([m('a', 0, 10), m('b', 0, 10), m('c', 5, 10)], 0.1);
  t.deepEqual(plan.fair, { a: 2, b: 1, c: 2 });
  t.is(plan.minimumMoves, 3);
  t.deepEqual(plan.transfers, [
    { from: 'c', to: 'a', count: 2 },
    { from: 'c', to: 'b', count: 1 },
  ]);
});

test('property: with equal capacities the plan moves the fewest phones of any even spread (each member at ⌊total ÷ n⌋ or one more)', (t) => {
  const rnd = seededRandom(16);
  for (let run = 0; run < 300; run++) {
    const n = 2 + Math.floor(rnd() * 3);
    const members = Array.from({ length: n }, (_, i) => m(`cm${i}`, Math.floor(rnd() * 7), 10));
    const total = members.reduce((a, x) => a + x.phones, 0);
    const lo = Math.floor(total / n);
    const extra = total - lo * n;
    // Fewest moves: the `extra` members given one more are the ones holding the most phones.
    const sorted = members.map((x) => x.phones).sort((a, b) => b - a);
    const best = sorted.reduce((a, p, i) => a + Math.max(0, p - (lo + (i < extra ? 1 : 0))), 0);
    const plan = planRebalance(members, 0);
    t.is(plan.imbalanced ? plan.minimumMoves : best, best, JSON.stringify(members));
  }
});
