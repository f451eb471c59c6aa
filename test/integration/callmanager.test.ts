/**
 * The call manager as users run it: `ipphone-cm` child processes against a
 * real mosquitto, real HTTP, real signals.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { connectAsync, type MqttClient } from 'mqtt';
import { generateKeyPair, openEnvelope, parsePublicKey } from '../../src/protocol/envelope.js';
import type { AckPayload, Envelope, PointersBody } from '../../src/protocol/types.js';
import { CallManager } from '../../src/callmanager/call-manager.js';
import { validateCmConfig } from '../../src/config/cm-config.js';
import { silentLogger } from '../../src/lib/log.js';
import { startAedes } from '../helpers/aedes.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs } from '../helpers/programs.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const P = 'ipphone/v1';

const keys = generateKeyPair();
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);

const children = new Set<ChildProcess>();
process.on('exit', () => {
  for (const c of children) c.kill('SIGKILL');
});

function tempDir(t: ExecutionContext): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-cm-it-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

interface Cm {
  child: ChildProcess;
  port: number;
  stdout: () => string;
  stderr: () => string;
  /** Exit code, or the signal's name when killed by one. */
  exit: Promise<number | string | null>;
}

function run(t: ExecutionContext, args: string[]): Cm & { port: 0 } {
  const child = spawn(process.execPath, [...programArgs('ipphone-cm'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise<number | string | null>((resolve) =>
    child.once('exit', (code, signal) => {
      children.delete(child);
      resolve(code ?? signal);
    }),
  );
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  return { child, port: 0, stdout: () => out, stderr: () => err, exit };
}

/** Write a group config for `ids` (all on `broker`) and start `cmId` from it. */
async function startCm(t: ExecutionContext, dir: string, broker: string, cmId: string, ports: Record<string, number>): Promise<Cm> {
  const keyFile = path.join(dir, 'ops-1.pem');
  writeFileSync(keyFile, keys.privatePem);
  const group = Object.entries(ports).map(([id, port]) => ({ id, broker, services: `http://127.0.0.1:${port}/services`, capacity: 100 }));
  const config = {
    cmId,
    broker,
    http: { host: '127.0.0.1', port: ports[cmId] },
    group,
    signingKey: keyFile,
    keyId: 'ops-1',
    keepalive: { phoneIntervalMs: 1000 },
    stateDir: path.join(dir, `state-${cmId}`),
    log: { level: 'debug' },
  };
  const file = path.join(dir, `${cmId}.json`);
  writeFileSync(file, JSON.stringify(config));
  const cm = run(t, ['--config', file]);
  const port = ports[cmId]!;
  await waitFor(() => cm.stdout().includes('"call manager started"') || cm.child.exitCode !== null, { timeoutMs: 60_000, what: `${cmId} started` });
  if (cm.child.exitCode !== null) throw new Error(`${cmId} exited: ${cm.stderr()}`);
  return { ...cm, port };
}

/** An MQTT client that remembers every message by topic. */
async function watcher(t: ExecutionContext, url: string, subs: string[], protocolVersion: 4 | 5 = 5) {
  const client: MqttClient = await connectAsync(url, { reconnectPeriod: 0, protocolVersion });
  t.teardown(() => client.endAsync(true));
  const got: Array<{ topic: string; text: string; retain: boolean }> = [];
  client.on('message', (topic, payload, packet) => got.push({ topic, text: payload.toString('utf8'), retain: packet.retain }));
  await client.subscribeAsync(subs, { qos: 1 });
  return {
    client,
    got,
    on: (topic: string) => got.filter((m) => m.topic === topic).map((m) => JSON.parse(m.text) as Record<string, unknown>),
  };
}

/** The signed body of a state message (throws unless it verifies with the test key). */
function stateBody(text: string): { cm: string; online: boolean; bdSeq: number; conn: number; nonce: string; seq: number; will?: true } {
  const o = JSON.parse(text) as Envelope & { online: boolean };
  const body = JSON.parse(openEnvelope({ kid: o.kid, body: o.body, sig: o.sig }, trusted).toString('utf8')) as ReturnType<typeof stateBody>;
  if (body.online !== o.online) throw new Error(`top-level online ${o.online} differs from the body's`);
  return body;
}

async function broker(t: ExecutionContext): Promise<Mosquitto> {
  const m = await startMosquitto();
  t.teardown(() => m.stop());
  return m;
}

// A long declared interval: the phone stays counted as homed however slow the shared test machine is.
const keepalive = (o: Record<string, unknown>): string => JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 0, busy: false, intervalMs: 60_000, ...o });

async function get(url: string): Promise<{ status: number; type: string; body: string }> {
  const res = await fetch(url);
  return { status: res.status, type: res.headers.get('content-type') ?? '', body: await res.text() };
}

test('online state, acks with and without the signed list, services XML, metrics, SIGTERM exits 0 offline', async (t) => {
  const mq = await broker(t);
  const dir = tempDir(t);
  const ports = { 'cm-a': await freePort(), 'cm-b': await freePort() };
  const w = await watcher(t, mq.url, [`${P}/cm/cm-a/state`, `${P}/cm/cm-a/load`, `${P}/phone/p1/ack`, `${P}/phone/p1/pointers`]);
  const cm = await startCm(t, dir, mq.url, 'cm-a', ports);
  await waitFor(() => w.on(`${P}/cm/cm-a/state`).some((s) => s.online === true), { timeoutMs: 30_000, what: 'state online' });

  await w.client.publishAsync(`${P}/cm/cm-a/keepalive`, keepalive({ seq: 5, pointersVersion: 0 }));
  await waitFor(() => w.on(`${P}/phone/p1/ack`).length === 1, { what: 'first ack' });
  const ack = w.on(`${P}/phone/p1/ack`)[0] as unknown as AckPayload;
  t.is(ack.cm, 'cm-a');
  t.is(ack.seq, 5);
  t.is(ack.pointersVersion, 1, 'config default version while all are online');
  const body = JSON.parse(openEnvelope(ack.pointers as Envelope, trusted).toString('utf8')) as PointersBody;
  t.is(body.version, 1);
  t.is(body.reason, 'failover');
  t.deepEqual(body.list.map((p) => p.id), ['cm-a', 'cm-b']);

  await w.client.publishAsync(`${P}/cm/cm-a/keepalive`, keepalive({ seq: 6, pointersVersion: 1 }));
  await w.client.publishAsync(`${P}/cm/cm-a/keepalive`, 'garbage');
  await waitFor(() => w.on(`${P}/phone/p1/ack`).length === 2, { what: 'second ack' });
  t.deepEqual(w.on(`${P}/phone/p1/ack`)[1], { cm: 'cm-a', seq: 6, pointersVersion: 1 });
  t.is(w.on(`${P}/phone/p1/pointers`).length, 0, 'no push while every peer is online');
  t.like(w.on(`${P}/cm/cm-a/load`)[0], { phones: 0, capacity: 100, servicesRps: 0 }, 'load published on connect');
  t.true(Number.isSafeInteger(w.on(`${P}/cm/cm-a/load`)[0]?.version), 'with the highest list version it issued or saw (peers issue above it)');
  await waitFor(() => w.on(`${P}/cm/cm-a/load`).some((l) => l.phones === 1), { what: 'load follows the phone count' });

  const svc = await get(`http://127.0.0.1:${cm.port}/services?phone=p1`);
  t.is(svc.status, 200);
  t.regex(svc.type, /^text\/xml/);
  t.regex(svc.body, /<CiscoIPPhoneMenu>[\s\S]*<Title>[^<]*cm-a[^<]*<\/Title>/);
  t.is((await get(`http://127.0.0.1:${cm.port}/services`)).status, 400);
  t.is((await get(`http://127.0.0.1:${cm.port}/nowhere`)).status, 404);

  await waitFor(async () => (await get(`http://127.0.0.1:${cm.port}/metrics`)).body.includes('ipphone_cm_keepalives_invalid_total 1'), { what: 'invalid counted' });
  const metrics = (await get(`http://127.0.0.1:${cm.port}/metrics`)).body;
  t.regex(metrics, /^# TYPE ipphone_cm_keepalives_total counter$/m);
  t.regex(metrics, /^ipphone_cm_keepalives_total 2$/m);
  t.regex(metrics, /^ipphone_cm_phones_homed 1$/m);
  t.regex(metrics, /^ipphone_cm_services_requests_total 1$/m);
  t.regex(metrics, /^ipphone_cm_broker_connected 1$/m);
  t.regex(metrics, /^ipphone_cm_acks_dropped_total 0$/m, 'both keep-alives were acked');

  // Logs are JSON lines with a module per line.
  const lines = cm.stdout().trim().split('\n');
  t.true(lines.every((l) => typeof (JSON.parse(l) as { mod?: unknown }).mod === 'string'), 'every log line is JSON with mod');

  const seenBefore = w.got.length;
  cm.child.kill('SIGTERM');
  t.is(await cm.exit, 0);
  await waitFor(() => w.got.slice(seenBefore).some((m) => m.topic === `${P}/cm/cm-a/state` && JSON.parse(m.text).online === false), {
    what: 'offline published',
  });
  const late = await watcher(t, mq.url, [`${P}/cm/cm-a/state`]);
  await waitFor(() => late.got.length > 0, { what: 'retained state' });
  t.deepEqual(late.on(`${P}/cm/cm-a/state`).map((s) => s.online), [false]);
  t.true(late.got[0]!.retain);
  // Signed, and of the run that was online: the clean stop's offline is that connection's will.
  const online = stateBody(w.got.find((m) => m.topic === `${P}/cm/cm-a/state` && JSON.parse(m.text).online === true)!.text);
  const offline = stateBody(late.got[0]!.text);
  // The will is signed at CONNECT, just before the online (seq one less), and marked final for its connection.
  t.deepEqual(offline, { ...online, online: false, seq: online.seq - 1, will: true });
  t.is(online.cm, 'cm-a');
  t.is(online.conn, 1);
});

test('kill -9 leaves the will; the second CM pushes a failover list with the dead CM last', async (t) => {
  const mq = await broker(t);
  const dir = tempDir(t);
  const ports = { 'cm-a': await freePort(), 'cm-b': await freePort() };
  const w = await watcher(t, mq.url, [`${P}/cm/+/state`, `${P}/phone/p2/ack`, `${P}/phone/p2/pointers`]);
  const [a, b] = await Promise.all([startCm(t, dir, mq.url, 'cm-a', ports), startCm(t, dir, mq.url, 'cm-b', ports)]);
  await waitFor(() => w.on(`${P}/cm/cm-a/state`).some((s) => s.online) && w.on(`${P}/cm/cm-b/state`).some((s) => s.online), {
    timeoutMs: 30_000,
    what: 'both online',
  });

  a.child.kill('SIGKILL');
  await a.exit;
  await waitFor(() => w.on(`${P}/cm/cm-a/state`).at(-1)?.online === false, { timeoutMs: 30_000, what: 'will published' });
  const late = await watcher(t, mq.url, [`${P}/cm/cm-a/state`]);
  await waitFor(() => late.got.length > 0, { what: 'retained will' });
  t.deepEqual(late.on(`${P}/cm/cm-a/state`).map((s) => s.online), [false]);
  // The will is the pre-signed offline of the run that was online.
  const online = stateBody(w.got.find((m) => m.topic === `${P}/cm/cm-a/state` && JSON.parse(m.text).online === true)!.text);
  t.deepEqual(stateBody(late.got[0]!.text), { ...online, online: false, seq: online.seq - 1, will: true });

  await waitFor(() => /"peer state changed"[^\n]*"peer":"cm-a"|"peer":"cm-a"[^\n]*"peer state changed"/.test(b.stdout()), {
    timeoutMs: 30_000,
    what: 'cm-b saw cm-a go offline',
  });
  await w.client.publishAsync(`${P}/cm/cm-b/keepalive`, keepalive({ phone: 'p2', seq: 1, pointersVersion: 1, prev: 'cm-a' }));
  await waitFor(() => w.on(`${P}/phone/p2/pointers`).length === 1 && w.on(`${P}/phone/p2/ack`).length === 1, { what: 'push and ack' });
  const pushed = JSON.parse(openEnvelope(w.on(`${P}/phone/p2/pointers`)[0] as unknown as Envelope, trusted).toString('utf8')) as PointersBody;
  t.is(pushed.reason, 'failover');
  t.deepEqual(pushed.list.map((p) => p.id), ['cm-b', 'cm-a']);
  t.true(pushed.version > 1);
  const ack = w.on(`${P}/phone/p2/ack`)[0] as unknown as AckPayload;
  t.is(ack.pointersVersion, pushed.version);

  // Homed now: the next keep-alive is acked, not pushed again.
  await w.client.publishAsync(`${P}/cm/cm-b/keepalive`, keepalive({ phone: 'p2', seq: 2, pointersVersion: pushed.version }));
  await waitFor(() => w.on(`${P}/phone/p2/ack`).length === 2, { what: 'second ack' });
  t.is(w.on(`${P}/phone/p2/pointers`).length, 1);
  const metrics = (await get(`http://127.0.0.1:${b.port}/metrics`)).body;
  t.regex(metrics, /^ipphone_cm_pointer_pushes_total\{reason="failover"\} 1$/m);
});

test('/healthz is 200 while connected and 503 after the broker stops', async (t) => {
  const mq = await broker(t);
  const dir = tempDir(t);
  const ports = { 'cm-a': await freePort() };
  const cm = await startCm(t, dir, mq.url, 'cm-a', ports);
  await waitFor(async () => (await get(`http://127.0.0.1:${cm.port}/healthz`)).status === 200, { timeoutMs: 30_000, what: 'healthz 200' });
  t.is((await get(`http://127.0.0.1:${cm.port}/healthz`)).body, 'ok\n');
  await mq.stop();
  await waitFor(async () => (await get(`http://127.0.0.1:${cm.port}/healthz`)).status === 503, { timeoutMs: 30_000, what: 'healthz 503' });
  t.regex((await get(`http://127.0.0.1:${cm.port}/metrics`)).body, /^ipphone_cm_broker_connected 0$/m);
  cm.child.kill('SIGTERM');
  t.is(await cm.exit, 0, 'clean exit even without a broker');
});

test('--check-config: bad file exits 1 with one line per problem; good file exits 0', async (t) => {
  const dir = tempDir(t);
  const bad = path.join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ cmId: 'cm a', broker: 'ftp://x', group: [], keyId: 'ops-1', signingKey: path.join(dir, 'missing.pem') }));
  const r = run(t, ['--check-config', bad]);
  t.is(await r.exit, 1);
  const lines = r.stderr().trimEnd().split('\n');
  t.true(lines.length >= 4, r.stderr());
  for (const l of lines) t.true(l.startsWith(`${bad}: `), l);
  for (const field of ['cmId', 'broker', 'group', 'signingKey']) t.true(lines.some((l) => l.includes(field)), field);
  t.is(r.stdout(), '');

  const keyFile = path.join(dir, 'k.pem');
  writeFileSync(keyFile, keys.privatePem);
  const good = path.join(dir, 'good.json');
  writeFileSync(
    good,
    JSON.stringify({
      cmId: 'cm-a',
      broker: 'mqtt://127.0.0.1:1',
      group: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1', services: 'http://127.0.0.1:1/services', capacity: 10 }],
      signingKey: keyFile,
      keyId: 'ops-1',
    }),
  );
  const ok = run(t, ['--check-config', good]);
  t.is(await ok.exit, 0);

  const run1 = run(t, ['--config', bad]);
  t.is(await run1.exit, 1, '--config with a bad file exits 1 too');
  t.true(run1.stderr().trimEnd().split('\n').length >= 4);

  const help = run(t, ['--help']);
  t.is(await help.exit, 0);
  t.regex(help.stdout(), /--config FILE/);
});

test('in process on aedes (MQTT 3.1.1): a per-phone list reaches that phone only; stop is idempotent', async (t) => {
  const aedes = await startAedes();
  t.teardown(() => aedes.close());
  const dir = tempDir(t);
  const keyFile = path.join(dir, 'k.pem');
  writeFileSync(keyFile, keys.privatePem);
  const group = ['cm-a', 'cm-b'].map((id) => ({ id, broker: aedes.url, services: `http://127.0.0.1:1/${id}/services`, capacity: 10 }));
  const v = validateCmConfig({ cmId: 'cm-a', broker: aedes.url, http: { port: 0 }, group, signingKey: keyFile, keyId: 'ops-1', stateDir: path.join(dir, 'state'), mqtt: { protocolVersion: 4 } });
  if (!v.ok) return t.fail(v.problems.join('\n'));
  const cm = new CallManager({ config: v.config, log: silentLogger() });
  t.teardown(() => cm.stop());
  await cm.start();
  await waitFor(() => cm.connected, { what: 'connected' });
  t.true((cm.httpPort ?? 0) > 0);

  const w = await watcher(t, aedes.url, [`${P}/phone/+/ack`], 4);
  const own = cm.book!.setPhoneList('p7', [group[1]!, group[0]!], 'rebalance');
  await w.client.publishAsync(`${P}/cm/cm-a/keepalive`, keepalive({ phone: 'p7', pointersVersion: 1 }));
  await w.client.publishAsync(`${P}/cm/cm-a/keepalive`, keepalive({ phone: 'p8', pointersVersion: 1 }));
  await waitFor(() => w.on(`${P}/phone/p7/ack`).length === 1 && w.on(`${P}/phone/p8/ack`).length === 1, { what: 'acks' });
  const a7 = w.on(`${P}/phone/p7/ack`)[0] as unknown as AckPayload;
  const b7 = JSON.parse(openEnvelope(a7.pointers!, trusted).toString('utf8')) as PointersBody;
  t.is(b7.version, own.version);
  t.is(b7.reason, 'rebalance');
  t.deepEqual(b7.list.map((p) => p.id), ['cm-b', 'cm-a']);
  t.deepEqual(w.on(`${P}/phone/p8/ack`)[0], { cm: 'cm-a', seq: 1, pointersVersion: 1 });
  t.deepEqual([...cm.homedPhones()].map((h) => h.phone).sort(), ['p7', 'p8']);

  await Promise.all([cm.stop(), cm.stop()]);
  await cm.stop();
  t.false(cm.connected);
});

test('an unusable stateDir stops the start with a reason naming the path; the broker sees no state', async (t) => {
  const mq = await broker(t);
  const dir = tempDir(t);
  const keyFile = path.join(dir, 'k.pem');
  writeFileSync(keyFile, keys.privatePem);
  const blocker = path.join(dir, 'not-a-dir');
  writeFileSync(blocker, 'x');
  const stateDir = path.join(blocker, 'state');
  const file = path.join(dir, 'cm.json');
  const port = await freePort();
  writeFileSync(
    file,
    JSON.stringify({ cmId: 'cm-a', broker: mq.url, http: { port }, group: [{ id: 'cm-a', broker: mq.url, services: `http://127.0.0.1:${port}/services`, capacity: 10 }], signingKey: keyFile, keyId: 'ops-1', stateDir }),
  );
  const w = await watcher(t, mq.url, [`${P}/cm/cm-a/state`]);
  const cm = run(t, ['--config', file]);
  t.is(await cm.exit, 1);
  t.regex(cm.stderr(), /^ipphone-cm: stateDir: cannot keep the boot sequence in /);
  t.true(cm.stderr().includes(stateDir), cm.stderr());
  t.is(cm.stderr().trimEnd().split('\n').length, 1, 'one line');
  t.is(w.got.length, 0);
});
