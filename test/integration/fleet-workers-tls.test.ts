/**
 * A fleet on worker threads over TLS: each worker opens its phones' mqtts:
 * connections with the config's certificate files itself (read in the
 * worker), against a real mosquitto requiring client certificates made with
 * openssl (test/helpers/pki.ts) and two call managers over TLS.
 */
import test from 'ava';
import { join } from 'node:path';
import { pino } from 'pino';
import { WorkerFleet } from '../../src/fleet/workers.js';
import { sharedCertGroup } from '../helpers/fleet-tests.js';
import { waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';

let pki: Pki;
test.before(async () => {
  pki = await makePki();
});
test.after.always(() => pki?.remove());

test.serial('TLS: 20 phones on 2 worker threads sharing one client certificate home over mqtts, fail over on kill -9, and stop with every thread gone', async (t) => {
  const { m, c, config } = await sharedCertGroup(t, pki);
  t.true(config.mqtt.ca === pki.ca.cert && m.url.startsWith('mqtts:'), m.url);
  const fleet = new WorkerFleet({ config, count: 20, workers: 2, stateDir: join(c.dir, 'fleet'), batchSize: 10, log: pino({ level: 'error' }), phoneLog: { level: 'error', fd: 2 } });
  t.teardown(() => fleet.stop());
  await fleet.start();
  const ids = fleet.ids();
  const homedOn = (cm: string): number => ids.filter((id) => c.status(id)?.home === cm && c.status(id)?.state === 'homed').length;
  await waitFor(() => homedOn('cm-a') === 20 && fleet.summary().byHome['cm-a'] === 20, { timeoutMs: 60_000, what: `20 phones on cm-a: ${JSON.stringify(fleet.summary())}` });
  c.cms.get('cm-a')!.signal('SIGKILL');
  await waitFor(() => homedOn('cm-b') === 20 && fleet.summary().byHome['cm-b'] === 20, { timeoutMs: 60_000, what: `20 phones on cm-b: ${JSON.stringify(fleet.summary())}` });
  for (const id of ids) t.true(c.events(id, 'rehomed').some((e) => e.payload.from === 'cm-a' && e.payload.to === 'cm-b' && e.payload.reason === 'cm-offline'), id);
  t.is(fleet.threads, 2);
  await fleet.stop();
  t.is(fleet.threads, 0);
  await waitFor(() => ids.every((id) => c.status(id)?.online === false), { timeoutMs: 10_000, what: 'offline statuses' });
});
