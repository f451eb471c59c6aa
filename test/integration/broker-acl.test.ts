/**
 * The production broker set-up against a real mosquitto (issue #9 §3,
 * CONTRACT.md "A real broker"): a TLS-only listener, client certificates
 * made by openssl in the test, the CN as user name and client id, and the
 * acl_file made by `ipphone-admin acl`'s own generator.
 *
 * What an identity may not do is proven the way mosquitto's own broker tests
 * prove it (test/broker/09-acl-access-variants.py): a separate subscriber
 * with an operator's certificate watches everything, the attacker then
 * publishes a marker it may publish on the same connection, and once the
 * marker has arrived the forbidden message, had the broker passed it on,
 * would have arrived before it (one connection's QoS 1 messages reach a
 * subscriber in order). The publisher's return code proves nothing: mosquitto
 * acknowledges a denied publish as if it had gone through.
 *
 * Each test uses identities of its own: with use_username_as_clientid two
 * connections with one CN replace each other, and ava runs tests at once.
 */
import test from 'ava';
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { aclFile } from '../../src/admin/acl.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { makePki, type ClientCertOptions, type Pki } from '../helpers/pki.js';
import { waitFor } from '../helpers/net.js';
import { programArgs, ROOT } from '../helpers/programs.js';

const P = 'ipphone/v1';
const CMS = ['cm-a', 'cm-b', 'cm-c', 'cm-d'];
const OPERATORS = ['ops-watch-1', 'ops-watch-2', 'ops-watch-3', 'ops-watch-4', 'ops-watch-5', 'ops-watch-6', 'ops-late', 'ops-push', 'ops-read', 'ops-admin'];
/** Generous liveness guard for waits (not a timing assertion). */
const WAIT = { timeoutMs: 20_000 };

let pki: Pki;
let broker: Mosquitto;
const logListeners = new Set<(line: string) => void>();

test.before(async () => {
  pki = await makePki();
  const acl = pki.writeFile('acl', aclFile({ prefix: P, callManagers: CMS, operators: OPERATORS }));
  broker = await startMosquitto({
    tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, aclFile: acl },
    onLog: (line) => {
      for (const l of logListeners) l(line);
    },
  });
});
test.after.always(async () => {
  await broker?.stop();
  pki?.remove();
});

/** Every client made, ended at the end whatever happened (each test also ends its own). */
const open = new Set<MqttClient>();
test.after.always(() => {
  for (const c of open) c.end(true);
});

/** Connect with `cn`'s certificate (or other options); resolves once CONNACK arrives, rejects on refusal. */
async function client(cn: string | undefined, extra: IClientOptions & { issue?: ClientCertOptions; url?: string } = {}): Promise<MqttClient> {
  const { issue: certOpts, url, ...rest } = extra;
  const tls = cn === undefined ? { ca: readFileSync(pki.ca.cert) } : await pki.clientTls(cn, certOpts);
  const c = connect(url ?? broker.url, { ...tls, protocolVersion: 5, reconnectPeriod: 0, connectTimeout: 10_000, clientId: cn ?? 'anon', ...rest });
  open.add(c);
  return new Promise((resolve, reject) => {
    const fail = (err: Error): void => {
      c.end(true);
      reject(err);
    };
    c.once('connect', () => {
      c.removeListener('error', fail);
      resolve(c);
    });
    c.once('error', fail);
    c.once('close', () => fail(new Error('closed before CONNACK')));
  });
}

/** How a connection attempt ended: 'connected', or the error that refused it. */
async function attempt(cn: string | undefined, extra: Parameters<typeof client>[1] = {}): Promise<string> {
  try {
    const c = await client(cn, extra);
    c.end(true);
    return 'connected';
  } catch (err) {
    return (err as Error).message;
  }
}

interface Msg {
  topic: string;
  payload: string;
  retain: boolean;
}

/** An operator's connection subscribed to everything under the prefix. */
async function watcher(cn: string, filter = `${P}/#`): Promise<{ c: MqttClient; got: Msg[]; until(topic: string, payload: string): Promise<void> }> {
  const c = await client(cn);
  const got: Msg[] = [];
  c.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  await c.subscribeAsync(filter, { qos: 1 });
  return {
    c,
    got,
    until: (topic, payload) => waitFor(() => got.some((m) => m.topic === topic && m.payload === payload), { ...WAIT, what: `${topic} ${payload}` }),
  };
}

const pub = (c: MqttClient, topic: string, payload: string, retain = false): Promise<unknown> => c.publishAsync(topic, payload, { qos: 1, retain });

/**
 * A publish that may be denied. Its outcome is ignored on purpose: mosquitto answers MQTT 5 with
 * PUBACK 0x87 and MQTT 3.1.1 with a plain PUBACK; either way only a subscriber can tell.
 */
const tryPub = (c: MqttClient, topic: string, payload: string, retain = false): Promise<unknown> => pub(c, topic, payload, retain).catch(() => undefined);

test('anonymous over plain TCP is refused: the listener speaks TLS only', async (t) => {
  const r = await attempt(undefined, { url: `mqtt://127.0.0.1:${broker.port}`, clientId: 'plain' });
  t.not(r, 'connected');
});

test('TLS without a client certificate is refused, with or without a user name', async (t) => {
  t.not(await attempt(undefined), 'connected');
  t.not(await attempt(undefined, { username: 'cm-a', password: 'x', clientId: 'pw' }), 'connected');
});

test('a certificate of another CA is refused', async (t) => {
  t.regex(await attempt('p-other-ca', { issue: { otherCa: true } }), /unknown ca|certificate|closed|ECONNRESET|socket/i);
});

test('an expired certificate is refused', async (t) => {
  t.regex(await attempt('p-expired', { issue: { expired: true } }), /expired|certificate|closed|ECONNRESET|socket/i);
});

test('the positive control: a genuine certificate connects, its CN as user name and client id', async (t) => {
  const lines: string[] = [];
  const l = (line: string): void => void lines.push(line);
  logListeners.add(l);
  try {
    const c = await client('p-genuine', { clientId: 'something-else' });
    await waitFor(() => lines.some((x) => / as p-genuine .*u'p-genuine'/.test(x)), { ...WAIT, what: 'broker log names the CN' });
    c.end(true);
  } finally {
    logListeners.delete(l);
  }
  t.pass();
});

test('a phone cannot publish for a call manager, another phone or an operator: never delivered', async (t) => {
  const w = await watcher('ops-watch-1');
  const phone = await client('p-evil');
  const forged = [
    [`${P}/cm/cm-a/state`, true], // forged liveness (retained), as in the issue
    [`${P}/cm/cm-a/load`, true],
    [`${P}/cm/cm-a/keepalive`, false], // the id-less keep-alive: its payload could name anyone
    [`${P}/cm/cm-a/keepalive/p-victim`, false], // a keep-alive naming another phone
    [`${P}/phone/p-victim/ack`, false],
    [`${P}/phone/p-victim/pointers`, false], // a push
    [`${P}/phone/p-evil/pointers`, false], // a push to itself
    [`${P}/phone/p-victim/config`, false],
    [`${P}/phone/p-evil/config`, false],
    [`${P}/phone/p-victim/status`, true],
    [`${P}/phone/p-victim/event`, false],
    [`${P}/phone/p-victim/config/result`, false],
  ] as const;
  for (const [topic, retain] of forged) await tryPub(phone, topic, '{"online":false,"forged":true}', retain);
  // The marker: a topic this phone may publish, after every attempt, on the same connection.
  await pub(phone, `${P}/phone/p-evil/event`, '{"type":"marker"}');
  await w.until(`${P}/phone/p-evil/event`, '{"type":"marker"}');
  t.deepEqual(w.got.filter((m) => m.payload.includes('forged')), []);
  // (The watcher sees every test's traffic: only this test's phones are looked at.)
  t.deepEqual(w.got.filter((m) => /p-evil|p-victim/.test(m.topic)).map((m) => m.topic), [`${P}/phone/p-evil/event`]);

  // Nor was any of it kept as a retained message: a later subscriber gets none.
  const late = await watcher('ops-late', `${P}/cm/cm-a/#`);
  await late.c.subscribeAsync(`${P}/phone/p-victim/#`, { qos: 1 });
  await pub(phone, `${P}/phone/p-evil/event`, '{"type":"marker-2"}');
  await late.c.subscribeAsync(`${P}/phone/p-evil/event`, { qos: 1 });
  await pub(phone, `${P}/phone/p-evil/event`, '{"type":"marker-3"}');
  await late.until(`${P}/phone/p-evil/event`, '{"type":"marker-3"}');
  t.deepEqual(late.got.filter((m) => m.payload.includes('forged')), []);
  phone.end(true);
  w.c.end(true);
  late.c.end(true);
});

test('a phone\'s own status, event, config result and keep-alive are delivered', async (t) => {
  const w = await watcher('ops-watch-2');
  const phone = await client('p-own');
  await pub(phone, `${P}/phone/p-own/status`, '{"online":true}', true);
  await pub(phone, `${P}/phone/p-own/event`, '{"type":"rehomed"}');
  await pub(phone, `${P}/phone/p-own/config/result`, '{"version":1,"ok":true}');
  await pub(phone, `${P}/cm/cm-b/keepalive/p-own`, '{"phone":"p-own","seq":1}');
  await w.until(`${P}/cm/cm-b/keepalive/p-own`, '{"phone":"p-own","seq":1}');
  t.deepEqual(
    w.got.filter((m) => m.topic.includes('p-own')).map((m) => m.topic),
    [`${P}/phone/p-own/status`, `${P}/phone/p-own/event`, `${P}/phone/p-own/config/result`, `${P}/cm/cm-b/keepalive/p-own`],
  );
  phone.end(true);
  w.c.end(true);
});

test('a phone reads only its own topics and the call managers\' state', async (t) => {
  const ops = await client('ops-read');
  const victim = await client('p-read-victim');
  const cm = await client('cm-d');
  await pub(victim, `${P}/phone/p-read-victim/status`, '{"online":true,"secret":1}', true);
  await pub(cm, `${P}/cm/cm-d/state`, '{"online":true}', true);
  await pub(cm, `${P}/cm/cm-d/load`, '{"phones":1}', true);

  const spy = await client('p-read-spy');
  const got: Msg[] = [];
  spy.on('message', (topic, payload, packet) => got.push({ topic, payload: payload.toString(), retain: packet.retain }));
  // mosquitto grants any SUBSCRIBE (acl_file checks delivery only); what matters is what arrives.
  await spy.subscribeAsync([`${P}/#`, `${P}/phone/p-read-victim/#`, `${P}/phone/+/status`, `${P}/cm/+/load`], { qos: 1 });
  await pub(ops, `${P}/phone/p-read-victim/config`, '{"to":"victim"}');
  await pub(ops, `${P}/phone/p-read-victim/pointers`, '{"to":"victim"}');
  await pub(cm, `${P}/phone/p-read-victim/ack`, '{"to":"victim"}');
  await pub(victim, `${P}/phone/p-read-victim/event`, '{"to":"victim"}');
  await pub(victim, `${P}/cm/cm-d/keepalive/p-read-victim`, '{"to":"victim"}');
  // Markers on the spy's own topics, each after the same sender's forbidden deliveries.
  await pub(ops, `${P}/phone/p-read-spy/config`, '{"marker":"ops"}');
  await pub(cm, `${P}/phone/p-read-spy/ack`, '{"marker":"cm"}');
  await pub(cm, `${P}/phone/p-read-spy/pointers`, '{"marker":"cm-push"}');
  // The victim's publishes were acknowledged before these markers were sent: mosquitto had routed
  // them (one thread, delivery queued when a publish is processed), so they would be ahead.
  await waitFor(() => ['ops', 'cm', 'cm-push'].every((m) => got.some((g) => g.payload === `{"marker":"${m}"}`)), { ...WAIT, what: 'markers' });
  t.deepEqual(got.filter((g) => g.payload.includes('victim') || g.payload.includes('secret')), []);
  t.deepEqual(got.filter((g) => g.topic.endsWith('/load')), [], 'a phone does not read loads');
  t.true(got.some((g) => g.topic === `${P}/cm/cm-d/state` && g.retain), 'it does read the call managers\' retained state');
  // Besides the call managers' state (any test's), only its own topics.
  t.deepEqual(
    got.filter((g) => !/^ipphone\/v1\/cm\/[^/]+\/state$/.test(g.topic)).map((g) => g.topic),
    [`${P}/phone/p-read-spy/config`, `${P}/phone/p-read-spy/ack`, `${P}/phone/p-read-spy/pointers`],
  );
  for (const c of [ops, victim, cm, spy]) c.end(true);
});

test('a will on a forbidden topic never fires; a phone\'s genuine will does', async (t) => {
  const w = await watcher('ops-watch-3');
  const lines: string[] = [];
  const l = (line: string): void => void lines.push(line);
  logListeners.add(l);
  try {
    // mosquitto accepts the forged will at CONNECT and checks it only when sending it (eclipse-mosquitto/mosquitto#3552).
    const forger = await client('p-will-forger', { will: { topic: `${P}/cm/cm-b/state`, payload: Buffer.from('{"online":false,"forged":true}'), qos: 1, retain: true } });
    const honest = await client('p-will-honest', { will: { topic: `${P}/phone/p-will-honest/status`, payload: Buffer.from('{"online":false}'), qos: 1, retain: true } });
    forger.stream.destroy(); // no DISCONNECT: the broker sends the will
    await waitFor(() => lines.some((x) => x.includes('p-will-forger') && /closed its connection|disconnected/.test(x)), { ...WAIT, what: 'forger gone' });
    honest.stream.destroy();
    await w.until(`${P}/phone/p-will-honest/status`, '{"online":false}');
  } finally {
    logListeners.delete(l);
  }
  t.deepEqual(w.got.filter((m) => m.payload.includes('forged')), []);
  t.deepEqual(w.got.filter((m) => m.topic.includes('p-will') || m.topic.includes('cm-b/state')).filter((m) => !m.payload.startsWith('{"online":true')).map((m) => m.topic), [`${P}/phone/p-will-honest/status`]);
  w.c.end(true);
});

test('taking a call manager\'s client id neither disconnects it nor fires its will', async (t) => {
  const w = await watcher('ops-watch-4');
  const cm = await client('cm-c', {
    clientId: 'ipphone-cm-cm-c',
    will: { topic: `${P}/cm/cm-c/state`, payload: Buffer.from('{"online":false,"will":true}'), qos: 1, retain: true },
  });
  let cmClosed = 0;
  cm.on('close', () => cmClosed++);
  cm.on('disconnect', () => cmClosed++);
  await pub(cm, `${P}/cm/cm-c/state`, '{"online":true}', true);
  await w.until(`${P}/cm/cm-c/state`, '{"online":true}');
  // The client id the call manager asks for, and the one the broker gives it (its CN).
  const thief1 = await client('p-thief', { clientId: 'ipphone-cm-cm-c', clean: false });
  const thief2 = await client('p-thief-2', { clientId: 'cm-c', clean: false });
  // The marker: from the call manager itself, after both takeovers were accepted.
  await pub(cm, `${P}/cm/cm-c/load`, '{"phones":0,"marker":true}', true);
  await w.until(`${P}/cm/cm-c/load`, '{"phones":0,"marker":true}');
  t.is(cmClosed, 0);
  t.true(cm.connected);
  t.deepEqual(w.got.filter((m) => m.payload.includes('"will"')), []);
  for (const c of [thief1, thief2, cm]) c.end(true);
  w.c.end(true);
});

test('a call manager does its role: state, load, keep-alives, acks, pushes, peers', async (t) => {
  const w = await watcher('ops-watch-5');
  const cmA = await client('cm-a', { clientId: 'ipphone-cm-cm-a' });
  const cmB = await client('cm-b', { clientId: 'ipphone-cm-cm-b' });
  const phone = await client('p-homed');
  const aGot: Msg[] = [];
  const pGot: Msg[] = [];
  cmA.on('message', (topic, payload) => aGot.push({ topic, payload: payload.toString(), retain: false }));
  phone.on('message', (topic, payload) => pGot.push({ topic, payload: payload.toString(), retain: false }));
  // The call manager's own subscriptions (src/callmanager/): its keep-alives, its peers' state and load,
  // and (for the operator console, console.ts) phones' status and events.
  await cmA.subscribeAsync([`${P}/cm/cm-a/keepalive`, `${P}/cm/cm-a/keepalive/+`, `${P}/cm/cm-b/state`, `${P}/cm/cm-b/load`], { qos: 1 });
  await cmA.subscribeAsync([`${P}/phone/+/event`, `${P}/phone/+/status`], { qos: 0 });
  await phone.subscribeAsync([`${P}/phone/p-homed/ack`, `${P}/phone/p-homed/pointers`, `${P}/phone/p-homed/config`, `${P}/cm/cm-a/state`], { qos: 1 });

  await pub(cmB, `${P}/cm/cm-b/state`, '{"online":true}', true);
  await pub(cmB, `${P}/cm/cm-b/load`, '{"phones":3}', true);
  await pub(cmA, `${P}/cm/cm-a/state`, '{"online":true}', true);
  await pub(cmA, `${P}/cm/cm-a/load`, '{"phones":1}', true);
  await phone.publishAsync(`${P}/cm/cm-a/keepalive/p-homed`, '{"phone":"p-homed","seq":1}', { qos: 0 });
  await waitFor(() => aGot.some((m) => m.topic === `${P}/cm/cm-a/keepalive/p-homed`), { ...WAIT, what: 'keep-alive at cm-a' });
  await cmA.publishAsync(`${P}/phone/p-homed/ack`, '{"cm":"cm-a","seq":1}', { qos: 0 });
  await pub(cmA, `${P}/phone/p-homed/pointers`, '{"push":1}');
  await waitFor(() => pGot.some((m) => m.topic === `${P}/phone/p-homed/pointers`), { ...WAIT, what: 'push at the phone' });
  await waitFor(() => aGot.some((m) => m.topic === `${P}/cm/cm-b/load`), { ...WAIT, what: 'peer load at cm-a' });
  t.true(aGot.some((m) => m.topic === `${P}/cm/cm-b/state`));
  t.true(pGot.some((m) => m.topic === `${P}/phone/p-homed/ack`));
  t.true(pGot.some((m) => m.topic === `${P}/cm/cm-a/state`));
  // The console reads the phone's status and rehomed events.
  await pub(phone, `${P}/phone/p-homed/status`, '{"online":true,"home":"cm-a"}', true);
  await phone.publishAsync(`${P}/phone/p-homed/event`, '{"type":"rehomed","to":"cm-a"}', { qos: 0 });
  await waitFor(() => aGot.some((m) => m.topic === `${P}/phone/p-homed/event`) && aGot.some((m) => m.topic === `${P}/phone/p-homed/status`), { ...WAIT, what: 'phone status and event at cm-a' });

  // What it may not do: speak for its peer, configure a phone, speak for a phone.
  for (const topic of [`${P}/cm/cm-b/state`, `${P}/cm/cm-b/load`, `${P}/phone/p-homed/config`, `${P}/phone/p-homed/status`, `${P}/phone/p-homed/event`]) {
    await tryPub(cmA, topic, '{"forged":true}');
  }
  await pub(cmA, `${P}/cm/cm-a/load`, '{"phones":1,"marker":true}', true);
  await w.until(`${P}/cm/cm-a/load`, '{"phones":1,"marker":true}');
  t.deepEqual(w.got.filter((m) => m.payload.includes('forged')), []);
  t.deepEqual(pGot.filter((m) => m.payload.includes('forged')), []);
  t.deepEqual(aGot.filter((m) => m.payload.includes('forged')), []);
  for (const c of [cmA, cmB, phone]) c.end(true);
  w.c.end(true);
});

test('an operator configures phones and pushes lists, and cannot speak for a call manager', async (t) => {
  const w = await watcher('ops-watch-6');
  const phone = await client('p-configured');
  const pGot: string[] = [];
  phone.on('message', (topic) => pGot.push(topic));
  await phone.subscribeAsync([`${P}/phone/p-configured/config`, `${P}/phone/p-configured/pointers`], { qos: 1 });
  const ops = await client('ops-push');
  await tryPub(ops, `${P}/cm/cm-a/state`, '{"online":false,"forged":true}', true);
  await tryPub(ops, `${P}/phone/p-configured/status`, '{"forged":true}');
  await pub(ops, `${P}/phone/p-configured/config`, '{"v":1}');
  await pub(ops, `${P}/phone/p-configured/pointers`, '{"v":1}');
  await waitFor(() => pGot.length === 2, { ...WAIT, what: 'config and pointers at the phone' });
  await w.until(`${P}/phone/p-configured/pointers`, '{"v":1}');
  t.deepEqual(pGot, [`${P}/phone/p-configured/config`, `${P}/phone/p-configured/pointers`]);
  t.deepEqual(w.got.filter((m) => m.payload.includes('forged')), []);
  for (const c of [ops, phone]) c.end(true);
  w.c.end(true);
});

/** `ipphone-admin ARGS…` as a child process, to its end. */
async function admin(args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  try {
    const r = await promisify(execFile)(process.execPath, [...programArgs('ipphone-admin'), ...args], { cwd: ROOT, timeout: 60_000 });
    return { code: 0, stdout: r.stdout, stderr: r.stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string };
    return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
  }
}

test('ipphone-admin over TLS: an operator certificate reads a phone\'s status; a phone\'s certificate does not', async (t) => {
  const phone = await client('p-admin-seen');
  await pub(phone, `${P}/phone/p-admin-seen/status`, JSON.stringify({ online: true, home: 'cm-a', services: 'cm-a', state: 'homed', pointersVersion: 1, configVersion: 0, rehomes: 0 }), true);
  const ops = await pki.client('ops-admin');
  const tlsArgs = (c: { cert: string; key: string }): string[] => ['--broker', broker.url, '--ca', pki.ca.cert, '--cert', c.cert, '--tls-key', c.key];
  const seen = await admin(['status', ...tlsArgs(ops), '--phone', 'p-admin-seen', '--once', '--quiet', '500']);
  t.is(seen.code, 0, seen.stderr);
  t.like(JSON.parse(seen.stdout.trim()) as object, { phone: 'p-admin-seen', online: true, home: 'cm-a' });
  const spy = await pki.client('p-admin-spy');
  const blind = await admin(['status', ...tlsArgs(spy), '--phone', 'p-admin-seen', '--once', '--quiet', '500']);
  t.is(blind.code, 1);
  t.regex(blind.stderr, /phone p-admin-seen has no status/);
  // No client certificate: the broker refuses the connection.
  const anon = await admin(['status', '--broker', broker.url, '--ca', pki.ca.cert, '--once', '--connect-timeout', '5000']);
  t.is(anon.code, 1);
  t.regex(anon.stderr, /cannot connect to broker mqtts:\/\/127\.0\.0\.1:\d+/);
  phone.end(true);
});

test('the shipped deploy/mosquitto/mosquitto.conf starts and enforces the same rules', async (t) => {
  const shipped = readFileSync(path.join(ROOT, 'deploy/mosquitto/mosquitto.conf'), 'utf8');
  t.regex(shipped, /^set_tcp_nodelay true$/m);
  t.notRegex(shipped, /^listener 1883/m, 'no plain listener');
  const files: Record<string, string> = { 'ca.crt': pki.ca.cert, 'server.crt': pki.server.cert, 'server.key': pki.server.key, acl: path.join(pki.dir, 'acl') };
  let tcpListeners = 0;
  const shippedBroker = await startMosquitto({
    // Only the paths and the port change; every other line is as shipped.
    confText: (port) =>
      shipped
        .replace(/\/etc\/mosquitto\/ipphone\/([\w.]+)/g, (_, name: string) => files[name] ?? `missing-${name}`)
        .replace(/^listener 8883$/m, () => {
          tcpListeners++;
          return `listener ${port} 127.0.0.1`;
        }),
  });
  try {
    t.is(tcpListeners, 1);
    t.true(shippedBroker.url.startsWith('mqtts://'));
    t.not(await attempt(undefined, { url: shippedBroker.url }), 'connected');
    t.not(await attempt(undefined, { url: `mqtt://127.0.0.1:${shippedBroker.port}`, clientId: 'plain' }), 'connected');
    const w = await client('ops-admin', { url: shippedBroker.url });
    const got: string[] = [];
    w.on('message', (topic, payload) => got.push(`${topic} ${payload.toString()}`));
    await w.subscribeAsync(`${P}/#`, { qos: 1 });
    const phone = await client('p-shipped', { url: shippedBroker.url });
    await tryPub(phone, `${P}/cm/cm-a/state`, '{"online":false,"forged":true}', true);
    await pub(phone, `${P}/phone/p-shipped/event`, '{"type":"marker"}');
    await waitFor(() => got.includes(`${P}/phone/p-shipped/event {"type":"marker"}`), { ...WAIT, what: 'marker' });
    t.deepEqual(got, [`${P}/phone/p-shipped/event {"type":"marker"}`]);
    phone.end(true);
    w.end(true);
  } finally {
    await shippedBroker.stop();
  }
});
