/**
 * Proof that the simulator finds the liveness defects issue 15 fixed (issue 16,
 * "Proof that it finds what matters"): each is put back in the product for one
 * run (src/sim/mutations/liveness.ts) and must be caught by its invariant on
 * the first seeds from 1 that can exercise it; the same seeds hold without it.
 * Every test is serial: a run owns the event loop and node:crypto's randomBytes,
 * and a mutation patches the product's classes for its run.
 */
import test from 'ava';
import { runSeed, scheduleFor } from '../../src/sim/run.js';
import type { Fault } from '../../src/sim/faults.js';
import type { Topology } from '../../src/sim/group.js';
import { MUTATIONS, withMutation, type MutationName } from '../../src/sim/mutations.js';
import { LivenessVerifier } from '../../src/protocol/cm-liveness.js';
import { encodeCmState, type CmStateBody } from '../../src/protocol/cm-state.js';
import { generateKeyPair, parsePrivateKey, signEnvelope, trustedKeys } from '../../src/protocol/envelope.js';

/**
 * Where each defect can be exercised at all, from the schedule alone: an open
 * broker (the printed ACL denies a phone the state topic), and the hostile
 * phone active when a replay can matter. `replay-offline`: after a group
 * member's registrar was silent long enough for it to report itself offline
 * (the only time a live connection signs an offline) and answered again.
 * `replay-online`: while a group member is gone after its will fired — killed
 * or reinstalled, or paused or cut off longer than its brokers wait
 * (1.5 × its MQTT keep-alive of 30 s). Seeds from 1 upward that pass this are
 * run until {@link WANT} caught it or {@link TRIES} were tried: the first
 * catching seeds from 1, whatever the world's draws are today, in a bounded
 * time (docs/simulation.md, "Product mutations", has the figures of the
 * unfiltered run).
 */
const WILL_AFTER_MS = 45_000;
const EXERCISED: Record<'replay-offline' | 'replay-online', (f: Fault, hostile: Fault, topo: Topology) => boolean> = {
  'replay-offline': (f, h, topo) => f.kind === 'registrar-down' && f.durationMs > topo.sip.probeMs * (topo.sip.missLimit + 1) && h.at + h.durationMs > f.at + f.durationMs,
  'replay-online': (f, h) => {
    const from = f.kind === 'crash' || f.kind === 'state-loss' ? f.at : f.kind === 'pause' || f.kind === 'partition' ? f.at + WILL_AFTER_MS : Infinity;
    return from < f.at + f.durationMs && h.at < f.at + f.durationMs && h.at + h.durationMs > from;
  },
};
const WANT = 2;
const TRIES = 24;

for (const [name, exercised] of Object.entries(EXERCISED) as [MutationName, (f: Fault, hostile: Fault, topo: Topology) => boolean][]) {
  const m = MUTATIONS[name];
  test.serial(`mutation ${name} is caught by ${m.expect.join(' or ')} on the first seeds that exercise it, which hold without it`, async (t) => {
    const caught: number[] = [];
    const tried: number[] = [];
    for (let seed = 1; seed < 100_000 && caught.length < WANT && tried.length < TRIES; seed++) {
      const { topo, faults, open } = scheduleFor(seed);
      const group = new Set(topo.group.map((c) => c.id));
      const hostile = faults.filter((f) => f.kind === 'hostile-phone');
      if (!open || !faults.some((f) => group.has(f.target) && hostile.some((h) => exercised(f, h, topo)))) continue;
      tried.push(seed);
      const r = await runSeed(seed, { mutate: name });
      if (r.violations.length === 0) continue;
      t.true(m.expect.includes(r.violations[0]!.invariant), `seed ${seed} with ${name} failed ${JSON.stringify(r.violations[0])} (npm run sim -- --seed ${seed} --mutate ${name})`);
      caught.push(seed);
      const clean = await runSeed(seed);
      t.deepEqual(clean.violations, [], `seed ${seed} without the mutation (npm run sim -- --seed ${seed})`);
    }
    t.log(`${name}: caught on seeds ${caught.join(', ')} of ${tried.length} tried (${tried.join(', ')})`);
    t.true(caught.length >= WANT, `caught on ${caught.length} of the seeds ${tried.join(', ')}`);
  });
}

// The verifier as a receiver sees it: cm-a's run R, conn 1, signs its will (seq 1) and online (seq 2) at
// CONNECT, an offline while its registrar is silent (seq 3) and online again (seq 4).
const ops = generateKeyPair();
const key = parsePrivateKey(ops.privatePem);
const keys = trustedKeys({ 'ops-1': ops.publicPem });
const run = { cm: 'cm-a', bdSeq: 10, conn: 1, nonce: 'nonce-run-10-conn-1' };
const state = (online: boolean, seq: number, will?: true): Buffer =>
  Buffer.from(encodeCmState({ ...run, online, seq, ...(will ? { will } : {}) } as CmStateBody, (b) => signEnvelope(b, key, 'ops-1')));

/** What a receiver that heard `before` concludes from `msg`: true/false believed online/offline, a code when refused. */
function judge(before: Buffer[], msg: Buffer): boolean | string {
  const v = new LivenessVerifier(keys);
  for (const b of before) v.check('cm-a', b);
  const r = v.check('cm-a', msg);
  return r.ok ? r.online : r.code;
}

const offlineReplayed = (): boolean | string => judge([state(true, 2), state(false, 3), state(true, 4)], state(false, 3));
const onlineAfterWill = (): boolean | string => judge([state(true, 2), state(false, 1, true)], state(true, 2));

test.serial('replay-offline: a live connection\'s recorded offline is believed while applied, refused before and after', (t) => {
  const check = LivenessVerifier.prototype.check;
  const answer = LivenessVerifier.prototype.answer;
  t.is(offlineReplayed(), 'STATE_STALE');
  const undo = MUTATIONS['replay-offline'].apply();
  try {
    t.not(LivenessVerifier.prototype.check, check);
    t.is(offlineReplayed(), false);
    // The live call manager's online, republished over the replay, brings it back (as before issue 15).
    t.is(judge([state(true, 2), state(false, 3), state(true, 4), state(false, 3)], state(true, 4)), true);
    // Only the offline is put back: a dead run's online stays refused.
    t.is(onlineAfterWill(), 'STATE_STALE');
  } finally {
    undo();
  }
  t.is(LivenessVerifier.prototype.check, check);
  t.is(LivenessVerifier.prototype.answer, answer);
  t.is(offlineReplayed(), 'STATE_STALE');
});

test.serial('replay-online: a dead connection\'s recorded online is believed while applied, refused before and after', (t) => {
  const check = LivenessVerifier.prototype.check;
  const answer = LivenessVerifier.prototype.answer;
  t.is(onlineAfterWill(), 'STATE_STALE');
  const undo = MUTATIONS['replay-online'].apply();
  try {
    t.is(onlineAfterWill(), true);
    // Only the online is put back: a live connection's offline stays refused.
    t.is(offlineReplayed(), 'STATE_STALE');
  } finally {
    undo();
  }
  t.is(LivenessVerifier.prototype.check, check);
  t.is(LivenessVerifier.prototype.answer, answer);
  t.is(onlineAfterWill(), 'STATE_STALE');
});

test.serial('a liveness mutation is undone when its run throws', async (t) => {
  const check = LivenessVerifier.prototype.check;
  await t.throwsAsync(
    withMutation('replay-online', async () => {
      t.is(onlineAfterWill(), true);
      throw new Error('the run failed');
    }),
    { message: 'the run failed' },
  );
  t.is(LivenessVerifier.prototype.check, check);
  t.is(onlineAfterWill(), 'STATE_STALE');
});

test.serial('after a run with a liveness mutation, a seed replays as it did before (same traceHash)', async (t) => {
  const before = await runSeed(3);
  await withMutation('replay-online', () => runSeed(3));
  const after = await runSeed(3);
  t.is(after.traceHash, before.traceHash);
});
