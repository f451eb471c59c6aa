/**
 * End to end: a fleet of in-process phones (the real agent core, one MQTT
 * connection each) against a real mosquitto and two call managers run as
 * child processes; the CLI as a child process too. Observed through
 * `Fleet.summary()` and the retained statuses on the broker.
 */
import test from 'ava';
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { Fleet } from '../../src/fleet/fleet.js';
import { loadFleetConfigFile } from '../../src/fleet/config.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { fleetExitsAfterStop, homedOn } from '../helpers/fleet-tests.js';
import { waitFor } from '../helpers/net.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

test.serial('50 phones home on cm-a, each with its own state slots; kill -9 of cm-a → all 50 on cm-b; stop → all offline', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const config = loadFleetConfigFile(c.agentConfig('ignored-by-the-fleet'));
  const stateDir = join(c.dir, 'fleet');
  const fleet = new Fleet({ config, count: 50, stateDir, log: pino({ level: 'error' }), batchSize: 20 });
  t.teardown(() => fleet.stop());
  const startedAt = Date.now();
  await fleet.start();
  const ids = fleet.phones().map((p) => p.id);
  t.is(ids.length, 50);
  t.is(ids[49], 'sim-50');

  await waitFor(() => fleet.summary().byHome['cm-a'] === 50 && homedOn(c, ids, 'cm-a') === 50, {
    timeoutMs: 30_000,
    what: `50 phones homed on cm-a: ${JSON.stringify(fleet.summary())}`,
  });
  t.log(`50 phones homed on cm-a ${Date.now() - startedAt} ms after start()`);
  t.like(fleet.summary(), { count: 50, homed: 50, noService: 0, byHome: { 'cm-a': 50 } });
  // The call manager's list (version ≥ 1) came with the first acks and was saved, per phone.
  await Promise.all(fleet.phones().map((p) => p.agent.flushed()));
  for (const id of ids) {
    const files = readdirSync(join(stateDir, id));
    t.true(files.some((f) => f.startsWith('agent-state.')), `${id}: ${files.join(',')}`);
  }
  t.false(existsSync(join(config.stateDir, 'sim-1')), 'the config stateDir is not used when --state-dir is given');

  // Five busy phones: a failure move does not wait for the handset.
  for (const id of ids.slice(0, 5)) fleet.setBusy(id, true);
  await waitFor(() => ids.slice(0, 5).every((id) => c.status(id)?.busy === true), { timeoutMs: 10_000, what: 'busy statuses' });

  const killedAt = Date.now();
  c.cms.get('cm-a')!.signal('SIGKILL');
  await waitFor(() => fleet.summary().byHome['cm-b'] === 50 && homedOn(c, ids, 'cm-b') === 50, {
    timeoutMs: 30_000,
    what: `50 phones homed on cm-b: ${JSON.stringify(fleet.summary())}`,
  });
  const tookMs = Date.now() - killedAt;
  t.log(`all 50 phones rehomed on cm-b ${tookMs} ms after kill -9 of cm-a`);
  t.true(tookMs < 30_000);
  const s = fleet.summary();
  t.like(s, { homed: 50, noService: 0, byHome: { 'cm-b': 50 }, busy: 5 });
  t.true(s.rehomes >= 50, `rehomes ${s.rehomes}`);
  for (const id of ids) t.true(c.events(id, 'rehomed').some((e) => e.payload.from === 'cm-a' && e.payload.to === 'cm-b'), id);

  await fleet.stop();
  await waitFor(() => ids.every((id) => c.status(id)?.online === false), { timeoutMs: 10_000, what: 'offline statuses' });
  t.pass();
});

test.serial('stop() leaves no open handles: a process running a fleet exits by itself once it has stopped', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  await fleetExitsAfterStop(t, c, { kind: 'Fleet', count: 5, name: 'fleet-handles' });
});

test.serial('ipphone-fleet --count 5 --busy 2: homed, prints summaries, exits 0 on SIGTERM', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const cfg = c.agentConfig('ignored', { log: { level: 'warn' } });
  const p = c.startFleet('fleet-cli', ['--config', cfg, '--count', '5', '--state-dir', join(c.dir, 'cli'), '--busy', '2', '--summary-ms', '500']);
  const ids = ['sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5'];
  await waitFor(() => homedOn(c, ids, 'cm-a') === 5, { timeoutMs: 20_000, what: `CLI phones homed\n${p.output()}` });
  t.true(c.status('sim-1')?.busy === true && c.status('sim-2')?.busy === true && c.status('sim-3')?.busy === false);
  const summaries = (): Record<string, unknown>[] =>
    p
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"fleet"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => summaries().some((s) => s.homed === 5), { timeoutMs: 5_000, what: `a summary with homed 5\n${p.output()}` });
  t.like(summaries().find((s) => s.homed === 5), { count: 5, homed: 5, noService: 0, byHome: { 'cm-a': 5 }, busy: 2 });
  p.signal('SIGTERM');
  t.is(await p.exited, 0, p.output());
  await waitFor(() => ids.every((id) => c.status(id)?.online === false), { timeoutMs: 5_000, what: 'offline statuses' });
  t.true(existsSync(join(c.dir, 'cli', 'sim-5')));
});
