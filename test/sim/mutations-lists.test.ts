/**
 * Proof that the simulator finds the list defects issue 15 fixed (issue 16,
 * "Proof that it finds what matters"): each is put back in the product for a
 * run (src/sim/mutations/lists.ts) and a window of seeds from seed 1 must
 * catch it by the invariant the contract names, while the same seeds hold
 * without it — the checker fails on the defect, not on the world. The windows
 * cover the first few catching seeds measured in docs/simulation.md
 * ("Product mutations").
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { runSeed } from '../../src/sim/run.js';
import { MUTATIONS, type MutationName } from '../../src/sim/mutations.js';
import { ListBook } from '../../src/callmanager/list-book.js';
import { ReportLimiter } from '../../src/callmanager/report-limiter.js';
import { Responder } from '../../src/callmanager/responder.js';
import { VersionClock } from '../../src/callmanager/version-clock.js';
import { ProcessClock } from '../../src/sim/clock.js';

// Every test is serial: a run owns the process's event loop and node:crypto's randomBytes while it runs.

/** Seeds 1..n. */
const first = (n: number): number[] => Array.from({ length: n }, (_, i) => i + 1);

/**
 * Per mutation: the window run, and how many of its seeds must catch it (at
 * least), and a catching seed for the undo. erase-remote: every seed (phones
 * take their first bound list at the first ack, fault or none).
 * dragged-version: at least two of the first twelve (2, 9, 10 and 12 at commit
 * 4e7fa9a's world; about one seed in six catches it: the hostile phone drags a
 * clock, a later failover or rebalance list shows it).
 */
const WINDOWS: Record<'erase-remote' | 'dragged-version', { seeds: number[]; atLeast: number; undoSeed: number }> = {
  'erase-remote': { seeds: first(3), atLeast: 3, undoSeed: 3 },
  'dragged-version': { seeds: first(12), atLeast: 2, undoSeed: 2 },
};

/** Every own member of the prototypes a list mutation may patch (the functions themselves), to prove the undo. */
function prototypes(): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const [name, proto] of Object.entries({ ListBook: ListBook.prototype, VersionClock: VersionClock.prototype, Responder: Responder.prototype, ReportLimiter: ReportLimiter.prototype, ProcessClock: ProcessClock.prototype })) {
    for (const key of Object.getOwnPropertyNames(proto)) {
      const d = Object.getOwnPropertyDescriptor(proto, key)!;
      out.set(`${name}.${key}`, d.value ?? d.get);
    }
  }
  return out;
}

/** Names of the members of `a` that are not the same function in `b`. */
function changed(a: Map<string, unknown>, b: Map<string, unknown>): string[] {
  return [...new Set([...a.keys(), ...b.keys()])].filter((k) => a.get(k) !== b.get(k));
}

for (const [name, w] of Object.entries(WINDOWS) as [MutationName & keyof typeof WINDOWS, (typeof WINDOWS)[keyof typeof WINDOWS]][]) {
  const expect = MUTATIONS[name].expect;

  test.serial(`the simulator catches mutation ${name} by ${expect.join(' or ')} in seeds 1..${w.seeds.length}, and the same seeds hold without it`, async (t) => {
    const caught: number[] = [];
    for (const seed of w.seeds) {
      const res = await runSeed(seed, { mutate: name });
      if (res.violations.length === 0) continue;
      // A run stops at its first violation: it must be the expected one, not a side effect.
      t.true(expect.includes(res.violations[0]!.invariant), `seed ${seed} with ${name}: ${JSON.stringify(res.violations[0])}`);
      caught.push(seed);
    }
    t.log(`${name}: caught by seeds ${caught.join(', ')} of 1..${w.seeds.length}`);
    t.true(caught.length >= w.atLeast, `${name} caught by ${caught.length} seed(s) (${caught.join(', ')}), expected at least ${w.atLeast}`);
    for (const seed of caught) {
      const clean = await runSeed(seed);
      t.deepEqual(clean.violations, [], `seed ${seed} without ${name}: npm run sim -- --seed ${seed}`);
    }
  });

  test.serial(`mutation ${name} is undone after its run: every patched method restored, the next run of a catching seed holds with the traceHash it had before`, async (t) => {
    const seed = w.undoSeed;
    const before = prototypes();
    const clean = await runSeed(seed);
    const mutated = await runSeed(seed, { mutate: name });
    t.true(mutated.violations.some((v) => expect.includes(v.invariant)), `seed ${seed} catches ${name}`);
    const after = await runSeed(seed);
    t.deepEqual(changed(before, prototypes()), []);
    t.not(mutated.traceHash, clean.traceHash);
    t.deepEqual(after.violations, []);
    t.is(after.traceHash, clean.traceHash);
  });
}

test.serial("a failure shrunk to no fault at all prints a replay command that replays it (--faults '')", (t) => {
  // erase-remote fails at the first ack, fault or none: its schedule shrinks to nothing.
  const sim = `${JSON.stringify(process.execPath)} --import tsx src/sim/main.ts`;
  const first = spawnSync('sh', ['-c', `${sim} --seed 1 --mutate erase-remote`], { encoding: 'utf8', timeout: 120_000 });
  t.is(first.status, 1, first.stderr);
  const failure = (JSON.parse(first.stdout.trim().split('\n').at(-1)!) as { failures: { faults: number[]; replay: string; invariant: string }[] }).failures[0]!;
  t.deepEqual(failure.faults, []);
  t.is(failure.replay, "npm run sim -- --seed 1 --faults '' --mutate erase-remote");
  // The command as a shell reads it: the same seed, no fault, the same invariant.
  const replay = spawnSync('sh', ['-c', failure.replay.replace('npm run sim --', sim)], { encoding: 'utf8', timeout: 120_000 });
  t.is(replay.status, 1, replay.stderr);
  const again = JSON.parse(replay.stdout.trim().split('\n').at(-1)!) as { seeds: number; faults: Record<string, number>; failures: { invariant: string }[] };
  t.is(again.seeds, 1);
  t.deepEqual(again.faults, {});
  t.is(again.failures[0]?.invariant, failure.invariant);
});
