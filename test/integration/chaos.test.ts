/**
 * The real-process nemesis (scripts/chaos, docs/chaos.md) as operators run
 * it, `npm run chaos`: a short run must find nothing, and each planted defect
 * must be found by the checker that guards it — a checker that cannot fail
 * proves nothing. Serial: each run is two TLS mosquittos under the printed
 * ACL, three call managers each with its Kamailio, a fleet and a hostile phone.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { procOf, type Proc } from '../helpers/cluster.js';
import { assertBuilt, ROOT } from '../helpers/programs.js';

interface Summary {
  minutes: number;
  seed: number;
  faults: Record<string, number>;
  violations: number;
  failures: { invariant: string; detail: string }[];
  checks: number;
  seen: Record<string, number>;
  hostile: { published: number; received: number };
}

/** `npm run chaos -- ARGS` (its node and tsx, without npm), to its end (bounded); its exit code and last line. */
async function chaos(args: string[], limitMs: number): Promise<{ code: number | null; summary: Summary; out: Proc }> {
  assertBuilt();
  const out = procOf(spawn(process.execPath, ['--import', 'tsx', 'scripts/chaos/main.ts', ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] }), 'chaos');
  const code = await Promise.race([out.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), limitMs).unref())]);
  if (code === 'hung') {
    out.signal('SIGKILL');
    throw new Error(`chaos did not end within ${limitMs} ms\n${out.output().slice(-6000)}`);
  }
  const lines = out.output().split('\n').filter((l) => l.startsWith('{'));
  const summary = JSON.parse(lines.at(-1) ?? 'null') as Summary;
  return { code, summary, out };
}

const SEED = process.env.IPPHONE_CHAOS_SEED ?? '16';

test.serial('chaos: three minutes of kill -9, SIGSTOP, broker kills, partitions, blackholes and registrar kills and stops on real processes over TLS under the printed ACL, a hostile phone publishing throughout, violate no invariant', async (t) => {
  t.timeout(720_000);
  const { code, summary, out } = await chaos(['--minutes', '3', '--seed', SEED, '--phones', '20'], 690_000);
  t.log(out.output().split('\n').filter((l) => /^(fault|healed|quiet|fallback|violation)/.test(l)).join('\n'));
  t.log(`seed ${summary.seed}: faults ${JSON.stringify(summary.faults)}, checks ${summary.checks}, seen ${JSON.stringify(summary.seen)}, hostile ${JSON.stringify(summary.hostile)}`);
  t.is(summary.violations, 0, JSON.stringify(summary.failures, null, 1));
  t.is(code, 0, out.output().slice(-3000));
  t.true(Object.values(summary.faults).reduce((a, b) => a + b, 0) >= 1, 'at least one fault was done');
  t.true(summary.checks > 100, `checks ${summary.checks}`);
  // The hostile phone acted and the broker let it read only its own (a few acks and lists, the states).
  t.true(summary.hostile.published > 50, `hostile published ${summary.hostile.published}`);
});

test.serial('chaos: home-is-live fires when the phones detect a stopped call manager slower than their declared missLimit (planted: missLimit 100)', async (t) => {
  t.timeout(300_000);
  const { code, summary, out } = await chaos(['--minutes', '0.3', '--seed', SEED, '--phones', '10', '--plant', 'slow-detect'], 270_000);
  t.is(code, 1, out.output().slice(-3000));
  t.true(summary.failures.some((f) => f.invariant === 'home-is-live'), JSON.stringify(summary.failures.slice(0, 3)));
});

test.serial('chaos: fallback and healthz fire when a SIGSTOPped call manager is reported healthy to the checkers (planted)', async (t) => {
  t.timeout(300_000);
  const { code, summary, out } = await chaos(['--minutes', '0.3', '--seed', SEED, '--phones', '10', '--plant', 'stopped-as-healthy'], 270_000);
  t.is(code, 1, out.output().slice(-3000));
  const fired = new Set(summary.failures.map((f) => f.invariant));
  t.true(fired.has('fallback'), JSON.stringify(summary.failures.slice(0, 3)));
  t.true(fired.has('healthz'), JSON.stringify(summary.failures.slice(0, 3)));
});

test.serial('chaos: no-storm fires when a client with a phone id reconnects every 250 ms, without backoff (planted)', async (t) => {
  t.timeout(300_000);
  const { code, summary, out } = await chaos(['--minutes', '0.3', '--seed', SEED, '--phones', '10', '--plant', 'storm'], 270_000);
  t.is(code, 1, out.output().slice(-3000));
  t.true(summary.failures.some((f) => f.invariant === 'no-storm' && f.detail.startsWith('ph-storm')), JSON.stringify(summary.failures.slice(0, 3)));
  t.false(summary.failures.some((f) => f.invariant === 'no-storm' && !f.detail.startsWith('ph-storm')), 'the real phones stay within their backoff');
});

test.serial('chaos: no-forged-effect fires when phones leave a call manager the checkers were told ran all along (planted: a hidden SIGSTOP)', async (t) => {
  t.timeout(300_000);
  const { code, summary, out } = await chaos(['--minutes', '0.3', '--seed', SEED, '--phones', '10', '--plant', 'hidden-stop'], 270_000);
  t.is(code, 1, out.output().slice(-3000));
  t.true(summary.failures.some((f) => f.invariant === 'no-forged-effect'), JSON.stringify(summary.failures.slice(0, 3)));
});

test.serial('chaos: registrar-seen and home-is-live fire when a call manager does not watch its Kamailio and the Kamailio stops (planted: no sip section)', async (t) => {
  t.timeout(300_000);
  const { code, summary, out } = await chaos(['--minutes', '0.3', '--seed', SEED, '--phones', '10', '--plant', 'unwatched-registrar'], 270_000);
  t.is(code, 1, out.output().slice(-3000));
  const fired = new Set(summary.failures.map((f) => f.invariant));
  t.true(fired.has('registrar-seen'), JSON.stringify(summary.failures.slice(0, 3)));
  t.true(fired.has('home-is-live'), JSON.stringify(summary.failures.slice(0, 3)));
});

test.serial('chaos: lists-signed fires on the hostile phone\'s forged lists when the brokers run without the printed ACL (planted), which in every other run keeps them off other phones\' topics', async (t) => {
  t.timeout(300_000);
  const { code, summary, out } = await chaos(['--minutes', '0.5', '--seed', SEED, '--phones', '10', '--plant', 'no-acl'], 270_000);
  t.is(code, 1, out.output().slice(-3000));
  t.true(summary.failures.some((f) => f.invariant === 'lists-signed'), JSON.stringify(summary.failures.slice(0, 3)));
});
