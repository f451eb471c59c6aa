/**
 * Issue 10, "Power and flash", against the compiled agent (dist/bin):
 * commit-confirmed across a real kill -9, and a restart-only field (the
 * broker password) that takes effect at the restart it asked for.
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
import { FileStateStore } from '../../src/store/agent-state-store.js';
import { silentLogger } from '../../src/lib/log.js';
import { validateAgentConfig } from '../../src/config/agent-config.js';
import { provisioningHash } from '../../src/agent/boot-config.js';
import { startAedes } from '../helpers/aedes.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { delay, waitFor } from '../helpers/net.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

interface Result {
  version: number;
  ok: boolean;
  error?: string;
  rolledBack?: boolean;
}

test.serial('issue 10: a power cut (kill -9) inside the confirmation window of a change to dead pointers → after boot the phone rolls back to the list it held and homes', async (t) => {
  t.timeout(120_000);
  const c = await Cluster.group(t, mosq.url);
  const phone = 'p-cut';
  const stateDir = join(c.dir, `state-${phone}`);
  const cfgPath = c.agentConfig(phone, { stateDir, remoteConfig: { confirmMs: 8000 } });
  const agent = c.startAgent(phone, cfgPath);
  await c.waitHome(phone, 'cm-a', 20_000);
  const load = () => new FileStateStore({ dir: stateDir, log: silentLogger() }).load();
  // The list the phone holds before the change: the group's, from an ack, on flash.
  await waitFor(async () => ((await load())?.pointersVersion ?? 0) > 0, { timeoutMs: 15_000, what: 'group list on flash' });
  const before = (await load())!;

  const w: MqttClient = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => w.endAsync(true));
  const results: Result[] = [];
  w.on('message', (_t, p) => results.push(JSON.parse(p.toString()) as Result));
  await new Promise<void>((done) => w.once('connect', () => w.subscribe(`${c.prefix}/phone/${phone}/config/result`, { qos: 1 }, () => done())));

  const version = Date.now() + 1000;
  const nowhere = [{ id: 'cm-x', broker: 'mqtt://127.0.0.1:9', services: 'http://127.0.0.1:9/services' }];
  const sentAt = Date.now();
  await w.publishAsync(`${c.prefix}/phone/${phone}/config`, JSON.stringify(signEnvelope({ version, config: { pointers: nowhere } }, parsePrivateKey(c.privatePem), 'ops-1')), { qos: 1 });
  // Cut once the unconfirmed change is on flash (about 1 s into the 8 s window, as in the report).
  await waitFor(async () => (await load())?.configVersion === version, { timeoutMs: 10_000, intervalMs: 20, what: 'change on flash' });
  await delay(Math.max(0, 1000 - (Date.now() - sentAt)));
  const pending = (await load())!.pendingConfig;
  t.deepEqual(pending?.prev.pointers.map((p) => p.id), before.pointers.map((p) => p.id), 'rollback target on flash: the held list');
  t.is(pending?.prev.pointersVersion, before.pointersVersion);
  agent.signal('SIGKILL');
  await agent.exited;
  const cutAfterMs = Date.now() - sentAt;
  t.false(results.some((r) => r.version === version), 'no result before the cut');

  const bootAt = Date.now();
  const again = c.startAgent(phone, cfgPath);
  await waitFor(() => results.some((r) => r.version === version), { timeoutMs: 40_000, what: 'rollback result after boot' }).catch((e: Error) => {
    throw new Error(`${e.message}\n${again.output().slice(-4000)}`);
  });
  const resultMs = Date.now() - bootAt;
  t.like(results.find((r) => r.version === version), { ok: false, rolledBack: true });
  await waitFor(() => c.status(phone)?.home === 'cm-a' && c.status(phone)?.state === 'homed', { timeoutMs: 30_000, what: 'homed again on the held list' });
  const homedMs = Date.now() - bootAt;
  await waitFor(async () => (await load())?.pendingConfig === undefined, { timeoutMs: 10_000, what: 'pending record cleared on flash' });
  const after = (await load())!;
  t.deepEqual(after.pointers.map((p) => p.id), before.pointers.map((p) => p.id));
  t.true(after.pointersVersion >= before.pointersVersion, 'the held list at its own version (a call manager may have sent a newer one since)');
  t.deepEqual(after.configOverlay ?? {}, {});
  t.is(after.configVersion, version, 'the version stays consumed');
  t.log(`power cut ${cutAfterMs} ms after the change; after boot: rollback result in ${resultMs} ms, homed in ${homedMs} ms (window 8 s, counted from boot)`);
});

test.serial('issue 10: a remote broker-password change (saved overlay) is what the transport uses after the restart', async (t) => {
  t.timeout(60_000);
  const broker = await startAedes();
  t.teardown(() => broker.close());
  const seen: string[] = [];
  broker.broker.authenticate = (_client, username, password, done) => {
    seen.push(`${username ?? ''}:${password?.toString() ?? ''}`);
    done(null, password?.toString() === 'rotated');
  };
  const c = new Cluster();
  t.teardown(() => c.close());
  const dir = c.dir;
  const stateDir = join(dir, 'state-p-pw');
  const raw = {
    phoneId: 'p-pw',
    topicPrefix: 'pw',
    pointers: [{ id: 'cm-a', broker: broker.url, services: 'http://127.0.0.1:9/services' }],
    stateDir,
    trust: { requireSigned: false },
    mqtt: { protocolVersion: 4, username: 'phone', password: 'old', connectTimeoutMs: 2000, backoff: { baseMs: 200, maxMs: 1000 } },
    log: { level: 'info' },
  };
  const v = validateAgentConfig(raw);
  if (!v.ok) throw new Error(v.problems.join('\n'));
  // What an accepted remote change `{ mqtt: { password: 'rotated' } }` left on flash.
  await new FileStateStore({ dir: stateDir, log: silentLogger() }).save({
    pointers: v.config.pointers,
    pointersVersion: 0,
    configVersion: 7,
    configOverlay: { mqtt: { password: 'rotated' } },
    fileHash: provisioningHash(v.config),
  });
  const cfgPath = join(dir, 'p-pw.json');
  writeFileSync(cfgPath, JSON.stringify(raw));
  const agent = c.startAgent('p-pw', cfgPath);
  await waitFor(() => seen.length > 0, { timeoutMs: 20_000, what: 'a connect attempt' }).catch((e: Error) => {
    throw new Error(`${e.message}\n${agent.output().slice(-3000)}`);
  });
  t.is(seen[0], 'phone:rotated', 'the saved password, not the file one');
  t.false(seen.includes('phone:old'));
});

test.serial('issue 10: a state directory that cannot be created does not restart-loop the agent: it homes from the file list and says storage unavailable', async (t) => {
  t.timeout(60_000);
  const c = await Cluster.group(t, mosq.url);
  writeFileSync(join(c.dir, 'blocker'), 'x');
  const cfgPath = c.agentConfig('p-nodir', { stateDir: join(c.dir, 'blocker', 'state') });
  const agent = c.startAgent('p-nodir', cfgPath);
  await waitFor(() => c.status('p-nodir')?.home === 'cm-a' || agent.child.exitCode !== null, { timeoutMs: 20_000, what: 'homed or exited' });
  t.is(agent.child.exitCode, null, `still running\n${agent.output().slice(-2000)}`);
  t.like(c.status('p-nodir'), { home: 'cm-a', storage: 'unavailable' });
  t.regex(agent.output(), /state directory unusable: running from the config file/);
});
