/**
 * Issue #10, "Versions are each host's wall clock", end to end: call managers
 * under libfaketime with clocks ±5 min apart (monotonic clock left alone, as NTP
 * does), a phone whose clock is hours ahead, a phone booting in 1970.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { validateAgentConfig } from '../../src/config/agent-config.js';
import { silentLogger } from '../../src/lib/log.js';
import { Fleet } from '../../src/fleet/fleet.js';
import { parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
import { Cluster, type CmSpec, type Wrapper } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { programArgs } from '../helpers/programs.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

/**
 * libfaketime preloaded through `env` (which execs node in place), not the `faketime` program: that one
 * forks, and killing it (kill -9 of a call manager, the cluster's clean-up) would orphan node.
 * `spec` in libfaketime's FAKETIME syntax: `+5m`/`-5m` offsets, `@1970-01-01 00:00:00` a start that runs on.
 */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';
const faketime = (spec: string): Wrapper => ({ command: 'env', args: [`LD_PRELOAD=${LIBFAKETIME}`, `FAKETIME=${spec}`, 'FAKETIME_DONT_FAKE_MONOTONIC=1'] });
const REBALANCE = { enabled: true, periodMs: 1000, threshold: 0.1, maxMovesPerSec: 100 };

function spread(byHome: Record<string, number>, caps: Record<string, number>): number {
  const u = Object.keys(caps).map((id) => (byHome[id] ?? 0) / caps[id]!);
  return Math.max(...u) - Math.min(...u);
}

test.serial('rebalance with call-manager clocks ±5 min apart: balanced with the minimum number of moves, none refused or repeated', async (t) => {
  const c = new Cluster();
  t.teardown(() => c.close());
  const specs: CmSpec[] = ['cm-a', 'cm-b', 'cm-c'].map((id) => ({ id, broker: mosq.url, capacity: 30 }));
  await c.defineGroup(specs);
  await c.observe(mosq.url);
  // cm-a, the phones' primary, 5 min behind; cm-b 5 min ahead; cm-c on time.
  await c.startCm('cm-a', { rebalance: REBALANCE }, faketime('-5m'));
  const raw = JSON.parse(readFileSync(c.agentConfig('fleet-template'), 'utf8')) as Record<string, unknown>;
  const v = validateAgentConfig({ ...raw, log: { level: 'silent' } });
  if (!v.ok) throw new Error(v.problems.join('\n'));
  const fleet = new Fleet({ config: v.config, count: 60, prefix: 'ph-', stateDir: join(c.dir, 'fleet'), log: silentLogger() });
  t.teardown(() => fleet.stop());
  await fleet.start();
  await waitFor(() => fleet.summary().byHome['cm-a'] === 60, { timeoutMs: 60_000, what: 'all 60 on cm-a' });
  // Every phone holds a list versioned by a clock 5 min ahead of cm-a's (an operator's, here).
  const client = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => client.endAsync());
  await new Promise<void>((done) => client.once('connect', () => done()));
  const key = parsePrivateKey(c.privatePem);
  const list = c.group.map(({ id, broker, services }) => ({ id, broker, services }));
  const held = Date.now() + 5 * 60_000;
  for (let i = 1; i <= 60; i++) {
    await client.publishAsync(`${c.prefix}/phone/ph-${i}/pointers`, JSON.stringify(signEnvelope({ version: held, reason: 'admin', list, phone: `ph-${i}` }, key, 'ops-1')), { qos: 1 });
  }
  await waitFor(() => fleet.phones().every((p) => p.agent.state.listVersion === held), { timeoutMs: 60_000, what: 'all phones hold the ahead version' });
  await Promise.all([c.startCm('cm-b', { rebalance: REBALANCE }, faketime('+5m')), c.startCm('cm-c', { rebalance: REBALANCE })]);
  const caps = { 'cm-a': 30, 'cm-b': 30, 'cm-c': 30 };
  // Balanced, then a few periods with nothing moving (a later move shows in the counts below), and
  // every move observed.
  await waitFor(() => spread(fleet.summary().byHome, caps) <= 0.1 && c.quietFor(4000) && c.hasCaughtUp(fleet), {
    timeoutMs: 60_000,
    what: `balanced and settled (${JSON.stringify(fleet.summary().byHome)})`,
  }).catch((e: Error) => {
    throw new Error(`${e.message}\n${c.cms.get('cm-a')!.output().slice(-2000)}`);
  });
  const moves = new Map<string, number>();
  for (const e of c.seen.events) if (e.payload.type === 'rehomed' && e.payload.reason === 'rebalance') moves.set(e.phone, (moves.get(e.phone) ?? 0) + 1);
  const total = [...moves.values()].reduce((a, b) => a + b, 0);
  const refused = c.seen.events.filter((e) => e.payload.type === 'rejected').length;
  t.log(`figure: rebalance with CM clocks -5/+5 min apart: moves ${total} ÷ minimum 40 = ${(total / 40).toFixed(2)}; rejected lists ${refused}; homes ${JSON.stringify(fleet.summary().byHome)}`);
  t.true(spread(fleet.summary().byHome, caps) <= 0.1);
  t.is(total, 40, 'exactly the moves the imbalance needs');
  t.true([...moves.values()].every((n) => n === 1), 'no phone moved twice');
  t.is(refused, 0, 'no list refused as stale');
});

test.serial('phone clocks: 6 h ahead a config change does not version the list into the future; in 1970 it takes bound call-manager lists', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const ahead = c.startAgentWith('p-ahead', [...programArgs('ipphone-agent'), '--config', c.agentConfig('p-ahead')], faketime('+6h'));
  const old = c.startAgentWith('p-1970', [...programArgs('ipphone-agent'), '--config', c.agentConfig('p-1970')], faketime('@1970-01-01 00:00:00'));
  await c.waitHome('p-ahead', 'cm-a', 30_000);
  await c.waitHome('p-1970', 'cm-a', 30_000);
  // A remote config change of the pointers (cm-a still first; another services URL for cm-b).
  const client = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => client.endAsync());
  await new Promise<void>((done) => client.once('connect', () => done()));
  const before = Number(c.status('p-ahead')?.pointersVersion ?? NaN);
  const group = c.group.map(({ id, broker, services }) => ({ id, broker, services }));
  await client.publishAsync(`${c.prefix}/phone/p-ahead/config`, JSON.stringify(signEnvelope({ version: Date.now(), phone: 'p-ahead', config: { pointers: [group[0], { ...group[1]!, services: `${group[1]!.services}?site=2` }] } }, parsePrivateKey(c.privatePem), 'ops-1')), { qos: 1 });
  await waitFor(() => /remote config applied/.test(ahead.output()), { timeoutMs: 15_000, what: 'config applied' });
  await waitFor(() => Number(c.status('p-ahead')?.pointersVersion) !== before, { timeoutMs: 15_000, what: 'the status shows the new list version' });
  const afterChange = Number(c.status('p-ahead')?.pointersVersion ?? NaN);
  t.log('p-ahead pointersVersion after the change', afterChange, 'phone clock', Date.now() + 6 * 3600_000);
  t.true(afterChange < Date.now() + 3600_000, 'not versioned from the phone clock');
  // cm-a dies: cm-b's demoted, bound list must be taken by both phones.
  c.cms.get('cm-a')!.child.kill('SIGKILL');
  for (const p of ['p-ahead', 'p-1970']) {
    await c.waitHome(p, 'cm-b', 30_000);
    await waitFor(() => Number(c.status(p)?.pointersVersion) > afterChange && c.status(p)?.home === 'cm-b', { timeoutMs: 15_000, what: `${p} takes cm-b's list` }).catch((e: Error) => {
      throw new Error(`${e.message} ${JSON.stringify(c.status(p))}\n${(p === 'p-ahead' ? ahead : old).output().slice(-2000)}`);
    });
  }
  for (const p of ['p-ahead', 'p-1970']) t.true(Number(c.status(p)?.pointersVersion) < Date.now() + 3600_000, `${p} holds cm-b's list, not one from the future`);
  t.is(c.events('p-1970', 'rejected').length, 0, 'the phone in 1970 refused nothing (expiry is in its future)');
  t.is(c.events('p-ahead', 'rejected').length, 0);
  // A list bound to another phone (captured there, replayed here) is refused with a rejected event.
  const captured = signEnvelope({ version: Date.now() + 600_000, reason: 'admin', list: [group[1], group[0]], phone: 'p-1970', expires: Date.now() + 3600_000 }, parsePrivateKey(c.privatePem), 'ops-1');
  await client.publishAsync(`${c.prefix}/phone/p-ahead/pointers`, JSON.stringify(captured), { qos: 1 });
  await waitFor(() => c.events('p-ahead', 'rejected').length > 0, { timeoutMs: 10_000, what: 'the bound list refused' });
  t.like(c.events('p-ahead', 'rejected')[0]!.payload, { code: 'WRONG_PHONE' });
  t.regex(String(c.events('p-ahead', 'rejected')[0]!.payload.error), /for phone "p-1970"/);
});
