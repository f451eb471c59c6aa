/**
 * The chaos run's link proxy (scripts/chaos/proxy.ts) under TLS: it stays a
 * byte pipe, learns who connects from the client certificate's CN in the TLS
 * 1.2 handshake (the CONNECT is encrypted; the chaos run's programs speak 1.2), counts the attempt under that CN
 * (the broker's client id under `use_username_as_clientid`) and cuts the link
 * of that host. A proxy that could not tell hosts apart under TLS would cut
 * nothing, and the chaos run would judge faults that never happened.
 */
import test from 'ava';
import { connect, type MqttClient } from 'mqtt';
import { LinkProxy } from '../../scripts/chaos/proxy.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';

let pki: Pki;
let broker: Mosquitto;

test.before(async () => {
  pki = await makePki();
  broker = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key } });
});

test.after.always(async () => {
  await broker?.stop();
  pki?.remove();
});

async function through(proxy: LinkProxy, cn: string): Promise<MqttClient> {
  // mqtt.js hands its options to tls.connect: TLS 1.2, as the chaos run's programs speak.
  const tls12 = { maxVersion: 'TLSv1.2' } as object;
  const c = connect(`mqtts://127.0.0.1:${proxy.port}`, { ...(await pki.clientTls(cn)), ...tls12, reconnectPeriod: 0, connectTimeout: 10_000 });
  c.on('error', () => undefined);
  return c;
}

test('chaos proxy under TLS: an attempt is counted under its certificate CN, and a partition of that CN\'s host resets its connection while another host\'s stays', async (t) => {
  const proxy = new LinkProxy('A', broker.port, (id) => (id.startsWith('ph-') ? 'fleet' : id));
  await proxy.listen(await freePort());
  t.teardown(() => proxy.close());
  const phone = await through(proxy, 'ph-7');
  const cm = await through(proxy, 'cm-a');
  t.teardown(() => Promise.all([phone.endAsync(true), cm.endAsync(true)]).then(() => undefined));
  await waitFor(() => phone.connected && cm.connected, { timeoutMs: 20_000, what: 'both connected through the proxy' });
  t.deepEqual([...proxy.attempts.keys()].sort(), ['cm-a', 'ph-7']);
  // The pipe carries MQTT: a round trip through the broker.
  await cm.subscribeAsync('x/#');
  const got = new Promise<string>((done) => cm.once('message', (_t, p) => done(p.toString())));
  await phone.publishAsync('x/1', 'through');
  t.is(await got, 'through');

  const closed = new Promise<void>((done) => phone.once('close', () => done()));
  proxy.set('fleet', 'partition');
  await closed;
  t.false(phone.connected);
  t.true(cm.connected, 'the other host keeps its link');
  // A new attempt of the cut host is reset in the handshake, and counted.
  const again = await through(proxy, 'ph-7');
  t.teardown(() => again.endAsync(true).then(() => undefined));
  await new Promise<void>((done) => again.once('close', () => done()));
  t.false(again.connected);
  t.is(proxy.attempts.get('ph-7')?.length, 2);
});
