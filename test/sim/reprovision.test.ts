/**
 * Re-provisioning in the group simulation (src/sim/operator.ts
 * `scheduleReprovision`): signed configs that set `pointers` (taken as an admin
 * list at the held version + 1; one naming only a member no broker answers for
 * is rolled back after the confirmation window, the list held before restored
 * at its own version) and `ipphone-admin pointers --rebase`. The held version
 * goes down only these documented ways, and every invariant holds.
 */
import test from 'ava';
import { runSeed } from '../../src/sim/run.js';

test.serial('a config that cannot be confirmed is rolled back: the phone reports it and its held version goes down to the list it held, and every invariant holds (seed 1)', async (t) => {
  const r = await runSeed(1);
  t.deepEqual(r.violations, []);
  t.is(r.reprovisioned?.['config-unreachable'], 1);
  t.true((r.reprovisioned?.['rolled-back'] ?? 0) >= 1);
  t.is(r.reprovisioned?.['went-down'], 1);
});

test.serial('an operator rebase below the held version is taken and every invariant holds (seed 15)', async (t) => {
  const r = await runSeed(15);
  t.deepEqual(r.violations, []);
  t.is(r.reprovisioned?.rebase, 1);
  t.is(r.reprovisioned?.['went-down'], 1);
});

test.serial('a config that sets pointers the phone can home on is taken and every invariant holds (seed 3)', async (t) => {
  const r = await runSeed(3);
  t.deepEqual(r.violations, []);
  t.is(r.reprovisioned?.['config-pointers'], 1);
  t.is(r.reprovisioned?.['went-down'], undefined);
});

test.serial('a rebase the command refuses (the phone holds no version beyond the operator clock) sends nothing (seed 11)', async (t) => {
  const r = await runSeed(11);
  t.deepEqual(r.violations, []);
  t.deepEqual(r.reprovisioned, { 'rebase-refused': 1 });
});
