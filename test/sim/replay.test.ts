/**
 * The hostile phone replays re-provisioning (src/sim/replay.ts), and the world
 * plants that prove the checkers see what matters: a replayed rebase taken
 * (`replayable-rebase`, versions-bounded) and a page failover sent to a
 * services server no list names (`stray-services`, services-relative's
 * "not a pointer of its" branch).
 */
import test from 'ava';
import { runSeed } from '../../src/sim/run.js';

// Serial: a run owns the process's event loop and node:crypto's randomBytes while it runs.

test.serial('hostile-replays-reprovisioning: on an open broker it reads the operator\'s rebases and pointer-setting configs and replays them, and no phone\'s list, version or config moves (seed 110: the rebase to held - 1 and the config at held + 1 that once let a replay in)', async (t) => {
  const r = await runSeed(110);
  t.true(r.open);
  t.true((r.replays?.recorded ?? 0) >= 2, JSON.stringify(r.replays));
  t.true((r.replays?.replayed ?? 0) > 0, JSON.stringify(r.replays));
  // The operator's own rebases took phones down (the documented way); the replays of them took none down again.
  t.true((r.reprovisioned?.rebase ?? 0) > 0 && (r.reprovisioned?.['went-down'] ?? 0) > 0, JSON.stringify(r.reprovisioned));
  t.deepEqual(r.violations, []);
});

test.serial('hostile-reads-only-its-acl: under the printed ACL it records no other phone\'s re-provisioning (seed 1)', async (t) => {
  const r = await runSeed(1);
  t.false(r.open);
  t.is(r.replays?.recorded, 0);
});

test.serial('replayable-rebase: a replayed rebase taken after the phone moved on is caught as a replay by versions-bounded (seed 10)', async (t) => {
  const r = await runSeed(10, { plant: 'replayable-rebase' });
  const v = r.violations.find((x) => x.invariant === 'versions-bounded');
  t.truthy(v, JSON.stringify(r.violations));
  t.regex(v!.detail, /taken again \(a replay\)/);
});

test.serial('stray-services: a page failover sent to a services server none of the phone\'s lists named is caught by services-relative\'s "not a pointer" branch (seed 7); without the plant the seed holds', async (t) => {
  const r = await runSeed(7, { plant: 'stray-services' });
  const v = r.violations.find((x) => x.invariant === 'services-relative');
  t.truthy(v, JSON.stringify(r.violations));
  t.regex(v!.detail, /from cm-z, not a pointer of its/);
  const clean = await runSeed(7);
  t.deepEqual(clean.violations, []);
});
