/**
 * End to end: a fleet whose phones run on worker threads (WorkerFleet, and
 * `ipphone-fleet --workers`), against a real mosquitto and two call managers
 * run as child processes; kill -9 of the phones' call manager. Observed
 * through the retained statuses and events on the broker (what the phones
 * themselves published), and through the main thread's summary, which it
 * knows only from the workers' messages.
 */
import test from 'ava';
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { loadFleetConfigFile } from '../../src/fleet/config.js';
import { isIpphoneError } from '../../src/lib/errors.js';
import { WorkerFleet } from '../../src/fleet/workers.js';
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


test.serial('a fleet on 2 worker threads homes its 40 phones, fails them over on kill -9 of their call manager, and stops: every phone offline, every thread gone', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const config = loadFleetConfigFile(c.agentConfig('ignored-by-the-fleet'));
  const stateDir = join(c.dir, 'fleet');
  const rehomed: Array<{ phone: string; to: unknown; at: number }> = [];
  const fleet = new WorkerFleet({
    config,
    count: 40,
    workers: 2,
    stateDir,
    batchSize: 10,
    log: pino({ level: 'error' }),
    phoneLog: { level: 'error', fd: 2 },
    trace: ['rehomed'],
    onEvent: (phone, e, at) => rehomed.push({ phone, to: e.to, at }),
  });
  t.teardown(() => fleet.stop());
  t.is(fleet.workerCount, 2);
  await fleet.start();
  const ids = fleet.ids();
  t.is(ids.length, 40);
  t.is(ids[39], 'sim-40');

  await waitFor(() => fleet.summary().byHome['cm-a'] === 40 && homedOn(c, ids, 'cm-a') === 40, {
    timeoutMs: 30_000,
    what: `40 phones homed on cm-a: ${JSON.stringify(fleet.summary())}`,
  });
  t.like(fleet.summary(), { count: 40, homed: 40, noService: 0, byHome: { 'cm-a': 40 } });
  for (let n = 1; n <= 40; n++) t.is(fleet.home(n), 'cm-a', `sim-${n}`);
  // Each phone its own flash, wherever its thread: the call manager's list was saved per phone.
  await waitFor(() => ids.every((id) => existsSync(join(stateDir, id)) && readdirSync(join(stateDir, id)).some((f) => f.startsWith('agent-state.'))), {
    timeoutMs: 10_000,
    what: 'a state slot per phone',
  });

  // Hook switches by message: sim-1 is on worker 0, sim-2 on worker 1.
  fleet.setBusy('sim-1', true);
  fleet.setBusy('sim-2', true);
  t.throws(() => fleet.setBusy('sim-41', true), { message: /no phone "sim-41"/ });
  await waitFor(() => c.status('sim-1')?.busy === true && c.status('sim-2')?.busy === true && fleet.summary().busy === 2, { timeoutMs: 10_000, what: 'busy statuses' });

  c.cms.get('cm-a')!.signal('SIGKILL');
  const killedAt = Date.now();
  await waitFor(() => fleet.summary().byHome['cm-b'] === 40 && homedOn(c, ids, 'cm-b') === 40, {
    timeoutMs: 60_000,
    what: `40 phones homed on cm-b: ${JSON.stringify(fleet.summary())}`,
  });
  const s = fleet.summary();
  t.like(s, { count: 40, homed: 40, noService: 0, byHome: { 'cm-b': 40 }, busy: 2 });
  t.true(s.rehomes >= 40, `rehomes ${s.rehomes}`);
  for (let n = 1; n <= 40; n++) t.is(fleet.home(n), 'cm-b', `sim-${n}`);
  for (const id of ids) t.true(c.events(id, 'rehomed').some((e) => e.payload.from === 'cm-a' && e.payload.to === 'cm-b'), id);
  // The trace: every phone's own rehomed event to cm-b, stamped in its worker after the kill.
  await waitFor(() => new Set(rehomed.filter((r) => r.to === 'cm-b').map((r) => r.phone)).size === 40, { timeoutMs: 10_000, what: `40 traced rehomed events: ${rehomed.length}` });
  t.true(rehomed.filter((r) => r.to === 'cm-b').every((r) => r.at >= killedAt - 50));

  t.is(fleet.threads, 2);
  await fleet.stop();
  t.is(fleet.threads, 0);
  await fleet.stop(); // idempotent
  await waitFor(() => ids.every((id) => c.status(id)?.online === false), { timeoutMs: 10_000, what: 'offline statuses' });
  t.like(fleet.summary(), { count: 40, busy: 2 });
});

test.serial('a process running a 2-worker fleet exits by itself once the fleet has stopped (no thread or handle left)', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  await fleetExitsAfterStop(t, c, { kind: 'WorkerFleet', count: 6, extra: "workers: 2, phoneLog: { level: 'error', fd: 2 }", name: 'fleet-workers-handles' });
});

test.serial('ipphone-fleet --workers 2 --count 6 --busy 3: homed, summaries over both threads, exits 0 on SIGTERM with every phone offline', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const cfg = c.agentConfig('ignored', { log: { level: 'warn' } });
  const p = c.startFleet('fleet-workers-cli', ['--config', cfg, '--count', '6', '--workers', '2', '--state-dir', join(c.dir, 'cli'), '--busy', '3', '--summary-ms', '500']);
  const ids = ['sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5', 'sim-6'];
  await waitFor(() => homedOn(c, ids, 'cm-a') === 6, { timeoutMs: 20_000, what: `CLI phones homed\n${p.output()}` });
  t.deepEqual(
    ids.map((id) => c.status(id)?.busy),
    [true, true, true, false, false, false],
  );
  const summaries = (): Record<string, unknown>[] =>
    p
      .output()
      .split('\n')
      .filter((l) => l.includes('"msg":"fleet"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
  await waitFor(() => summaries().some((s) => s.homed === 6), { timeoutMs: 5_000, what: `a summary with homed 6\n${p.output()}` });
  t.like(summaries().find((s) => s.homed === 6), { count: 6, homed: 6, noService: 0, byHome: { 'cm-a': 6 }, busy: 3 });
  p.signal('SIGTERM');
  t.is(await p.exited, 0, p.output());
  await waitFor(() => ids.every((id) => c.status(id)?.online === false), { timeoutMs: 5_000, what: 'offline statuses' });
  t.like(summaries().at(-1), { count: 6, busy: 3 });
  for (const id of ids) t.true(existsSync(join(c.dir, 'cli', id)), id);
});

test.serial('ipphone-fleet --workers 2: the workers\' last log lines reach stdout before the process exits (each worker logs "fleet stopped" for its phones)', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const cfg = c.agentConfig('ignored', { log: { level: 'info' } });
  const p = c.startFleet('fleet-workers-logs', ['--config', cfg, '--count', '6', '--workers', '2', '--state-dir', join(c.dir, 'cli')]);
  const ids = ['sim-1', 'sim-2', 'sim-3', 'sim-4', 'sim-5', 'sim-6'];
  await waitFor(() => homedOn(c, ids, 'cm-a') === 6, { timeoutMs: 20_000, what: `CLI phones homed\n${p.output()}` });
  p.signal('SIGTERM');
  t.is(await p.exited, 0, p.output());
  const lines = p
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
  // Phones' lines carry the fleet's binding, as the main thread's do.
  t.true(lines.some((l) => l.phone === 'sim-6' && l.fleet === 'sim-'));
  t.deepEqual(
    lines.filter((l) => l.msg === 'fleet stopped' && l.mod === 'fleet' && l.count === 3).length,
    2,
    p.output().slice(-3000),
  );
});

test.serial('a phone that cannot start in a worker (its state dir under a regular file) → start rejects with that phone\'s STORE_IO, code kept across the thread, and every worker is stopped', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const config = loadFleetConfigFile(c.agentConfig('ignored'));
  writeFileSync(join(c.dir, 'blocker'), 'x');
  const fleet = new WorkerFleet({ config, count: 4, workers: 2, stateDir: join(c.dir, 'blocker'), log: pino({ level: 'silent' }), phoneLog: { level: 'silent', fd: 2 } });
  t.teardown(() => fleet.stop());
  const err = await t.throwsAsync(fleet.start());
  t.true(isIpphoneError(err, 'STORE_IO'), String(err));
  // stop() already ran inside start(): the same promise, resolved.
  await fleet.stop();
  t.true(isIpphoneError(await t.throwsAsync(fleet.start()), 'USAGE'));
});

test.serial('stop() while the workers are starting: start() returns, every thread ends; stop() first: start() starts none', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const config = loadFleetConfigFile(c.agentConfig('ignored'));
  const fleet = new WorkerFleet({ config, count: 400, workers: 2, batchSize: 10, stateDir: join(c.dir, 'fleet'), log: pino({ level: 'silent' }), phoneLog: { level: 'silent', fd: 2 } });
  const starting = fleet.start();
  await waitFor(() => fleet.summary().count > 0, { timeoutMs: 30_000, what: 'the first phones built' });
  t.is(fleet.threads, 2);
  await fleet.stop();
  await starting;
  t.is(fleet.threads, 0);
  t.true(fleet.summary().count < 400, `built ${fleet.summary().count} of 400 before the stop`);
  const early = new WorkerFleet({ config, count: 4, workers: 2, log: pino({ level: 'silent' }), phoneLog: { level: 'silent', fd: 2 } });
  await early.stop();
  await early.start();
  t.is(early.threads, 0, 'no thread started after stop()');
  t.is(early.summary().count, 0);
});

test.serial('a bad worker count is USAGE before any thread starts', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  const config = loadFleetConfigFile(c.agentConfig('ignored'));
  const fleet = new WorkerFleet({ config, count: 4, workers: 0, log: pino({ level: 'silent' }) });
  const err = await t.throwsAsync(fleet.start());
  t.true(isIpphoneError(err, 'USAGE'), String(err));
  t.regex(err!.message, /workers must be an integer from 1 to 64 \(got 0\)/);
  await fleet.stop();
});
