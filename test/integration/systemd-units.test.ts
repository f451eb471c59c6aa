/**
 * The shipped units, checked by the real systemd-analyze (Debian package
 * `systemd`; the test fails, never skips, without it).
 *
 * `verify` runs against a throw-away --root that holds the two units, an
 * executable /usr/bin/node stub and stub targets (sysinit, basic, ...): the
 * units name the device image's paths, not this machine's, so checking them
 * on the host would depend on where node happens to be installed (CI images
 * often have it in /usr/local/bin) and on which targets exist. Inside the root
 * verify must print nothing at all: every warning (unknown key, bad value,
 * missing executable) fails the test.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseAgentArgs } from '../../src/agent/main.js';
import { parseArgs as parseCmArgs } from '../../src/callmanager/main.js';
import { shippedUnit, unitNodeOptions } from '../helpers/unit-runtime.js';
import { DEFAULT_CM_STATE_DIR } from '../../src/config/cm-config.js';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const UNITS = ['ipphone-agent.service', 'ipphone-cm.service'] as const;
/** Measured with systemd 252 (systemd/README.md); the agent may not get worse than this + 0.1. */
const AGENT_EXPOSURE_MEASURED = 1.8;
const CM_EXPOSURE_MAX = 2.5;
const STUB_TARGETS = ['sysinit', 'basic', 'shutdown', 'network-online', 'time-sync', 'multi-user'];

function analyze(args: string[]): { status: number | null; out: string } {
  const r = spawnSync('systemd-analyze', args, { encoding: 'utf8', env: { ...process.env, SYSTEMD_COLORS: '0', SYSTEMD_PAGER: '', LC_ALL: 'C.UTF-8' }, timeout: 60_000 });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') {
    throw new Error('systemd-analyze is not installed: install the Debian package "systemd" (apt-get install systemd) to check the units');
  }
  return { status: r.status, out: `${r.stdout}${r.stderr}` };
}

/** A root with the given unit files, /usr/bin/node and stub targets. */
function makeRoot(t: { teardown(fn: () => void): void }, extra: Record<string, string> = {}): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'units-root-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  mkdirSync(path.join(dir, 'etc/systemd/system'), { recursive: true });
  mkdirSync(path.join(dir, 'usr/lib/systemd/system'), { recursive: true });
  mkdirSync(path.join(dir, 'usr/bin'), { recursive: true });
  for (const u of UNITS) copyFileSync(path.join(ROOT, 'systemd', u), path.join(dir, 'etc/systemd/system', u));
  for (const [name, text] of Object.entries(extra)) writeFileSync(path.join(dir, 'etc/systemd/system', name), text);
  writeFileSync(path.join(dir, 'usr/bin/node'), '#!/bin/sh\nexit 0\n');
  chmodSync(path.join(dir, 'usr/bin/node'), 0o755);
  for (const tg of STUB_TARGETS) writeFileSync(path.join(dir, `usr/lib/systemd/system/${tg}.target`), `[Unit]\nDescription=stub ${tg}\n`);
  return dir;
}

/** `Key=value` lines of a unit (comments dropped, repeated keys kept in order). */
function directives(unit: string): Array<[string, string]> {
  const out: Array<[string, string]> = [];
  for (const raw of readFileSync(path.join(ROOT, 'systemd', unit), 'utf8').split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';') || line.startsWith('[')) continue;
    const eq = line.indexOf('=');
    out.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  return out;
}
const all = (unit: string, key: string): string[] => directives(unit).filter(([k]) => k === key).map(([, v]) => v);
const one = (unit: string, key: string): string | undefined => all(unit, key).at(-1);

function exposure(unit: string): number {
  const { status, out } = analyze(['security', '--no-pager', '--offline=true', path.join(ROOT, 'systemd', unit)]);
  const m = /Overall exposure level for \S+: ([0-9]+\.[0-9]+)/.exec(out);
  if (status !== 0 || m === null) throw new Error(`systemd-analyze security ${unit} (exit ${status}):\n${out}`);
  return Number(m[1]);
}

test('systemd-analyze verify accepts both units without a single warning', (t) => {
  const root = makeRoot(t);
  const r = analyze(['verify', `--root=${root}`, ...UNITS]);
  t.is(r.out.trim(), '', r.out);
  t.is(r.status, 0);
});

test('the verify harness does catch broken units', (t) => {
  const broken = readFileSync(path.join(ROOT, 'systemd/ipphone-cm.service'), 'utf8')
    .replace('Restart=always', 'Restart=always\nNoSuchOption=1\nMemoryHigh=lots')
    .replace('ExecStart=/usr/bin/node ', 'ExecStart=/usr/bin/no-node ');
  const root = makeRoot(t, { 'broken.service': broken });
  const r = analyze(['verify', `--root=${root}`, 'broken.service']);
  t.regex(r.out, /Unknown key .*NoSuchOption/);
  t.regex(r.out, /lots/);
  t.regex(r.out, /no-node is not executable/);
  t.not(r.status, 0);
});

test(`exposure: call manager at most ${CM_EXPOSURE_MAX}, agent at most ${AGENT_EXPOSURE_MEASURED} + 0.1`, (t) => {
  const cm = exposure('ipphone-cm.service');
  const agent = exposure('ipphone-agent.service');
  t.log(`exposure: ipphone-cm ${cm}, ipphone-agent ${agent}`);
  t.true(cm <= CM_EXPOSURE_MAX, `ipphone-cm exposure ${cm}`);
  t.true(agent <= AGENT_EXPOSURE_MEASURED + 0.1 + 1e-9, `ipphone-agent exposure ${agent}`);
});

test('both units: notify with a watchdog, restarts forever, memory capped with a matching V8 heap', (t) => {
  for (const u of UNITS) {
    t.is(one(u, 'Type'), 'notify', u);
    // systemd-notify runs as our child: "main" would drop its messages (src/lib/sd-notify.ts).
    t.is(one(u, 'NotifyAccess'), 'all', u);
    t.is(one(u, 'WatchdogSec'), '30s', u);
    t.is(one(u, 'Restart'), 'always', u);
    t.is(one(u, 'RestartSec'), '1', u);
    t.is(one(u, 'StartLimitIntervalSec'), '0', u);
    t.deepEqual(all(u, 'RestartSteps'), [], `${u}: RestartSteps= needs systemd 254`);
    t.is(one(u, 'CapabilityBoundingSet'), '', u);
    t.is(one(u, 'AmbientCapabilities'), '', u);
    t.is(one(u, 'UMask'), '0077', u);
    t.is(one(u, 'DevicePolicy'), 'closed', u);
    t.is(one(u, 'RestrictAddressFamilies'), 'AF_UNIX AF_INET AF_INET6', u);
    // W^X and V8's JIT exclude each other: W^X exactly when node runs jitless.
    const jitless = unitNodeOptions(u).includes('--jitless');
    t.is(one(u, 'MemoryDenyWriteExecute') === 'yes', jitless, `${u}: MemoryDenyWriteExecute=yes needs (and --jitless allows) it`);
    const max = /^([0-9]+)M$/.exec(one(u, 'MemoryMax') ?? '');
    const heap = unitNodeOptions(u).map((e) => /^--max-old-space-size=([0-9]+)$/.exec(e)).find((m) => m !== null);
    t.truthy(max, `${u}: MemoryMax in MiB`);
    t.truthy(heap, `${u}: node --max-old-space-size`);
    const share = Number(heap![1]) / Number(max![1]);
    t.true(share >= 0.55 && share <= 0.65, `${u}: old space is ${(share * 100).toFixed(0)} % of MemoryMax`);
    // The whole V8 heap limit (old + young + code), as node computes it with these options.
    const limit = spawnSync(process.execPath, [...unitNodeOptions(u), '-p', 'require("v8").getHeapStatistics().heap_size_limit'], { encoding: 'utf8' });
    t.is(limit.status, 0, limit.stderr);
    // The one line V8 prints on Node 20/22 with --jitless (WebAssembly needs the JIT); nothing else.
    t.is(limit.stderr.replace(/^Warning: disabling flag --expose_wasm due to conflicting flags\n/, ''), '', `${u}: node prints no other warning with these options`);
    t.true(Number(limit.stdout) < Number(max![1]) * 1024 * 1024 * 0.8, `${u}: heap limit ${Math.round(Number(limit.stdout) / 1048576)} MiB leaves room under MemoryMax`);
  }
  t.is(unitNodeOptions('ipphone-agent.service').includes('--jitless'), true, 'the agent runs jitless (W^X, less memory)');
  t.is(one('ipphone-agent.service', 'MemoryMax'), '96M');
  t.is(one('ipphone-cm.service', 'MemoryMax'), '512M');
});

test('agent unit: fixed user and groups, state dir, serial ports, input devices (read only) and sysfs GPIO reachable', (t) => {
  const u = 'ipphone-agent.service';
  t.is(one(u, 'User'), 'ipphone');
  t.is(one(u, 'DynamicUser'), undefined);
  t.is(one(u, 'SupplementaryGroups'), 'dialout gpio input');
  t.is(one(u, 'StateDirectory'), 'ipphone-agent');
  // The evdev keypad and hook switch (major 13, "input"): read only.
  t.deepEqual(all(u, 'DeviceAllow'), ['char-ttyS rw', 'char-ttyAMA rw', 'char-ttyUSB rw', 'char-ttyACM rw', 'char-input r']);
  t.is(one(u, 'ReadWritePaths'), '/sys/class/gpio');
  // Both would break the tty and /sys/class/gpio/export (systemd/README.md).
  t.is(one(u, 'PrivateDevices'), undefined);
  t.is(one(u, 'ProtectKernelTunables'), undefined);
  const { argv } = shippedUnit(u).exec;
  const flags = unitNodeOptions(u);
  t.is(argv[0], '/usr/bin/node');
  t.is(argv[1 + flags.length], '/usr/lib/ipphone/ipphone-agent.mjs');
  const args = parseAgentArgs(argv.slice(2 + flags.length));
  t.deepEqual(args, { kind: 'run', config: '/etc/ipphone-agent/agent.json', board: '/etc/ipphone-agent/board.json', stateDir: '/var/lib/ipphone-agent' });
  t.is(args.stateDir, `/var/lib/${one(u, 'StateDirectory')}`, '--state-dir is the StateDirectory');
});

test('call manager unit: dynamic user, private devices, key through a credential', (t) => {
  const u = 'ipphone-cm.service';
  t.is(one(u, 'DynamicUser'), 'yes');
  t.is(one(u, 'PrivateDevices'), 'yes');
  t.is(one(u, 'ProtectKernelTunables'), 'yes');
  t.is(one(u, 'SupplementaryGroups'), undefined);
  // Every secret through a credential (DynamicUser= cannot own a file in /etc): the signing key
  // (required: no default, a missing key fails the start), the MQTT client key and password and the
  // console token (optional: a SetCredential= default of the same name keeps a missing file from failing it).
  t.deepEqual(all(u, 'LoadCredential'), [
    'signing-key.pem:/etc/ipphone-cm/signing-key.pem',
    'mqtt-client-key.pem:/etc/ipphone-cm/mqtt-client-key.pem',
    'mqtt-password:/etc/ipphone-cm/mqtt-password',
    'console.token:/etc/ipphone-cm/console.token',
  ]);
  t.deepEqual(all(u, 'SetCredential'), ['mqtt-client-key.pem:\\n', 'mqtt-password:\\n', 'console.token:\\n']);
  const { argv } = shippedUnit(u).exec;
  const flags = unitNodeOptions(u);
  t.deepEqual([argv[0], argv[1 + flags.length]], ['/usr/bin/node', '/usr/lib/ipphone/ipphone-cm.mjs']);
  t.deepEqual(parseCmArgs(argv.slice(2 + flags.length)), { kind: 'run', config: '/etc/ipphone-cm/cm.json' });
  // The boot sequence of the signed state lives in the config's default stateDir.
  t.is(`/var/lib/${one(u, 'StateDirectory')}`, DEFAULT_CM_STATE_DIR);
});
