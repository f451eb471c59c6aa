/**
 * The Fleet's lifecycle and bookkeeping with a fake clock and a broker that
 * refuses connections (port 1): nothing can home, so every assertion holds
 * whatever the sockets do.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { FakeClock, seededRandom } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { Fleet, type FleetOptions } from '../../../src/fleet/fleet.js';

function setup(t: { teardown: (fn: () => void | Promise<void>) => void }, over: Partial<FleetOptions> = {}): { fleet: Fleet; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-fleet-unit-'));
  const r = validateAgentConfig({
    phoneId: 'ignored',
    stateDir: join(dir, 'from-config'),
    pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1', services: 'http://127.0.0.1:1/services' }],
    trust: { requireSigned: false },
  });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  const config: AgentConfig = r.config;
  const fleet = new Fleet({ config, count: 5, log: silentLogger(), clock: new FakeClock(), random: seededRandom(7), fetch: () => new Promise(() => {}), ...over });
  t.teardown(async () => {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fleet, dir };
}

test('the constructor builds nothing; start builds {prefix}1 … {prefix}N in batches', async (t) => {
  const { fleet } = setup(t, { prefix: 'lab-', batchSize: 2 });
  t.deepEqual(fleet.phones(), []);
  t.is(fleet.summary().count, 0);
  await fleet.start();
  t.deepEqual(
    fleet.phones().map((p) => p.id),
    ['lab-1', 'lab-2', 'lab-3', 'lab-4', 'lab-5'],
  );
  t.deepEqual(fleet.summary(), { count: 5, homed: 0, byHome: {}, noService: 5, rehomes: 0, busy: 0 });
  for (const p of fleet.phones()) t.is(p.agent.home, null);
});

test('busy: phones 1 … busy start off-hook and the agents know it; setBusy moves one hook', async (t) => {
  const { fleet } = setup(t, { busy: 2 });
  await fleet.start();
  t.deepEqual(
    fleet.phones().map((p) => p.agent.state.busy),
    [true, true, false, false, false],
  );
  t.is(fleet.summary().busy, 2);
  fleet.setBusy('sim-4', true);
  t.true(fleet.phones()[3]!.agent.state.busy);
  fleet.setBusy('sim-1', false);
  t.false(fleet.phones()[0]!.agent.state.busy);
  t.is(fleet.summary().busy, 2);
  const err = t.throws(() => fleet.setBusy('sim-6', true));
  t.true(isIpphoneError(err, 'USAGE'));
});

test('start twice, a bad count or a bad busy → USAGE', async (t) => {
  const { fleet } = setup(t);
  await fleet.start();
  t.true(isIpphoneError(await t.throwsAsync(fleet.start()), 'USAGE'));
  const bad = setup(t, { count: 0 });
  t.true(isIpphoneError(await t.throwsAsync(bad.fleet.start()), 'USAGE'));
  const busy = setup(t, { count: 2, busy: 3 });
  t.true(isIpphoneError(await t.throwsAsync(busy.fleet.start()), 'USAGE'));
  t.deepEqual(busy.fleet.phones(), []);
});

test('stop is idempotent and returns the same promise', async (t) => {
  const { fleet } = setup(t);
  await fleet.start();
  const a = fleet.stop();
  t.is(fleet.stop(), a);
  await a;
  t.is(fleet.summary().count, 5);
});

test('a phone whose state dir is unusable → start rejects with its STORE_IO; no further batch is built', async (t) => {
  const { dir } = setup(t);
  // Every phone's state dir would be under a regular file.
  writeFileSync(join(dir, 'blocker'), 'x');
  const broken = setup(t, { stateDir: join(dir, 'blocker'), count: 3, batchSize: 1 });
  const err = await t.throwsAsync(broken.fleet.start());
  t.true(isIpphoneError(err, 'STORE_IO'), String(err));
  t.deepEqual(
    broken.fleet.phones().map((p) => p.id),
    ['sim-1'],
  );
});
