/**
 * Remote reconfiguration of a running agent (child process) over a real
 * mosquitto: applied, refused, rolled back, and kept across a restart.
 */
import test from 'ava';
import { connect, type MqttClient } from 'mqtt';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
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

interface Result {
  version: number;
  ok: boolean;
  error?: string;
  rolledBack?: boolean;
}

async function resultWatcher(c: Cluster, phone: string): Promise<{ client: MqttClient; results: Result[] }> {
  const client = connect(mosq.url, { reconnectPeriod: 0 });
  const results: Result[] = [];
  client.on('message', (_t, p) => results.push(JSON.parse(p.toString()) as Result));
  await new Promise<void>((done) => client.once('connect', () => client.subscribe(`${c.prefix}/phone/${phone}/config/result`, { qos: 1 }, () => done())));
  return { client, results };
}

test.serial('config changes: applied live, refused with a result, rolled back when the phone cannot home, kept across a restart', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const cfgPath = c.agentConfig('p-cfg', { remoteConfig: { confirmMs: 4000 } });
  const agent = c.startAgent('p-cfg', cfgPath);
  await c.waitHome('p-cfg', 'cm-a');
  const w = await resultWatcher(c, 'p-cfg');
  t.teardown(() => w.client.endAsync());
  const key = parsePrivateKey(c.privatePem);
  const topic = `${c.prefix}/phone/p-cfg/config`;
  const send = async (payload: unknown): Promise<void> => {
    await w.client.publishAsync(topic, JSON.stringify(payload), { qos: 1 });
  };
  const resultFor = async (version: number): Promise<Result> => {
    await waitFor(() => w.results.some((r) => r.version === version), { timeoutMs: 15_000, what: `result for ${version}` }).catch((e: Error) => {
      throw new Error(`${e.message}\n${agent.output().slice(-3000)}`);
    });
    return w.results.find((r) => r.version === version)!;
  };
  const base = Date.now();

  // Applied live.
  await send(signEnvelope({ version: base + 1, config: { keepalive: { intervalMs: 800 }, fallback: { holdMs: 9000 } } }, key, 'ops-1'));
  t.like(await resultFor(base + 1), { ok: true });
  // The result travels over MQTT; the log line through the agent's stdout pipe, which may arrive later.
  await waitFor(() => /remote config applied/.test(agent.output()), { timeoutMs: 30_000, what: 'the "remote config applied" log line' });

  // Refused: schema error, wrong key, replay, expired, identity change.
  await send(signEnvelope({ version: base + 2, config: { keepalive: { intervalMs: 5 } } }, key, 'ops-1'));
  t.regex(String((await resultFor(base + 2)).error), /keepalive\/intervalMs/);
  const other = parsePrivateKey(generateKeyPair().privatePem);
  await send(signEnvelope({ version: base + 3, config: { log: { level: 'debug' } } }, other, 'ops-1'));
  t.regex(String((await resultFor(base + 3)).error), /signature/);
  await send(signEnvelope({ version: base + 1, config: { log: { level: 'debug' } } }, key, 'ops-1'));
  await waitFor(() => c.events('p-cfg', 'rejected').some((e) => /not newer/.test(String(e.payload.error))), { timeoutMs: 10_000, what: 'replay rejected' });
  await send(signEnvelope({ version: base + 4, config: { log: { level: 'debug' } }, expires: Date.now() - 1 }, key, 'ops-1'));
  t.regex(String((await resultFor(base + 4)).error), /expired/i);
  await send(signEnvelope({ version: base + 5, config: { phoneId: 'somebody-else' } }, key, 'ops-1'));
  t.like(await resultFor(base + 5), { ok: false, error: 'phoneId: cannot be changed remotely' });
  t.is(agent.child.exitCode, null, 'still running');

  // Rolled back: pointers that lead nowhere.
  const nowhere = [{ id: 'cm-x', broker: 'mqtt://127.0.0.1:9', services: 'http://127.0.0.1:9/services' }];
  await send(signEnvelope({ version: base + 6, config: { pointers: nowhere } }, key, 'ops-1'));
  const rolled = await resultFor(base + 6);
  t.like(rolled, { ok: false, rolledBack: true });
  t.regex(String(rolled.error), /could not home within 4 s/);
  await c.waitHome('p-cfg', 'cm-a', 20_000);

  // Kept across a restart: the applied change (version base+1 … consumed up to base+6) and the home.
  agent.signal('SIGTERM');
  t.is(await agent.exited, 0);
  const again = c.startAgent('p-cfg', cfgPath);
  await waitFor(() => c.status('p-cfg')?.online === true && c.status('p-cfg')?.state === 'homed', { timeoutMs: 15_000, what: 'restarted and homed' });
  t.is(c.status('p-cfg')?.configVersion, base + 6);
  t.is(c.status('p-cfg')?.home, 'cm-a');
  t.notRegex(again.output(), /does not fit the config file/);
});
