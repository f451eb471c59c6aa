/**
 * The failover set over TLS, on the production broker shape (CONTRACT.md "A
 * real broker"): a real mosquitto with a TLS listener only, client
 * certificates required, the certificate's CN as user name and client id, and
 * the group's ACL made by the generator `ipphone-admin acl` uses. Two call
 * managers and a phone as child processes, each with its own certificate
 * (openssl, test/helpers/pki.ts); crashes as real signals. Under that ACL a
 * phone may write only its per-phone keep-alive topic, so every homing here
 * also proves the agent picked `P/cm/{cmId}/keepalive/{phoneId}` and the call
 * manager answers it.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { pino } from 'pino';
import { aclFile } from '../../src/admin/acl.js';
import { Fleet } from '../../src/fleet/fleet.js';
import { Cluster, OBSERVER_CN } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { sharedCertGroup } from '../helpers/fleet-tests.js';
import { delay, waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { programArgs, ROOT } from '../helpers/programs.js';

/** The operator's CN: `ipphone-admin` runs with this certificate. */
const OPERATOR = 'ops-admin';

let pki: Pki;
test.before(async () => {
  pki = await makePki();
});
test.after.always(() => pki?.remove());

type Teardown = { teardown(fn: () => Promise<void> | void): void };

/** A TLS-only mosquitto with client certificates required and `acl` as its acl_file. */
async function tlsBroker(t: Teardown, acl: string): Promise<Mosquitto> {
  const m = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, aclFile: acl } });
  t.teardown(() => m.stop());
  return m;
}

/**
 * cm-a and cm-b (on one TLS broker, or cm-a on a second one), watched by an
 * observer with operator rights; the ACL is the generator's for this group.
 */
async function tlsGroup(t: Teardown, opts: { twoBrokers?: boolean } = {}): Promise<{ c: Cluster; main: Mosquitto; second: Mosquitto | undefined }> {
  const c = new Cluster({ tls: pki });
  t.teardown(() => c.close());
  const acl = pki.writeFile(`acl-${c.prefix.replace(/\W/g, '_')}.conf`, aclFile({ prefix: c.prefix, callManagers: ['cm-a', 'cm-b'], operators: [OBSERVER_CN, OPERATOR] }));
  const main = await tlsBroker(t, acl);
  const second = opts.twoBrokers === true ? await tlsBroker(t, acl) : undefined;
  await c.defineGroup([
    { id: 'cm-a', broker: (second ?? main).url },
    { id: 'cm-b', broker: main.url },
  ]);
  for (const m of [main, second]) if (m !== undefined) await c.observe(m.url);
  await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
  return { c, main, second };
}

/** A plain mqtt.js client with the certificate of `cn`. */
async function clientAs(t: Teardown, url: string, cn: string): Promise<MqttClient> {
  const client = connect(url, { reconnectPeriod: 0, ...(await pki.clientTls(cn)) });
  t.teardown(() => client.endAsync(true));
  await new Promise<void>((done, fail) => {
    client.once('connect', () => done());
    client.once('error', fail);
  });
  return client;
}

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run a program (`ipphone-admin`, or another with --check-config) to its end. */
function run(program: 'ipphone-admin' | 'ipphone-agent' | 'ipphone-cm', args: string[], timeoutMs = 30_000): Promise<Ran> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...programArgs(program), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(killer);
      done({ code: code ?? -1, stdout, stderr });
    });
  });
}

const moves = (c: Cluster, phone: string) => c.events(phone, 'rehomed').filter((e) => e.payload.reason !== 'services-timeout');

test.serial('TLS + ACL: kill -9 of the home call manager → homed on the backup (cm-offline)', async (t) => {
  const { c } = await tlsGroup(t);
  await c.identity('p-tls-kill');
  const agent = c.startAgent('p-tls-kill');
  await c.waitHome('p-tls-kill', 'cm-a', 30_000);
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-tls-kill', 'cm-b', 30_000);
  t.like(moves(c, 'p-tls-kill')[0]?.payload, { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
  t.is(agent.child.exitCode, null, 'agent still running');
  t.regex(c.cms.get('cm-b')!.output(), /broker connected/);
});

test.serial('TLS + ACL: SIGSTOP of the home → keepalive-loss; SIGCONT → fallback to the primary after the hold', async (t) => {
  const { c } = await tlsGroup(t);
  await c.identity('p-tls-stop');
  c.startAgent('p-tls-stop', c.agentConfig('p-tls-stop', { fallback: { holdMs: 3000 } }));
  await c.waitHome('p-tls-stop', 'cm-a', 30_000);
  const stoppedAt = Date.now();
  c.cms.get('cm-a')!.signal('SIGSTOP');
  await c.waitHome('p-tls-stop', 'cm-b', 30_000);
  const lost = moves(c, 'p-tls-stop')[0]!;
  t.like(lost.payload, { from: 'cm-a', to: 'cm-b', reason: 'keepalive-loss' });
  t.true(lost.at - stoppedAt >= 2000, `rehomed ${lost.at - stoppedAt} ms after SIGSTOP (three misses of 1 s)`);

  c.cms.get('cm-a')!.signal('SIGCONT');
  const contAt = Date.now();
  await c.waitHome('p-tls-stop', 'cm-a', 30_000);
  const back = moves(c, 'p-tls-stop').find((e) => e.payload.reason === 'fallback');
  t.like(back?.payload, { from: 'cm-b', to: 'cm-a', reason: 'fallback' });
  t.true(back!.at - contAt >= 3000, `fell back ${back!.at - contAt} ms after the primary recovered (hold 3000 ms)`);
});

test.serial('TLS + ACL: the primary\'s broker killed (pointers on two TLS brokers) → broker-lost; its return → fallback', async (t) => {
  const { c, second } = await tlsGroup(t, { twoBrokers: true });
  await c.identity('p-tls-broker');
  c.startAgent('p-tls-broker', c.agentConfig('p-tls-broker', { fallback: { holdMs: 2000 } }));
  await c.waitHome('p-tls-broker', 'cm-a', 30_000);
  await second!.kill();
  await c.waitHome('p-tls-broker', 'cm-b', 30_000);
  t.like(moves(c, 'p-tls-broker')[0]?.payload, { from: 'cm-a', to: 'cm-b', reason: 'broker-lost' });

  // Same port, same certificates and ACL: cm-a and the observer reconnect over TLS, the phone returns after its hold.
  await second!.restart();
  await c.waitHome('p-tls-broker', 'cm-a', 40_000);
  t.like(await c.lastMove('p-tls-broker', 'cm-a'), { from: 'cm-b', to: 'cm-a', reason: 'fallback' });
});

test.serial('TLS + ACL: ipphone-admin config and status with the operator\'s certificate', async (t) => {
  const { c, main } = await tlsGroup(t);
  await c.identity('p-tls-cfg');
  c.startAgent('p-tls-cfg');
  await c.waitHome('p-tls-cfg', 'cm-a', 30_000);
  const op = await pki.client(OPERATOR);
  const tls = ['--ca', pki.ca.cert, '--cert', op.cert, '--tls-key', op.key];
  const patch = join(c.dir, 'patch.json');
  writeFileSync(patch, JSON.stringify({ keepalive: { intervalMs: 700 }, log: { level: 'debug' } }));
  const applied = await run('ipphone-admin', ['config', '--broker', main.url, ...tls, '--prefix', c.prefix, '--phone', 'p-tls-cfg', '--key', c.keyPath, '--kid', 'ops-1', '--file', patch]);
  t.is(applied.code, 0, applied.stderr);
  t.like(JSON.parse(applied.stdout.trim().split('\n')[0]!), { ok: true });

  const status = await run('ipphone-admin', ['status', '--broker', main.url, ...tls, '--prefix', c.prefix, '--phone', 'p-tls-cfg', '--once']);
  t.is(status.code, 0, status.stderr);
  t.like(JSON.parse(status.stdout.trim().split('\n')[0]!), { phone: 'p-tls-cfg', online: true, home: 'cm-a', state: 'homed' });
  t.true((status.stdout.match(/"configVersion":(\d+)/)?.[1] ?? '0') !== '0', `config version in ${status.stdout}`);

  // Without a client certificate the broker refuses the operator's tool.
  const anonymous = await run('ipphone-admin', ['status', '--broker', main.url, '--ca', pki.ca.cert, '--prefix', c.prefix, '--phone', 'p-tls-cfg', '--once'], 20_000);
  t.not(anonymous.code, 0);
});

test.serial('TLS + ACL: a keep-alive whose payload names another phone gets no ack; its own does', async (t) => {
  const { c, main } = await tlsGroup(t);
  const phone = await clientAs(t, main.url, 'p-tls-own');
  const watcher = await clientAs(t, main.url, OPERATOR);
  const acks: string[] = [];
  watcher.on('message', (topic) => acks.push(topic.split('/').at(-2)!));
  await watcher.subscribeAsync(`${c.prefix}/phone/+/ack`, { qos: 0 });
  const ka = (id: string, seq: number): string => JSON.stringify({ phone: id, seq, pointersVersion: 0, busy: false });
  const topic = `${c.prefix}/cm/cm-a/keepalive/p-tls-own`;
  // Forged first: if it were answered, its ack would arrive before the genuine one's.
  await phone.publishAsync(topic, ka('p-victim', 1), { qos: 0 });
  await phone.publishAsync(topic, ka('p-tls-own', 2), { qos: 0 });
  await waitFor(() => acks.includes('p-tls-own'), { timeoutMs: 15_000, what: 'the ack of the genuine keep-alive' });
  await delay(300);
  t.deepEqual(acks, ['p-tls-own']);
  const metrics = await (await fetch(c.group[0]!.services.replace('/services', '/metrics'))).text();
  t.regex(metrics, /ipphone_cm_keepalives_invalid_total 1\b/);
});

test.serial('TLS + ACL: with a certificate the agent keeps alive on its per-phone topic; the shared topic is closed to phones', async (t) => {
  const { c, main } = await tlsGroup(t);
  const watcher = await clientAs(t, main.url, OPERATOR);
  const seen: { topic: string; phone: string }[] = [];
  watcher.on('message', (topic, payload) => seen.push({ topic, phone: String((JSON.parse(payload.toString()) as { phone?: unknown }).phone) }));
  await watcher.subscribeAsync([`${c.prefix}/cm/cm-a/keepalive`, `${c.prefix}/cm/cm-a/keepalive/+`], { qos: 0 });
  await c.identity('p-tls-auto');
  await c.identity('p-tls-shared');
  c.startAgent('p-tls-auto');
  // Forced onto the contract's shared topic, which the generated ACL does not let phones write.
  c.startAgent('p-tls-shared', c.agentConfig('p-tls-shared', { keepalive: { intervalMs: 1000, missLimit: 3, topic: 'shared' } }));
  await c.waitHome('p-tls-auto', 'cm-a', 30_000);
  const fromAuto = (): number => seen.filter((s) => s.phone === 'p-tls-auto').length;
  // Both send one keep-alive a second: by p-tls-auto's 5th, p-tls-shared has sent several too.
  await waitFor(() => fromAuto() >= 5 && c.status('p-tls-shared') !== undefined, { timeoutMs: 30_000, what: 'five keep-alives of p-tls-auto' });
  t.true(seen.filter((s) => s.phone === 'p-tls-auto').every((s) => s.topic === `${c.prefix}/cm/cm-a/keepalive/p-tls-auto`));
  t.deepEqual(seen.filter((s) => s.phone === 'p-tls-shared'), [], 'the broker delivered none of the shared-topic keep-alives');
  t.not(c.status('p-tls-shared')?.state, 'homed');
  t.is(c.status('p-tls-shared')?.home ?? null, null);
});

test.serial('TLS: a fleet of 20 phones sharing one client certificate homes over mqtts and fails over on kill -9', async (t) => {
  const { m, c, config } = await sharedCertGroup(t, pki);
  t.true(config.mqtt.ca === pki.ca.cert && m.url.startsWith('mqtts:'), m.url);
  const fleet = new Fleet({ config, count: 20, stateDir: join(c.dir, 'fleet'), log: pino({ level: 'error' }), batchSize: 10 });
  t.teardown(() => fleet.stop());
  await fleet.start();
  const ids = fleet.phones().map((p) => p.id);
  const homedOn = (cm: string): number => ids.filter((id) => c.status(id)?.home === cm && c.status(id)?.state === 'homed').length;
  await waitFor(() => homedOn('cm-a') === 20, { timeoutMs: 60_000, what: `20 phones on cm-a: ${JSON.stringify(fleet.summary())}` });
  c.cms.get('cm-a')!.signal('SIGKILL');
  await waitFor(() => homedOn('cm-b') === 20, { timeoutMs: 60_000, what: `20 phones on cm-b: ${JSON.stringify(fleet.summary())}` });
  t.true(ids.every((id) => moves(c, id)[0]?.payload.reason === 'cm-offline'));
});

test('--check-config names a missing certificate, an unreadable key and a certificate without key, for agent and call manager', async (t) => {
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([{ id: 'cm-a', broker: 'mqtts://127.0.0.1:8883' }]);
  const agentCfg = c.agentConfig('p-check', { mqtt: { ca: pki.ca.cert, cert: join(c.dir, 'missing.crt'), key: c.dir } });
  const agent = await run('ipphone-agent', ['--check-config', agentCfg]);
  t.is(agent.code, 1);
  const agentLines = agent.stderr.trim().split('\n');
  t.is(agentLines.length, 2, agent.stderr);
  t.regex(agentLines[0]!, /: mqtt\/cert: cannot use ".*missing\.crt": ENOENT/);
  t.regex(agentLines[1]!, /: mqtt\/key: cannot use ".*": EISDIR/);

  const cmCfg = join(c.dir, 'cm.json');
  const op = await pki.client('cm-a');
  writeFileSync(
    cmCfg,
    JSON.stringify({ cmId: 'cm-a', broker: 'mqtts://127.0.0.1:8883', group: c.group, signingKey: c.keyPath, keyId: 'ops-1', mqtt: { ca: join(c.dir, 'no-ca.pem'), cert: op.cert } }),
  );
  const cm = await run('ipphone-cm', ['--check-config', cmCfg]);
  t.is(cm.code, 1);
  t.deepEqual(
    cm.stderr.trim().split('\n').map((l) => l.replace(/^.*?\.json: /, '').replace(/: ENOENT.*/, '')),
    ['mqtt/key: is required with mqtt/cert (the certificate\'s private key)', `mqtt/ca: cannot use ${JSON.stringify(join(c.dir, 'no-ca.pem'))}`],
  );
  // Another certificate's key is named as such; with its own key the same file passes.
  const other = await pki.client('cm-b');
  const cfg = JSON.parse(readFileSync(cmCfg, 'utf8')) as Record<string, unknown>;
  writeFileSync(cmCfg, JSON.stringify({ ...cfg, mqtt: { ca: pki.ca.cert, cert: op.cert, key: other.key } }));
  const mismatch = await run('ipphone-cm', ['--check-config', cmCfg]);
  t.is(mismatch.code, 1);
  t.regex(mismatch.stderr, /mqtt\/key: cannot use ".*": it is not the private key of mqtt\/cert ".*"\n$/);
  writeFileSync(cmCfg, JSON.stringify({ ...cfg, mqtt: { ca: pki.ca.cert, cert: op.cert, key: op.key } }));
  const good = await run('ipphone-cm', ['--check-config', cmCfg]);
  t.is(good.code, 0, good.stderr);
});
