/**
 * A reinstalled call manager is taken back; a replayed online of a dead run
 * is still never believed (issue 15 §3). Real processes: a mosquitto, cm-a
 * first run under libfaketime 2 h ahead (LD_PRELOAD, its monotonic clock left
 * alone, as test/integration/wall-clock-step.test.ts does), then stopped and
 * started again with an empty stateDir and the right clock — its boot
 * sequence is lower than its dead run's. cm-b and a phone challenge the online
 * they cannot order; cm-a answers; they take it back. Judged by a separate
 * subscriber (the states and challenges on the wire), the phone's status and
 * events, and cm-b's log (its offline set).
 */
import test from 'ava';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { assertBuilt } from '../helpers/programs.js';
import { removeAtExit } from '../helpers/reaper.js';
import { bodyOf, libfaketime, peerChanges, watch } from '../helpers/state-wire.js';

let mosq: Mosquitto;
test.before(async () => {
  assertBuilt();
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

const moves = (c: Cluster, phone: string) => c.events(phone, 'rehomed').filter((e) => e.payload.reason !== 'services-timeout');

const HOLD_MS = 2000;

test('liveness-reinstalled-taken-back: cm-a ran 2 h ahead, reinstalled with an empty stateDir and the right clock (lower bdSeq) → cm-b and the phone challenge it and take it back within seconds; the dead run\'s online replayed is never believed', async (t) => {
  t.timeout(180_000);
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([{ id: 'cm-a', broker: mosq.url }, { id: 'cm-b', broker: mosq.url }]);
  await c.observe(mosq.url);
  const p = c.prefix;
  const stateTopic = `${p}/cm/cm-a/state`;
  const wire = await watch(t, mosq.url, [stateTopic, `${p}/cm/cm-a/challenge/#`]);
  const ahead = { command: 'env', args: [`LD_PRELOAD=${libfaketime()}`, 'FAKETIME=+2h', 'FAKETIME_DONT_FAKE_MONOTONIC=1'] };
  await c.startCm('cm-a', {}, ahead);
  await c.startCm('cm-b');
  c.startAgent('p1', c.agentConfig('p1', { fallback: { holdMs: HOLD_MS } }));
  await c.waitHome('p1', 'cm-a', 30_000);
  await waitFor(() => wire.on(stateTopic).some((m) => bodyOf(c, m.text).online), { timeoutMs: 10_000, what: 'cm-a online' });
  const deadOnline = wire.on(stateTopic).find((m) => bodyOf(c, m.text).online)!.text;
  const high = bodyOf(c, deadOnline).bdSeq;
  t.true(high > Date.now() + 3_600_000, `the first run's bdSeq is its clock, 2 h ahead (${high - Date.now()} ms)`);

  // Stop it (SIGTERM: a clean stop publishes the will); the phone and cm-b count it offline.
  c.cms.get('cm-a')!.signal('SIGTERM');
  await c.cms.get('cm-a')!.exited;
  await c.waitHome('p1', 'cm-b', 30_000);
  await waitFor(() => peerChanges(c).at(-1)?.[0] === 'cm-a', { timeoutMs: 10_000, what: 'cm-b counting cm-a offline' });

  // Reinstalled: an empty state directory, the right clock.
  const fresh = mkdtempSync(join(tmpdir(), 'ipphone-reinstalled-'));
  removeAtExit(fresh);
  const bOut = c.cms.get('cm-b')!.output().length;
  const restartedAt = Date.now();
  await c.startCm('cm-a', { stateDir: fresh });
  await waitFor(() => wire.on(stateTopic).some((m) => bodyOf(c, m.text).online && bodyOf(c, m.text).bdSeq < high), { timeoutMs: 10_000, what: 'the reinstalled cm-a online' });
  const low = bodyOf(c, wire.on(stateTopic).find((m) => bodyOf(c, m.text).online && bodyOf(c, m.text).bdSeq < high)!.text).bdSeq;
  t.true(low < high, `reinstalled bdSeq ${low} < dead run's ${high}`);

  // Both challenge it (the wire shows it), cm-a answers them, and both take it back.
  await waitFor(() => peerChanges(c, bOut).at(-1)?.length === 0, { timeoutMs: 15_000, what: 'cm-b counting the reinstalled cm-a online' });
  const bBack = Date.now();
  await c.waitHome('p1', 'cm-a', 30_000);
  const pBack = Date.now();
  const challengers = new Set(wire.got.filter((m) => m.at >= restartedAt && /\/challenge\/[^/]+$/.test(m.topic)).map((m) => m.topic.split('/').at(-1)));
  t.deepEqual([...challengers].sort(), ['cm-b', 'p1']);
  const answers = wire.got.filter((m) => m.at >= restartedAt && m.topic.endsWith('/answer'));
  t.true(answers.length >= 2 && answers.every((m) => bodyOf(c, m.text).bdSeq === low && typeof bodyOf(c, m.text).challenge === 'string'));
  t.like(moves(c, 'p1').at(-1)?.payload, { from: 'cm-b', to: 'cm-a', reason: 'fallback' });
  t.regex(c.cms.get('cm-b')!.output().slice(bOut), /peer answered our challenge/);
  t.log(`reinstalled cm-a (bdSeq ${high - low} ms lower): cm-b online again after ${bBack - restartedAt} ms, the phone back home after ${pBack - restartedAt} ms (hold ${HOLD_MS} ms)`);

  // The dead run's recorded online, replayed while the reinstalled cm-a lives: challenged, the live run answers, nothing changes.
  const attacker = await watch(t, mosq.url, []);
  let seen = wire.got.length;
  await attacker.client.publishAsync(stateTopic, deadOnline, { qos: 1, retain: true });
  await waitFor(() => wire.got.slice(seen).some((m) => m.topic.endsWith('/challenge/p1')), { timeoutMs: 10_000, what: 'the phone challenging the replay' });
  t.like(c.status('p1'), { home: 'cm-a' });

  // cm-a killed; the dead run's online replayed again: challenged, no one answers, never believed.
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.cms.get('cm-a')!.exited;
  await c.waitHome('p1', 'cm-b', 30_000);
  await waitFor(() => peerChanges(c).at(-1)?.[0] === 'cm-a', { timeoutMs: 10_000, what: 'cm-b counting cm-a offline again' });
  const bOut2 = c.cms.get('cm-b')!.output().length;
  const movesBefore = moves(c, 'p1').length;
  seen = wire.got.length;
  const replayedAt = Date.now();
  await attacker.client.publishAsync(stateTopic, deadOnline, { qos: 1, retain: true });
  await waitFor(
    () => {
      const from = new Set(wire.got.slice(seen).filter((m) => /\/challenge\/[^/]+$/.test(m.topic)).map((m) => m.topic.split('/').at(-1)));
      return from.has('p1') && from.has('cm-b');
    },
    { timeoutMs: 10_000, what: 'the phone and cm-b challenging the replayed online' },
  ).catch((err: Error) => {
    throw new Error(`${err.message}\n${wire.got.slice(seen).map((m) => `${m.topic} ${m.text.slice(0, 80)}`).join('\n')}\n${c.agents.get('p1')!.output().slice(-4000)}`);
  });
  // Past the phone's hold, twice over: a believed online would have brought it back.
  await waitFor(() => Date.now() - replayedAt >= 3 * HOLD_MS, { timeoutMs: 10_000, intervalMs: 200, what: 'three holds' });
  t.deepEqual(wire.got.slice(seen).filter((m) => m.topic.endsWith('/answer')), [], 'no answer: the run is dead');
  t.like(c.status('p1'), { home: 'cm-b' });
  t.is(moves(c, 'p1').length, movesBefore, 'the phone did not fall back to a dead cm-a');
  t.deepEqual(peerChanges(c, bOut2), [], 'cm-b still counts cm-a offline');
});
