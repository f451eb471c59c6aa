/**
 * End to end: a real mosquitto started here, call managers and the agent as
 * child processes, crashes as real signals. Observed only through the
 * contract's MQTT surface (retained status, events).
 */
import test, { type ExecutionContext } from 'ava';
import { createServer, type Server } from 'node:http';
import { connect } from 'mqtt';
import { parsePrivateKey, signEnvelope, generateKeyPair } from '../../src/protocol/envelope.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor, delay } from '../helpers/net.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

async function publish(url: string, topic: string, payload: unknown): Promise<void> {
  const c = connect(url, { reconnectPeriod: 0 });
  await new Promise<void>((done, fail) => {
    c.once('connect', () => done());
    c.once('error', fail);
  });
  await c.publishAsync(topic, typeof payload === 'string' ? payload : JSON.stringify(payload), { qos: 1 });
  await c.endAsync();
}

async function groupOfTwo(t: { teardown: (fn: () => Promise<void>) => void }, specs?: { a?: string; b?: string }): Promise<Cluster> {
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: specs?.a ?? mosq.url },
    { id: 'cm-b', broker: specs?.b ?? mosq.url },
  ]);
  for (const url of new Set([specs?.a ?? mosq.url, specs?.b ?? mosq.url])) await c.observe(url);
  await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
  return c;
}

/**
 * kill -9 of cm-a: the phone moves to cm-b (cm-offline). Its rehomed event
 * carries the critical path's timings in order, and — when the ack came
 * within the ack deadline — no `searching` status went out before it
 * (a QoS 1 exchange there would sit ahead of the ack: agent/critical-path.ts).
 */
async function killFailover(t: ExecutionContext, c: Cluster, phone: string): Promise<void> {
  const agent = c.startAgent(phone);
  await c.waitHome(phone, 'cm-a');
  const killedAt = Date.now();
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome(phone, 'cm-b');
  const [ev] = c.events(phone, 'rehomed').filter((e) => e.payload.reason !== 'services-timeout');
  t.like(ev?.payload, { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
  const p = ev!.payload as Record<string, number>;
  t.is(typeof p.detectMs, 'number');
  t.is(typeof p.rehomeMs, 'number');
  t.true(p.detectedAt! >= killedAt, 'the move began after the kill');
  t.true(p.sentMs! >= 0 && p.sentMs! <= p.ackMs! && p.ackMs! <= p.eventMs!, `timings in order: ${JSON.stringify(p)}`);
  const searching = c.seen.statuses.filter((s) => s.phone === phone && s.at >= killedAt && s.payload.state === 'searching');
  // ackTimeoutMs is 15 % of the 1000 ms interval.
  if (p.ackMs! < 150) t.is(searching.length, 0, 'no status between the will and the ack');
  t.is(c.status(phone)?.rehomes, 1);
  t.is(agent.child.exitCode, null, 'agent still running');
}

test.serial('kill -9 of the home call manager → homed on the backup (cm-offline); the agent keeps running', async (t) => {
  await killFailover(t, await groupOfTwo(t), 'p-kill');
});

test.serial('kill -9 failover on a broker with set_tcp_nodelay true (the shipped production setting)', async (t) => {
  const nd = await startMosquitto({ conf: ['set_tcp_nodelay true'] });
  t.teardown(() => nd.stop());
  await killFailover(t, await groupOfTwo(t, { a: nd.url, b: nd.url }), 'p-kill-nd');
});

test.serial('SIGSTOP of the home → rehomed after the miss limit (keepalive-loss); SIGCONT → fallback after the hold, not before', async (t) => {
  const c = await groupOfTwo(t);
  c.startAgent('p-stop', c.agentConfig('p-stop', { fallback: { holdMs: 4000 } }));
  await c.waitHome('p-stop', 'cm-a');
  const stoppedAt = Date.now();
  c.cms.get('cm-a')!.signal('SIGSTOP');
  await c.waitHome('p-stop', 'cm-b', 10_000);
  const ev = c.events('p-stop', 'rehomed').filter((e) => e.payload.reason !== 'services-timeout')[0]!;
  t.like(ev.payload, { from: 'cm-a', to: 'cm-b', reason: 'keepalive-loss' });
  // Three misses of a 1 s keep-alive cannot be detected in under two seconds.
  t.true(ev.at - stoppedAt >= 2000, `rehomed ${ev.at - stoppedAt} ms after SIGSTOP`);

  c.cms.get('cm-a')!.signal('SIGCONT');
  const contAt = Date.now();
  await c.waitHome('p-stop', 'cm-a', 20_000);
  const back = c.events('p-stop', 'rehomed').find((e) => e.payload.reason === 'fallback');
  t.truthy(back, 'a fallback event');
  t.like(back!.payload, { from: 'cm-b', to: 'cm-a' });
  t.true(back!.at - contAt >= 4000, `fell back ${back!.at - contAt} ms after the primary recovered (hold 4000 ms)`);
});

test.serial('kill -9 then restart of the primary → fallback only after the hold', async (t) => {
  const c = await groupOfTwo(t);
  c.startAgent('p-back', c.agentConfig('p-back', { fallback: { holdMs: 3000 } }));
  await c.waitHome('p-back', 'cm-a');
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-back', 'cm-b');
  await delay(1500);
  const restartedAt = Date.now();
  await c.startCm('cm-a');
  await c.waitHome('p-back', 'cm-a', 20_000);
  const back = c.events('p-back', 'rehomed').find((e) => e.payload.reason === 'fallback')!;
  t.true(back.at - restartedAt >= 3000, `fallback ${back.at - restartedAt} ms after restart`);
  t.is(c.status('p-back')?.rehomes, 2);
});

test.serial('the primary broker stopped (pointers on two brokers) → homed on the other (broker-lost)', async (t) => {
  const second = await startMosquitto();
  t.teardown(() => second.stop());
  const c = await groupOfTwo(t, { a: second.url, b: mosq.url });
  c.startAgent('p-broker');
  await c.waitHome('p-broker', 'cm-a');
  // A crash, not a shutdown: a stopping mosquitto may first deliver the call manager's will (cm-offline).
  await second.kill();
  await c.waitHome('p-broker', 'cm-b');
  const moves = c.events('p-broker', 'rehomed').filter((e) => e.payload.reason !== 'services-timeout');
  t.like(moves[0]?.payload, { from: 'cm-a', to: 'cm-b', reason: 'broker-lost' });
});

test.serial('a services server that accepts and never answers → services from the backup while homed where it was', async (t) => {
  const hangPort = await freePort();
  const hang: Server = createServer(() => {
    /* accept, never answer */
  });
  await new Promise<void>((done) => hang.listen(hangPort, '127.0.0.1', done));
  t.teardown(() => {
    hang.closeAllConnections();
    hang.close();
  });
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: mosq.url, services: `http://127.0.0.1:${hangPort}/services` },
    { id: 'cm-b', broker: mosq.url },
  ]);
  await c.observe(mosq.url);
  await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
  c.startAgent('p-svc');
  await c.waitHome('p-svc', 'cm-a');
  await waitFor(() => c.status('p-svc')?.services === 'cm-b', { timeoutMs: 10_000, what: 'services from cm-b' });
  t.is(c.status('p-svc')?.home, 'cm-a', 'still homed on cm-a');
  t.like(c.events('p-svc', 'rehomed').find((e) => e.payload.reason === 'services-timeout')?.payload, { to: 'cm-b', reason: 'services-timeout' });
});

test.serial('a signed pushed list moves the phone at once and survives an agent restart', async (t) => {
  const c = await groupOfTwo(t);
  const agent = c.startAgent('p-push');
  await c.waitHome('p-push', 'cm-a');
  const key = parsePrivateKey(c.privatePem);
  const list = [...c.group].reverse().map(({ id, broker, services }) => ({ id, broker, services }));
  // Versions are ms timestamps, as ipphone-admin and the call managers make them.
  const pushedVersion = Date.now() + 60_000;
  await publish(mosq.url, `${c.prefix}/phone/p-push/pointers`, signEnvelope({ version: pushedVersion, reason: 'admin', list }, key, 'ops-1'));
  await c.waitHome('p-push', 'cm-b');
  t.like(c.events('p-push', 'rehomed').filter((e) => e.payload.reason !== 'services-timeout')[0]?.payload, { from: 'cm-a', to: 'cm-b', reason: 'pushed' });
  t.is(c.status('p-push')?.pointersVersion, pushedVersion);

  agent.signal('SIGTERM');
  t.is(await agent.exited, 0, 'clean exit on SIGTERM');
  t.is(c.status('p-push')?.online, false);
  const again = c.startAgent('p-push', c.agentConfig('p-push'));
  await waitFor(() => c.status('p-push')?.online === true && c.status('p-push')?.state === 'homed', { timeoutMs: 15_000, what: 'restarted agent homed' });
  t.is(c.status('p-push')?.home, 'cm-b', 'homed on the first pointer of the persisted list');
  t.is(c.status('p-push')?.pointersVersion, pushedVersion);
  t.regex(again.output(), /"slot":"[ab]"/);
});

test.serial("the backup's push of the list its ack carried is dropped once without an event; the same envelope again is a rejected replay", async (t) => {
  const c = await groupOfTwo(t);
  const topic = `${c.prefix}/phone/p-twin/pointers`;
  const pushes: Buffer[] = [];
  const spy = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => spy.endAsync(true));
  spy.on('message', (tp, payload) => tp === topic && pushes.push(payload));
  await new Promise<void>((done, fail) => {
    spy.once('connect', () => spy.subscribe(topic, { qos: 1 }, (err) => (err ? fail(err) : done())));
    spy.once('error', fail);
  });
  const agent = c.startAgent('p-twin');
  await c.waitHome('p-twin', 'cm-a');
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-twin', 'cm-b');
  await waitFor(() => pushes.length > 0, { timeoutMs: 30_000, what: "cm-b's failover push" });
  const twin = pushes[0]!;
  const version = (JSON.parse(Buffer.from((JSON.parse(twin.toString()) as { body: string }).body, 'base64').toString()) as { version: number }).version;
  await waitFor(() => c.status('p-twin')?.pointersVersion === version, { timeoutMs: 30_000, what: 'the failover list in the status' });
  await delay(500);
  t.deepEqual(c.events('p-twin', 'rejected'), [], 'the twin of the ack is not news');

  await publish(mosq.url, topic, twin.toString());
  await waitFor(() => c.events('p-twin', 'rejected').length === 1, { timeoutMs: 30_000, what: 'the second copy rejected' });
  t.regex(String(c.events('p-twin', 'rejected')[0]!.payload.error), /replay|version/i);
  t.is(c.status('p-twin')?.home, 'cm-b');
  t.is(agent.child.exitCode, null);
});

test.serial('forged, unknown-key, replayed, expired and malformed pushes change nothing and each yields a rejected event', async (t) => {
  const c = await groupOfTwo(t);
  const agent = c.startAgent('p-bad');
  await c.waitHome('p-bad', 'cm-a');
  const key = parsePrivateKey(c.privatePem);
  const list = [...c.group].reverse().map(({ id, broker, services }) => ({ id, broker, services }));
  const topic = `${c.prefix}/phone/p-bad/pointers`;
  const v = Date.now() + 60_000;
  const good = signEnvelope({ version: v, reason: 'admin', list }, key, 'ops-1');
  await publish(mosq.url, topic, good);
  await c.waitHome('p-bad', 'cm-b');
  const before = c.status('p-bad');

  const other = parsePrivateKey(generateKeyPair().privatePem);
  const forged = signEnvelope({ version: v + 10, reason: 'admin', list: list.slice().reverse() }, other, 'ops-1');
  const unknownKid = signEnvelope({ version: v + 11, reason: 'admin', list: list.slice().reverse() }, key, 'ops-9');
  const older = signEnvelope({ version: v - 10, reason: 'admin', list: list.slice().reverse() }, key, 'ops-1');
  const expired = signEnvelope({ version: v + 12, reason: 'admin', list: list.slice().reverse(), expires: Date.now() - 1000 }, key, 'ops-1');
  const cases: [string, unknown][] = [
    ['forged', forged],
    ['unknown kid', unknownKid],
    ['replayed (same envelope)', good],
    ['replayed (older version)', older],
    ['expired', expired],
    ['not JSON', 'not json {'],
    ['deep JSON', '['.repeat(5000) + ']'.repeat(5000)],
    ['unsigned body', { version: v + 20, reason: 'admin', list }],
  ];
  for (const [name, payload] of cases) {
    const n = c.events('p-bad', 'rejected').length;
    await publish(mosq.url, topic, payload);
    await waitFor(() => c.events('p-bad', 'rejected').length > n, { timeoutMs: 30_000, what: `rejection of ${name}` });
    t.log(name, '→', c.events('p-bad', 'rejected').at(-1)!.payload.error);
  }
  const ev = c.events('p-bad', 'rejected')[0]!.payload;
  t.is(ev.topic, topic);
  t.regex(String(ev.error), /signature/i);
  t.is(c.events('p-bad', 'rejected').length, cases.length);
  const after = c.status('p-bad');
  t.is(after?.pointersVersion, before?.pointersVersion);
  t.is(after?.home, 'cm-b');
  t.is(agent.child.exitCode, null, 'agent still running');
});
