/**
 * Liveness that cannot be forged (issue #9 §2), end to end: a real mosquitto,
 * call managers and the agent as child processes, an anonymous client as the
 * attacker. Observed as users would: the phone's retained status and events,
 * its pointers topic, the call managers' state topics and /metrics. Each test
 * is named after the Sparkplug-style rule it proves (src/protocol/cm-liveness.ts).
 */
import test from 'ava';
import { connect } from 'mqtt';
import { encodeCmState } from '../../src/protocol/cm-state.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { bodyOf, watch as watchWire } from '../helpers/state-wire.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

/** A subscriber on the test's broker that keeps every message of its subscriptions (test/helpers/state-wire.ts). */
const watch = (t: { teardown(fn: () => Promise<void> | void): void }, topics: string[]) => watchWire(t, mosq.url, topics);

/** The retained message on `topic` now, as a fresh subscriber gets it. */
async function retained(t: { teardown(fn: () => Promise<void>): void }, topic: string): Promise<string> {
  const w = await watch(t, [topic]);
  await waitFor(() => w.got.length > 0, { timeoutMs: 30_000, what: `retained ${topic}` });
  return w.got[0]!.text;
}

async function metrics(c: Cluster, id: string): Promise<string> {
  const url = c.group.find((g) => g.id === id)!.services.replace(/\/services$/, '/metrics');
  return (await fetch(url)).text();
}

const metric = (text: string, name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, (ch) => `\\${ch}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);

test.serial('liveness-forged-states-change-nothing: unsigned, shaped, badly signed, replayed and empty states leave the phone home, make no CM push, are rejected rate-limited, and cm-a republishes online', async (t) => {
  t.timeout(120_000);
  const c = await Cluster.group(t, mosq.url, ['cm-a', 'cm-b']);
  const stateTopic = `${c.prefix}/cm/cm-a/state`;

  // A genuine will of an earlier run of cm-a, captured: kill -9 it, keep the will, start it again.
  const first = await watch(t, [stateTopic]);
  await waitFor(() => first.on(stateTopic).some((m) => JSON.parse(m.text).online === true), { timeoutMs: 30_000, what: 'cm-a online' });
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.cms.get('cm-a')!.exited;
  await waitFor(() => first.on(stateTopic).some((m) => JSON.parse(m.text).online === false), { timeoutMs: 30_000, what: 'cm-a will' });
  const oldWill = first.on(stateTopic).find((m) => JSON.parse(m.text).online === false)!.text;
  await c.startCm('cm-a');
  await waitFor(async () => bodyOf(c, await retained(t, stateTopic)).online, { timeoutMs: 30_000, what: 'cm-a online again' });
  const online = await retained(t, stateTopic);
  t.true(bodyOf(c, online).bdSeq > bodyOf(c, oldWill).bdSeq, 'the restarted run has a greater bdSeq');

  c.startAgent('p1');
  await c.waitHome('p1', 'cm-a');
  const pointers = await watch(t, [`${c.prefix}/phone/p1/pointers`]);
  const states = await watch(t, [stateTopic]);
  await waitFor(() => states.got.length > 0, { what: 'retained state to the watcher' });

  const otherKey = parsePrivateKey(generateKeyPair().privatePem);
  const body = bodyOf(c, online);
  const forged = [
    { name: 'bare', payload: '{"online":false}', code: 'UNSIGNED' },
    { name: 'shaped', payload: JSON.stringify({ online: false, kid: 'ops-1', body: Buffer.from(JSON.stringify({ ...body, online: false })).toString('base64') }), code: 'UNSIGNED' },
    { name: 'badly signed', payload: encodeCmState({ ...body, online: false, seq: body.seq + 1 }, (b) => signEnvelope(b, otherKey, 'ops-1')), code: 'SIGNATURE_INVALID' },
    { name: 'replayed will', payload: oldWill, code: 'STATE_STALE' },
    { name: 'empty', payload: '', code: 'STATE_EMPTY' },
  ];
  const attacker = connect(mosq.url, { reconnectPeriod: 0, clientId: `attacker-${process.pid}` });
  t.teardown(async () => void (await attacker.endAsync(true)));
  await new Promise<void>((done, fail) => {
    attacker.once('connect', () => done());
    attacker.once('error', fail);
  });
  const started = Date.now();
  const bOutBefore = c.cms.get('cm-b')!.output().length;
  for (const f of forged) {
    const seen = states.got.length;
    await attacker.publishAsync(stateTopic, f.payload, { qos: 1, retain: true });
    // cm-a answers each with its online again (retained), so the last word on the topic is its own.
    await waitFor(() => states.got.slice(seen).some((m) => m.text === online), { timeoutMs: 30_000, what: `cm-a republishing over the ${f.name} state` });
    t.is(await retained(t, stateTopic), online, `after the ${f.name} state the retained one is cm-a's online`);
  }
  // A burst of the bare forgery: rate-limited events, not one per message.
  for (let i = 0; i < 20; i++) await attacker.publishAsync(stateTopic, '{"online":false}', { qos: 1, retain: true });
  const rejectedCodes = (): string[] => c.events('p1', 'rejected').filter((e) => e.payload.topic === stateTopic).map((e) => String(e.payload.code));
  await waitFor(() => ['UNSIGNED', 'SIGNATURE_INVALID', 'STATE_STALE', 'STATE_EMPTY'].every((code) => rejectedCodes().includes(code)), { timeoutMs: 30_000, what: 'a rejected event per kind' });
  await waitFor(async () => (await retained(t, stateTopic)) === online, { timeoutMs: 30_000, what: 'cm-a online retained after the burst' });
  const elapsed = Date.now() - started;

  // The phone stayed home, nobody pushed it a list, cm-b refused every one and pushed nothing.
  t.like(c.status('p1'), { home: 'cm-a', state: 'homed' });
  t.deepEqual(c.events('p1', 'rehomed'), []);
  t.deepEqual(pointers.got, []);
  const mb = await metrics(c, 'cm-b');
  for (const reason of ['failover', 'rebalance', 'admin']) t.is(metric(mb, `ipphone_cm_pointer_pushes_total{reason="${reason}"}`), 0, reason);
  t.true(metric(mb, 'ipphone_cm_peer_states_refused_total') >= forged.length + 20, mb);
  const bOut = c.cms.get('cm-b')!.output().slice(bOutBefore);
  t.regex(bOut, /"peer state refused"/);
  t.notRegex(bOut, /"peer state changed"/, 'cm-b\'s offline set never changed');
  t.true(metric(await metrics(c, 'cm-a'), 'ipphone_cm_state_republished_total') >= 1);

  // Rate-limited: per reason code at most one event per 10 s (the ack topic's limit).
  const codes = rejectedCodes();
  const unsigned = codes.filter((x) => x === 'UNSIGNED').length;
  t.true(unsigned >= 1 && unsigned <= 1 + Math.floor(elapsed / 10_000), `${unsigned} UNSIGNED events in ${elapsed} ms for 22 unsigned states`);
  t.log(`rejected events on the state topic: ${codes.join(', ')} (${elapsed} ms)`);
  const p1 = c.agents.get('p1')!.output();
  t.true((p1.match(/"message rejected"/g) ?? []).length <= codes.length + 1, 'the agent logs rate-limited too');
});

test.serial('liveness-genuine-will-fails-over: kill -9 still moves the phone (cm-offline); a restarted CM\'s new online is accepted (bdSeq increased), so its next will fails over too', async (t) => {
  t.timeout(120_000);
  const c = await Cluster.group(t, mosq.url, ['cm-a', 'cm-b']);
  const stateTopic = `${c.prefix}/cm/cm-a/state`;
  const states = await watch(t, [stateTopic]);
  c.startAgent('p2', c.agentConfig('p2', { fallback: { holdMs: 2000 } }));
  await c.waitHome('p2', 'cm-a');

  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p2', 'cm-b');
  const rehomes = () => c.events('p2', 'rehomed').filter((e) => e.payload.reason !== 'services-timeout');
  const [first] = rehomes();
  t.like(first?.payload, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
  const run1 = bodyOf(c, states.on(stateTopic).find((m) => JSON.parse(m.text).online === true)!.text);

  const seen = states.got.length;
  await c.startCm('cm-a');
  await waitFor(() => states.got.slice(seen).some((m) => JSON.parse(m.text).online === true), { timeoutMs: 30_000, what: 'cm-a online again' });
  const run2 = bodyOf(c, states.got.slice(seen).find((m) => JSON.parse(m.text).online === true)!.text);
  t.true(run2.bdSeq > run1.bdSeq, `bdSeq ${run1.bdSeq} → ${run2.bdSeq}`);
  t.not(run2.nonce, run1.nonce);
  await c.waitHome('p2', 'cm-a', 30_000); // fallback after the hold

  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p2', 'cm-b');
  const moves = rehomes().map((e) => e.payload.reason);
  t.deepEqual(moves, ['cm-offline', 'fallback', 'cm-offline'], 'the new run\'s will counted: the phone had accepted its online');
  t.deepEqual(
    c.events('p2', 'rejected').filter((e) => e.payload.topic === stateTopic),
    [],
    'no genuine state was refused',
  );
});
