/**
 * A Fleet over one worker's slice of the phones (FleetOptions.numbers), with a
 * fake clock and a broker that refuses connections (port 1): ids, state dirs
 * and busy phones are the whole fleet's, only the slice is built.
 */
import test from 'ava';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateAgentConfig } from '../../../src/config/agent-config.js';
import { FakeClock, seededRandom } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { Fleet, type FleetOptions, type FleetPhone } from '../../../src/fleet/fleet.js';
import { fleetSlices } from '../../../src/fleet/split.js';

function setup(t: { teardown: (fn: () => void | Promise<void>) => void }, over: Partial<FleetOptions>): { fleet: Fleet; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-fleet-slice-'));
  const r = validateAgentConfig({
    phoneId: 'ignored',
    stateDir: join(dir, 'state'),
    pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1', services: 'http://127.0.0.1:1/services' }],
    trust: { requireSigned: false },
  });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  const fleet = new Fleet({ config: r.config, count: 7, log: silentLogger(), clock: new FakeClock(), random: seededRandom(3), fetch: () => new Promise(() => {}), ...over });
  t.teardown(async () => {
    await fleet.stop();
    rmSync(dir, { recursive: true, force: true });
  });
  return { fleet, dir };
}

test('a fleet over a slice builds only its phones, in slice order, with the whole fleet ids and state dirs', async (t) => {
  const built: string[] = [];
  const { fleet, dir } = setup(t, { numbers: fleetSlices(7, 3)[0], batchSize: 2, onBuilt: (p: FleetPhone) => built.push(p.id) });
  await fleet.start();
  t.deepEqual(
    fleet.phones().map((p) => p.id),
    ['sim-1', 'sim-4', 'sim-7'],
  );
  t.deepEqual(built, ['sim-1', 'sim-4', 'sim-7']);
  t.is(fleet.summary().count, 3);
  t.deepEqual(
    fleet.phones().map((p) => (p.agent as unknown as { d: { config: { stateDir: string } } }).d.config.stateDir),
    ['sim-1', 'sim-4', 'sim-7'].map((id) => join(dir, 'state', id)),
  );
});

test('busy is the whole fleet\'s phones 1 … busy: a slice holds those of its own numbers', async (t) => {
  const { fleet } = setup(t, { numbers: fleetSlices(7, 2)[1], busy: 4 });
  await fleet.start();
  t.deepEqual(
    fleet.phones().map((p) => [p.id, p.agent.state.busy]),
    [
      ['sim-2', true],
      ['sim-4', true],
      ['sim-6', false],
    ],
  );
  t.is(fleet.summary().busy, 2);
});

test('a slice that does not ascend within 1 … count → USAGE, nothing built', async (t) => {
  const { fleet } = setup(t, { numbers: [2, 9] });
  t.true(isIpphoneError(await t.throwsAsync(fleet.start()), 'USAGE'));
  t.deepEqual(fleet.phones(), []);
});
