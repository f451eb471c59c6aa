/**
 * One broker written two ways in a group (issue 15 §5): a call manager whose
 * own broker is `mqtts://localhost:PORT` and whose peer cm-b is on
 * `mqtts://127.0.0.1:PORT` — one mosquitto in the production shape (TLS,
 * client certificates, the CN as user name and client id, the printed ACL).
 * Taken for two brokers, cm-a opened a peer link to its own broker with its
 * own certificate: the broker closed cm-a's session for the link ("already
 * connected") and published cm-a's genuine will while it lived. Judged by a
 * separate subscriber on cm-a's state topic and mosquitto's own log.
 */
import test from 'ava';
import { connect, type MqttClient } from 'mqtt';
import { readFileSync } from 'node:fs';
import { aclFile } from '../../src/admin/acl.js';
import { Cluster, OBSERVER_CN } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { makePki } from '../helpers/pki.js';

test('one broker written as localhost and as 127.0.0.1: the call manager links no second session to its own broker, and its will is never published while it lives', async (t) => {
  t.timeout(120_000);
  const pki = await makePki();
  t.teardown(() => pki.remove());
  const c = new Cluster({ tls: pki });
  t.teardown(() => c.close());
  const acl = pki.writeFile('acl', aclFile({ prefix: c.prefix, callManagers: ['cm-a', 'cm-b'], operators: [OBSERVER_CN] }));
  const log: string[] = [];
  const mosq = await startMosquitto({
    tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, aclFile: acl },
    onLog: (line) => log.push(line),
  });
  t.teardown(() => mosq.stop());
  // The server certificate names both (SAN DNS:localhost, IP:127.0.0.1): both spellings pass TLS.
  await c.defineGroup([
    { id: 'cm-a', broker: `mqtts://localhost:${mosq.port}` },
    { id: 'cm-b', broker: `mqtts://127.0.0.1:${mosq.port}` },
  ]);

  // A separate subscriber, the operator's identity: every state cm-a's topic carries.
  const files = await c.identity(OBSERVER_CN);
  const watcher: MqttClient = connect(mosq.url, { ca: readFileSync(files.ca), cert: readFileSync(files.cert), key: readFileSync(files.key), clientId: OBSERVER_CN, reconnectPeriod: 500 });
  t.teardown(() => void watcher.end(true));
  const states: boolean[] = [];
  watcher.on('message', (_topic, payload) => {
    if (payload.length > 0) states.push((JSON.parse(payload.toString()) as { online: boolean }).online);
  });
  await new Promise<void>((done, fail) => {
    watcher.once('connect', () => watcher.subscribe(`${c.prefix}/cm/cm-a/state`, { qos: 1 }, (err) => (err ? fail(err) : done())));
    watcher.once('error', fail);
  });

  const cm = await c.startCm('cm-a');
  await waitFor(() => states.includes(true), { timeoutMs: 30_000, what: `cm-a online; ${cm.output().slice(-2000)}` });
  const takeovers = (): string[] => log.filter((l) => /already connected/.test(l));
  // The link, were it opened, connects within a second of the start (reconnectPeriod 1 s) and takes
  // the session over at once; 10 s of watching covers several rounds of that fight.
  const harm = await waitFor(() => states.includes(false) || takeovers().length > 0, { timeoutMs: 10_000, what: 'a takeover or an offline' }).then(
    () => true,
    () => false,
  );
  t.log(`states seen on cm-a's topic: ${JSON.stringify(states)}; takeovers in mosquitto's log: ${takeovers().length}`);
  t.false(harm, `cm-a was announced offline while it lived, or its session was taken over:\n${takeovers().join('\n')}\n${cm.output().slice(-3000)}`);
  t.deepEqual(takeovers(), []);
  t.false(states.includes(false), 'no offline (its will) while cm-a lives');
  t.regex(cm.output(), /peers on this call manager's own broker: no link to it/);
  t.notRegex(cm.output(), /peer broker linked/);
});
