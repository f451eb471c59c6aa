/**
 * A live agent (child process) homed on a live call manager over a real
 * mosquitto, fed a few hundred hostile messages on its `pointers`, `config`
 * and `ack` topics and on its call manager's `state` topic: random bytes, a
 * 1 MiB payload, 100,000-deep JSON, wrong types, unsigned bodies (with
 * `trust.requireSigned`), bodies signed by another key, replays, expired and
 * wrong-phone bodies. Afterwards the agent still runs, is still homed, holds
 * the same pointer and config versions, reported every refusal, and still
 * takes a valid signed push.
 */
import test from 'ava';
import fc from 'fast-check';
import { connect } from 'mqtt';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
import { anyBytes, anyJsonBytes, deepJsonText, mutatedBytes } from '../helpers/arbitraries.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

const PHONE = 'p-hostile';

async function publishOnce(url: string, topic: string, payload: unknown): Promise<void> {
  const c = connect(url, { reconnectPeriod: 0 });
  await new Promise<void>((done, fail) => {
    c.once('connect', () => done());
    c.once('error', fail);
  });
  await c.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
  await c.endAsync();
}

test.serial('hostile messages on every inbound topic: nothing changes, every refusal is reported, the agent still works', async (t) => {
  t.timeout(120_000);
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  const agent = c.startAgent(PHONE);
  await c.waitHome(PHONE, 'cm-a');
  // The call manager's ack hands the phone its signed list: wait for it, so the held version is the CM's.
  await waitFor(() => Number(c.status(PHONE)?.pointersVersion) >= 1, { timeoutMs: 30_000, what: 'a pointer list from the call manager' });
  // A first, valid config change, so the phone holds a config version a replay can repeat.
  const key = parsePrivateKey(c.privatePem);
  const firstConfig = Date.now();
  await publishOnce(mosq.url, `${c.prefix}/phone/${PHONE}/config`, signEnvelope({ version: firstConfig, config: { services: { timeoutMs: 2500 } } }, key, 'ops-1'));
  await waitFor(() => c.status(PHONE)?.configVersion === firstConfig, { timeoutMs: 30_000, what: 'the first config change' });
  await c.waitHome(PHONE, 'cm-a');
  const before = c.status(PHONE)!;
  const held = before.pointersVersion as number;
  const heldConfig = before.configVersion as number;

  const otherKey = parsePrivateKey(generateKeyPair().privatePem);
  const list = c.group.map(({ id, broker, services }) => ({ id, broker, services }));
  const far = Date.now() + 3_600_000;
  const pointersBody = { version: far, reason: 'admin', list };
  const configBody = { version: far, config: { log: { level: 'debug' } } };

  const topic = {
    pointers: `${c.prefix}/phone/${PHONE}/pointers`,
    config: `${c.prefix}/phone/${PHONE}/config`,
    ack: `${c.prefix}/phone/${PHONE}/ack`,
    state: `${c.prefix}/cm/cm-a/state`,
  };
  const json = (v: unknown): Buffer => Buffer.from(JSON.stringify(v), 'utf8');
  const deep = Buffer.from(deepJsonText(100_000, 'array'));
  const deepObject = Buffer.from(deepJsonText(10_000, 'mixed'));
  const mib = Buffer.from(JSON.stringify({ pad: 'x'.repeat((1 << 20) - 20) }));
  const sample = (arb: fc.Arbitrary<Buffer>, n: number, seed: number): Buffer[] => fc.sample(arb, { numRuns: n, seed });

  /** Signed bodies that must each be refused, with the reason. */
  const signedBad = (body: Record<string, unknown>, heldVersion: number, alt: Record<string, unknown> = {}): Buffer[] => [
    json(body), // unsigned, while trust.requireSigned is true
    json(signEnvelope(body, otherKey, 'ops-1')), // forged
    json(signEnvelope(body, key, 'ops-9')), // unknown kid
    // A replay of the held version. Its list differs from the held one: the agent deliberately drops, without
    // an event, ONE exact duplicate of a list its ack just carried (the call manager's own push; agent.ts #onList).
    json(signEnvelope({ ...body, ...alt, version: heldVersion }, key, 'ops-1')),
    json(signEnvelope({ ...body, ...alt, version: heldVersion - 1 }, key, 'ops-1')), // an older one
    json(signEnvelope({ ...body, expires: Date.now() - 1000 }, key, 'ops-1')), // expired
    json(signEnvelope({ ...body, phone: 'someone-else' }, key, 'ops-1')), // wrong phone
    json({ ...signEnvelope(body, key, 'ops-1'), sig: signEnvelope({ ...body, version: far + 1 }, key, 'ops-1').sig }), // sig of another body
  ];
  const common = (seed: number, valid: Record<string, unknown>[]): Buffer[] => [
    ...sample(anyBytes, 25, seed),
    ...sample(anyJsonBytes, 20, seed + 1),
    ...sample(mutatedBytes(valid), 25, seed + 2),
    deep,
    deepObject,
    mib,
    Buffer.alloc(0),
    Buffer.from([0xff, 0xfe, 0x00]),
  ];
  const forgedPointers: Record<string, unknown> = { ...signEnvelope(pointersBody, otherKey, 'ops-1') };
  const batches: [keyof typeof topic, Buffer[]][] = [
    ['pointers', [...common(100, [forgedPointers, pointersBody]), ...signedBad(pointersBody, held, { list: list.map((p) => ({ ...p, services: `${p.services}?replay` })) })]],
    ['config', [...common(200, [{ ...signEnvelope(configBody, otherKey, 'ops-1') }, configBody]), ...signedBad(configBody, heldConfig)]],
    ['ack', [...common(300, [{ cm: 'cm-a', seq: 1, pointers: forgedPointers }]), json({ cm: 'cm-a', seq: 1, pointers: forgedPointers }), json({ cm: 'cm-a', seq: 1, pointers: signEnvelope({ ...pointersBody, expires: 1 }, key, 'ops-1') })]],
    // Every one a refusal, the bare `{ online: false }` included: a state counts only signed, of the run seen online.
    ['state', [...common(400, [{ online: true }]), json({ online: false }), json({ online: true }), json({ online: 'false' }), json({ online: 0 }), json({}), json([false])]],
  ];

  const pub = connect(mosq.url, { reconnectPeriod: 0, clientId: `hostile-${process.pid}` });
  t.teardown(() => pub.end(true));
  await new Promise<void>((done, fail) => {
    pub.once('connect', () => done());
    pub.once('error', fail);
  });
  const rejectedOn = (tp: string): number => c.events(PHONE, 'rejected').filter((e) => e.payload.topic === tp).length;
  const started = Date.now();
  let total = 0;
  for (const [name, payloads] of batches) {
    for (const p of payloads) await pub.publishAsync(topic[name], p, { qos: 1, retain: false });
    total += payloads.length;
  }
  t.log(`published ${total} hostile messages in ${Date.now() - started} ms`);
  t.true(total >= 300, `${total} messages`);

  // Every refused pointers/config message yields a rejected event; ack refusals are rate-limited (at least one), and
  // state refusals per reason code (anyone may write a call manager's state topic).
  const stateRejected = (): string[] => c.events(PHONE, 'rejected').filter((e) => e.payload.topic === topic.state).map((e) => String(e.payload.code));
  const want = { pointers: batches[0]![1].length, config: batches[1]![1].length };
  try {
    await waitFor(() => rejectedOn(topic.pointers) >= want.pointers && rejectedOn(topic.config) >= want.config && stateRejected().includes('UNSIGNED') && rejectedOn(topic.ack) >= 1, {
      timeoutMs: 20_000,
      what: 'rejected events',
    });
  } finally {
    t.log(`rejected: pointers ${rejectedOn(topic.pointers)}/${want.pointers}, config ${rejectedOn(topic.config)}/${want.config}, state ${rejectedOn(topic.state)}/${batches[3]![1].length}, ack ${rejectedOn(topic.ack)}`);
  }
  t.is(rejectedOn(topic.pointers), want.pointers);
  t.is(rejectedOn(topic.config), want.config);
  const stateCodes = stateRejected();
  const windows = 1 + Math.floor((Date.now() - started) / 10_000);
  t.true(stateCodes.length <= new Set(stateCodes).size * windows, `state refusals rate-limited per code: ${stateCodes.join(', ')}`);
  t.true(stateCodes.includes('UNSIGNED'), 'the bare {"online":false} was refused as unsigned');
  for (const e of c.events(PHONE, 'rejected')) t.true(typeof e.payload.error === 'string' && e.payload.error !== '', JSON.stringify(e.payload));
  const codes = new Set(c.events(PHONE, 'rejected').map((e) => e.payload.code));
  for (const code of ['PAYLOAD_INVALID', 'PAYLOAD_TOO_LARGE', 'SIGNATURE_INVALID', 'KEY_UNKNOWN', 'VERSION_REPLAYED', 'EXPIRED', 'WRONG_PHONE']) t.true(codes.has(code), `a ${code} rejection`);

  // Nothing changed.
  t.is(agent.child.exitCode, null, 'agent still running');
  const after = c.status(PHONE)!;
  t.is(after.online, true);
  t.is(after.home, 'cm-a');
  t.is(after.state, 'homed');
  t.is(after.pointersVersion, held);
  t.is(after.configVersion, heldConfig);
  t.is(c.events(PHONE, 'rehomed').length, 0, 'no rehome');

  // And it still works: a valid signed push is taken.
  const good = far + 10;
  await pub.publishAsync(topic.pointers, json(signEnvelope({ ...pointersBody, version: good }, key, 'ops-1')), { qos: 1 });
  await waitFor(() => c.status(PHONE)?.pointersVersion === good, { timeoutMs: 30_000, what: 'the valid push adopted' });
  t.is(c.status(PHONE)?.home, 'cm-a');
  t.is(rejectedOn(topic.pointers), want.pointers, 'the valid push was not rejected');
  t.is(agent.child.exitCode, null);
});
