import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { loadFleetConfigFile } from '../../../src/fleet/config.js';
import { main, parseFleetArgs } from '../../../src/fleet/main.js';
import { assertFleetShape, fleetPhoneConfig, fleetPhoneId, fleetProblems } from '../../../src/fleet/phones.js';

function baseConfig(): AgentConfig {
  const r = validateAgentConfig({
    phoneId: 'from-file',
    stateDir: '/var/lib/x',
    pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' }],
  });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  return r.config;
}

test('phone ids are {prefix}1 … {prefix}N', (t) => {
  t.is(fleetPhoneId('sim-', 1), 'sim-1');
  t.is(fleetPhoneId('', 2000), '2000');
  t.deepEqual(fleetProblems(2000, 'sim-'), []);
  t.deepEqual(fleetProblems(5, ''), []);
});

test('each phone gets its own id and a state dir under the fleet state dir (or the config one)', (t) => {
  const base = baseConfig();
  const c7 = fleetPhoneConfig(base, 'sim-', 7);
  t.is(c7.phoneId, 'sim-7');
  t.is(c7.stateDir, join('/var/lib/x', 'sim-7'));
  const o = fleetPhoneConfig(base, 'lab.', 12, '/tmp/fleet');
  t.is(o.phoneId, 'lab.12');
  t.is(o.stateDir, join('/tmp/fleet', 'lab.12'));
  // The base is untouched; the rest is shared, not copied.
  t.is(base.phoneId, 'from-file');
  t.is(base.stateDir, '/var/lib/x');
  t.is(o.pointers, base.pointers);
  t.is(o.keepalive, base.keepalive);
});

test('with a cert dir each phone connects with its own certificate (its CN the phone id, as the printed ACL expects), the rest of mqtt kept', (t) => {
  const base = baseConfig();
  const c3 = fleetPhoneConfig(base, 'ph-', 3, '/tmp/fleet', '/etc/pki/fleet');
  t.is(c3.mqtt.cert, join('/etc/pki/fleet', 'ph-3.crt'));
  t.is(c3.mqtt.key, join('/etc/pki/fleet', 'ph-3.key'));
  t.is(c3.mqtt.connectTimeoutMs, base.mqtt.connectTimeoutMs);
  t.not(fleetPhoneConfig(base, 'ph-', 4, '/tmp/fleet', '/etc/pki/fleet').mqtt.cert, c3.mqtt.cert);
  // The base's mqtt section is not written through.
  t.is(base.mqtt.cert, fleetPhoneConfig(base, 'ph-', 3).mqtt.cert);
  t.not(base.mqtt.cert, c3.mqtt.cert);
  t.true(parseFleetArgs(['--config', 'f.json', '--count', '2', '--cert-dir', '/etc/pki/fleet']).certDir === '/etc/pki/fleet');
});

test('assertFleetShape throws USAGE with every problem', (t) => {
  const err = t.throws(() => assertFleetShape(0, 'a/b'));
  t.true(isIpphoneError(err, 'USAGE'));
  t.is((err as { context?: { problems?: unknown[] } }).context?.problems?.length, 2);
});

function tempDir(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-fleet-unit-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const pointers = [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' }];

test('the config file phoneId is ignored: absent or invalid, it still loads', (t) => {
  const dir = tempDir(t);
  const none = join(dir, 'none.json');
  writeFileSync(none, JSON.stringify({ pointers }));
  t.deepEqual(loadFleetConfigFile(none).pointers, pointers);
  const bad = join(dir, 'bad.json');
  writeFileSync(bad, JSON.stringify({ phoneId: 'no/slashes', pointers, keepalive: { intervalMs: 1000 } }));
  t.is(loadFleetConfigFile(bad).keepalive.intervalMs, 1000);
});

test('every other config problem is reported, one per line', (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ pointers: [{ id: 'cm-a', broker: 'http://x', services: 'http://y' }], keepalive: { intervalMs: 5 }, tpyo: 1 }));
  const err = t.throws(() => loadFleetConfigFile(file));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  const problems = (err as unknown as { context: { problems: string[] } }).context.problems;
  t.true(problems.length >= 3, problems.join('\n'));
  t.true(problems.some((p) => p.startsWith('pointers/0/broker')));
  t.true(problems.some((p) => p.startsWith('keepalive/intervalMs')));
  t.true(problems.some((p) => p.includes('tpyo')));
});

function capture(): { io: { stdout: (s: string) => void; stderr: (s: string) => void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (s) => void out.push(s), stderr: (s) => void err.push(s) }, out, err };
}

test('main: --help → 0 with the usage on stdout', async (t) => {
  const c = capture();
  t.is(await main(['--help'], c.io), 0);
  t.regex(c.out.join(''), /ipphone-fleet --config FILE --count N/);
  t.deepEqual(c.err, []);
});

test('main: bad arguments → 2 with the reason and the usage on stderr', async (t) => {
  const c = capture();
  t.is(await main(['--config', 'x.json'], c.io), 2);
  t.regex(c.err.join(''), /^ipphone-fleet: --count N is required\nUsage:/);
});

test('main: bad config → 1 with one line per problem on stderr, nothing started', async (t) => {
  const dir = tempDir(t);
  const file = join(dir, 'c.json');
  writeFileSync(file, JSON.stringify({ pointers: [], log: { level: 'loud' } }));
  const c = capture();
  t.is(await main(['--config', file, '--count', '3'], c.io), 1);
  const lines = c.err.join('').trimEnd().split('\n');
  t.true(lines.length >= 2, lines.join('\n'));
  for (const l of lines) t.true(l.startsWith(`${file}: `), l);
  t.deepEqual(c.out, []);
});

test('main: unreadable config → 1', async (t) => {
  const c = capture();
  t.is(await main(['--config', '/nonexistent/fleet.json', '--count', '3'], c.io), 1);
  t.regex(c.err.join(''), /cannot read/);
});
