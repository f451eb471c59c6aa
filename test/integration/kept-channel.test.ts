/**
 * Issue #10, "The kept management channel carries nothing": after a signed
 * list whose only pointer is a dead broker, the phone keeps its old home's
 * broker connected — and that connection must still carry its status, and
 * take `pointers` and `config` from an operator, until a new home acks.
 * A real mosquitto, running agent and call managers.
 */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { connect, type MqttClient } from 'mqtt';
import { parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

async function operator(url: string): Promise<MqttClient> {
  const client = connect(url, { reconnectPeriod: 0, clientId: `op-${Math.random().toString(16).slice(2)}` });
  await new Promise<void>((done, fail) => {
    client.once('connect', () => done());
    client.once('error', fail);
  });
  return client;
}

test.serial('kept-channel: after a list of dead brokers the old broker carries status, pointers and config until a new home acks', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const phone = 'p-keep';
  const configFile = c.agentConfig(phone, { remoteConfig: { confirmMs: 60_000 } });
  const agent = c.startAgent(phone, configFile);
  await c.waitHome(phone, 'cm-a');
  const ops = await operator(mosq.url);
  t.teardown(() => ops.endAsync());
  const key = parsePrivateKey(c.privatePem);
  const good = c.group.map(({ id, broker, services }) => ({ id, broker, services }));
  const dead = [{ id: 'cm-x', broker: `mqtt://127.0.0.1:${await freePort()}`, services: 'http://127.0.0.1:9/services' }];
  const held = Number(c.status(phone)?.pointersVersion);
  const fail = (what: string) => (e: Error): never => {
    throw new Error(`${what}: ${e.message}\nstatus ${JSON.stringify(c.status(phone))}\n${agent.output().slice(-4000)}`);
  };
  const pushList = (version: number, list: unknown[]): Promise<unknown> =>
    ops.publishAsync(`${c.prefix}/phone/${phone}/pointers`, JSON.stringify(signEnvelope({ version, reason: 'admin', list }, key, 'ops-1')), { qos: 1 });

  // 1. A list whose only pointer is a dead broker: the phone leaves cm-a and searches cm-x.
  await pushList(held + 1000, dead);
  // The status keeps reaching the old broker (the observer is on it).
  await waitFor(() => c.status(phone)?.pointersVersion === held + 1000 && c.status(phone)?.home === null, { timeoutMs: 20_000, what: 'the new list and no home in the status on the old broker' }).catch(fail('status'));
  t.deepEqual(c.status(phone)?.pointers, ['cm-x']);

  // 2. The operator's corrected list on the old broker reaches the phone, which homes.
  await pushList(held + 2000, good);
  await c.waitHome(phone, 'cm-a', 30_000).catch(fail('corrected list'));

  // 3. Again a dead list; this time the correction is a config change on the old broker.
  await pushList(held + 3000, dead);
  await waitFor(() => c.status(phone)?.pointersVersion === held + 3000 && c.status(phone)?.home === null, { timeoutMs: 20_000, what: 'the second dead list in the status' }).catch(fail('status 2'));
  const results: { version: number; ok: boolean }[] = [];
  ops.on('message', (_t, p) => results.push(JSON.parse(p.toString()) as { version: number; ok: boolean }));
  await ops.subscribeAsync(`${c.prefix}/phone/${phone}/config/result`, { qos: 1 });
  const cfgVersion = Date.now();
  // The provisioned pointers again: equal to the config's, not to the list held (a patch that names
  // pointers replaces the held list even then).
  t.deepEqual((JSON.parse(readFileSync(configFile, 'utf8')) as { pointers: unknown }).pointers, good, 'the correction is the file\'s own list');
  await ops.publishAsync(`${c.prefix}/phone/${phone}/config`, JSON.stringify(signEnvelope({ version: cfgVersion, config: { pointers: good } }, key, 'ops-1')), { qos: 1 });
  await c.waitHome(phone, 'cm-a', 30_000).catch(fail('config correction'));
  await waitFor(() => results.some((r) => r.version === cfgVersion), { timeoutMs: 20_000, what: 'the config result' }).catch(fail('config result'));
  t.like(results.find((r) => r.version === cfgVersion), { ok: true });
});
