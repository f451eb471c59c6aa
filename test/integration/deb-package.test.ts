/**
 * `npm run package` (issue 17, "Debian packages"; shared/CONTRACT.md): the
 * ipphone-agent and ipphone-cm .debs built from the staged image, checked as
 * an image build would use them.
 *
 * Each package is unpacked into an empty root (dpkg-deb -x) and its unit's
 * `Environment=` and `ExecStart=` command line is run from there, the
 * absolute paths it names re-rooted into that root (as
 * test/integration/device-runtime does for the image), on the Node line the
 * package depends on: the call manager connects to a real TLS-only mosquitto
 * with its MQTT client key, signs with its key and guards its console with its
 * token, all three read from a credentials directory made as systemd's
 * `LoadCredential=` lines of its unit would make it (the packaged cm.json names
 * them `${CREDENTIALS_DIRECTORY}/…`); it serves /healthz. The agent, with the
 * packaged headless board, homes on it. The root user's own systemd is not
 * involved (test/integration/unit-exec runs the units' users and sandbox).
 *
 * Also: the packages' fields and files (units, udev rules, sysusers.d,
 * tmpfiles.d, conffiles, the docs Documentation= names), that they share no
 * file, that their native addons load, and lintian (no error, no warning).
 * Needs dpkg-deb, dpkg-shlibdeps (dpkg-dev) and lintian: .ci/run installs them.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connectAsync } from 'mqtt';
import { generateKeyPair } from '../../src/protocol/envelope.js';
import { CREDENTIALS_PREFIX } from '../../src/config/credentials-dir.js';
import { procOf, type Proc } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { crossRuntime, ensureCrossImage } from '../helpers/cross-image.js';
import { ensureImage, nodeRuntime, SUPPORTED_MAJORS, type Major } from '../helpers/node-runtimes.js';
import { makePki } from '../helpers/pki.js';
import { ROOT } from '../helpers/programs.js';
import { removeAtExit } from '../helpers/reaper.js';
import { parseUnit, serviceList, serviceSetting, unitEnvironment, unitExecStart, type Setting } from '../helpers/systemd-unit.js';

const VERSION = (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version;
const ARCH = ({ x64: 'amd64', arm64: 'arm64' } as Record<string, string>)[process.arch]!;
const PACKAGES = ['ipphone-agent', 'ipphone-cm'] as const;
type Pkg = (typeof PACKAGES)[number];

const out = mkdtempSync(join(tmpdir(), 'ipphone-deb-'));
removeAtExit(out);
const debs = {} as Record<Pkg, string>;
const roots = {} as Record<Pkg, string>;

function run(cmd: string, args: string[], opts: { ok?: boolean } = {}): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 300_000, maxBuffer: 64 * 1024 * 1024 });
  if (r.error !== undefined && (r.error as NodeJS.ErrnoException).code === 'ENOENT') throw new Error(`${cmd} is not installed (.ci/run installs dpkg-dev and lintian)`);
  if ((opts.ok ?? true) && r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}

test.before(() => {
  ensureImage();
  // The staged image as it is (--image): npm run package would restage a stale one itself.
  const r = run(process.execPath, [join(ROOT, 'scripts/package.mjs'), '--image', join(ROOT, 'dist/image'), '--out', out]);
  for (const p of PACKAGES) {
    debs[p] = join(out, `${p}_${VERSION}_${ARCH}.deb`);
    if (!existsSync(debs[p])) throw new Error(`no ${debs[p]}:\n${r.stdout}${r.stderr}`);
    roots[p] = join(out, `root-${p}`);
    mkdirSync(roots[p]);
    run('dpkg-deb', ['-x', debs[p], roots[p]]);
  }
});

const field = (p: Pkg, name: string): string => run('dpkg-deb', ['-f', debs[p], name]).stdout.trim();
/** Every path a package installs that is not a directory, as dpkg-deb -c lists it (./etc/…). */
const filesOf = (p: Pkg): string[] =>
  run('dpkg-deb', ['-c', debs[p]])
    .stdout.split('\n')
    .filter((l) => l !== '' && !l.startsWith('d'))
    .map((l) => l.split(/\s+/)[5]!);
function unitOf(p: Pkg): { name: string; settings: Setting[] } {
  const name = `${p}.service`;
  return { name, settings: parseUnit(readFileSync(join(roots[p], 'lib/systemd/system', name), 'utf8')) };
}
/** The Node major the package's Depends asks for (its `nodejs (<< N+1~)`), else the oldest supported. */
function nodeMajorOf(p: Pkg): Major {
  const below = /nodejs \(<< (\d+)~\)/.exec(field(p, 'Depends'));
  const major = below === null ? SUPPORTED_MAJORS[0] : Number(below[1]) - 1;
  if (!(SUPPORTED_MAJORS as readonly number[]).includes(major)) throw new Error(`${p} depends on Node ${major}, not a supported line`);
  return major as Major;
}

test('deb-package: the contract file names; Node >= 20.11 (and the addons\' major) and the shared libraries in Depends; conffiles; executable maintainer scripts', (t) => {
  t.deepEqual(readdirSync(out).filter((f) => f.endsWith('.deb')).sort(), [`ipphone-agent_${VERSION}_${ARCH}.deb`, `ipphone-cm_${VERSION}_${ARCH}.deb`]);
  for (const p of PACKAGES) {
    t.is(field(p, 'Package'), p);
    t.is(field(p, 'Version'), VERSION);
    t.is(field(p, 'Architecture'), ARCH);
    t.regex(field(p, 'Depends'), /^nodejs \(>= 20\.11~\)/, p);
    const control = join(out, `control-${p}`);
    run('dpkg-deb', ['-e', debs[p], control]);
    for (const s of ['postinst', 'prerm', 'postrm']) {
      t.is(statSync(join(control, s)).mode & 0o777, 0o755, `${p} ${s}`);
      t.is(run('sh', ['-n', join(control, s)], { ok: false }).status, 0, `${p} ${s} parses`);
    }
    const conffiles = readFileSync(join(control, 'conffiles'), 'utf8').trim().split('\n');
    t.deepEqual(conffiles, p === 'ipphone-agent' ? ['/etc/ipphone-agent/agent.json', '/etc/ipphone-agent/board.json'] : ['/etc/ipphone-cm/cm.json'], p);
  }
  // The agent carries native addons built for one Node line (epoll uses nan): pinned to it, and to libc/libstdc++.
  t.regex(field('ipphone-agent', 'Depends'), /nodejs \(<< \d+~\).*libc6 \(>= [0-9.]+\).*libstdc\+\+6/);
  t.is(field('ipphone-cm', 'Depends'), 'nodejs (>= 20.11~)', 'the call manager is JavaScript only');
});

test('deb-package: units, udev rules, sysusers.d user of the agent unit, tmpfiles.d state directory, the docs Documentation= names; no file in both packages', (t) => {
  const agent = filesOf('ipphone-agent');
  const cm = filesOf('ipphone-cm');
  for (const f of ['./lib/systemd/system/ipphone-agent.service', './lib/udev/rules.d/99-ipphone-gpio.rules', './lib/udev/rules.d/99-ipphone-input.rules', './usr/lib/sysusers.d/ipphone-agent.conf', './usr/lib/tmpfiles.d/ipphone-agent.conf', './usr/share/doc/ipphone-agent/copyright', './usr/share/doc/ipphone-agent/changelog.gz', './usr/lib/ipphone/ipphone-agent.mjs']) {
    t.true(agent.includes(f), f);
  }
  for (const f of ['./lib/systemd/system/ipphone-cm.service', './usr/share/doc/ipphone-cm/copyright', './usr/lib/ipphone/cm/ipphone-cm.mjs', './usr/lib/ipphone/ipphone-cm.mjs', './usr/lib/ipphone/ipphone-admin.mjs']) t.true(cm.includes(f), f);
  t.deepEqual(agent.filter((f) => cm.includes(f)), [], 'one machine may install both');
  // Only this architecture's serialport prebuild.
  t.deepEqual(agent.filter((f) => f.includes('/prebuilds/')).map((f) => f.split('/prebuilds/')[1]!.split('/')[0]).filter((d, i, a) => a.indexOf(d) === i), [ARCH === 'amd64' ? 'linux-x64' : 'linux-arm64']);

  for (const p of PACKAGES) {
    const { settings } = unitOf(p);
    const docs = settings.filter((s) => s.section === 'Unit' && s.key === 'Documentation').flatMap((s) => s.value.split(/\s+/)).filter(Boolean);
    t.true(docs.length > 0, `${p}: Documentation=`);
    for (const d of docs) {
      t.regex(d, /^file:\//, d);
      t.true(existsSync(join(roots[p], d.slice('file:'.length))), `${p}: ${d} is installed`);
    }
  }

  // The agent unit's User=/Group=/SupplementaryGroups= are what sysusers.d makes; its StateDirectory= what tmpfiles.d makes, as StateDirectoryMode= says.
  const { settings } = unitOf('ipphone-agent');
  const sysusers = readFileSync(join(roots['ipphone-agent'], 'usr/lib/sysusers.d/ipphone-agent.conf'), 'utf8').split('\n').filter((l) => l.trim() !== '' && !l.startsWith('#')).map((l) => l.split(/\s+/));
  const user = serviceSetting(settings, 'User')!;
  t.is(serviceSetting(settings, 'Group'), user);
  t.true(sysusers.some((l) => l[0] === 'u' && l[1] === user), `u ${user}`);
  for (const g of serviceList(settings, 'SupplementaryGroups')) t.true(sysusers.some((l) => l[0] === 'm' && l[1] === user && l[2] === g), `m ${user} ${g}`);
  const tmpfiles = readFileSync(join(roots['ipphone-agent'], 'usr/lib/tmpfiles.d/ipphone-agent.conf'), 'utf8').split('\n').filter((l) => l.startsWith('d ')).map((l) => l.split(/\s+/));
  t.deepEqual(tmpfiles, [['d', `/var/lib/${serviceSetting(settings, 'StateDirectory')}`, serviceSetting(settings, 'StateDirectoryMode')!, user, user, '-']]);
  // The board the unit's --board names is the headless profile.
  t.deepEqual(JSON.parse(readFileSync(join(roots['ipphone-agent'], 'etc/ipphone-agent/board.json'), 'utf8')), JSON.parse(readFileSync(join(ROOT, 'hw/boards/headless.json'), 'utf8')));
});

test('deb-package: lintian finds no error and no warning in either package', (t) => {
  t.timeout(300_000);
  const r = run('lintian', ['--tag-display-limit', '0', ...PACKAGES.map((p) => debs[p])], { ok: false });
  const lines = `${r.stdout}${r.stderr}`.split('\n').filter((l) => /^[EW]: /.test(l));
  t.log(`lintian exit ${r.status}; E/W lines: ${lines.length}`);
  t.deepEqual(lines, []);
  t.is(r.status, 0, `${r.stdout}${r.stderr}`);
});

test('deb-package: the agent package\'s native addons (serialport, epoll) load on the Node line it depends on', (t) => {
  const rt = nodeRuntime(nodeMajorOf('ipphone-agent'));
  const modules = join(roots['ipphone-agent'], 'usr/lib/ipphone/node_modules');
  const script = `const r = require('node:module').createRequire(${JSON.stringify(`${modules}/`)});
    const b = r('@serialport/bindings-cpp').autoDetect(); if (typeof b.list !== 'function') throw new Error('no serialport binding');
    const { Epoll } = r('epoll'); if (typeof Epoll !== 'function') throw new Error('no epoll addon');
    console.log('loaded');`;
  const r = spawnSync(rt.node, ['-e', script], { encoding: 'utf8', timeout: 60_000 });
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout.trim(), 'loaded');
});

/** `path` inside `root`: the absolute paths a unit and its config name. */
const rerooted = (root: string, path: string): string => join(root, path);

/**
 * The unit's command line from its unpacked root: `/usr/bin/node` is the
 * runtime, every other absolute argument is re-rooted; the environment is
 * the unit's `Environment=` and what systemd adds for these settings.
 */
function startFromRoot(p: Pkg, node: string, extraEnv: Record<string, string>): Proc {
  const { name, settings } = unitOf(p);
  const env = unitEnvironment(settings, name);
  const exec = unitExecStart(settings, name, env);
  if (exec.path !== '/usr/bin/node') throw new Error(`${name}: ExecStart= runs ${exec.path}`);
  const argv = exec.argv.slice(1).map((a) => (a.startsWith('/') ? rerooted(roots[p], a) : a));
  const environment = { PATH: '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin', ...extraEnv, ...env };
  return procOf(spawn(node, argv, { cwd: roots[p], env: environment, stdio: ['ignore', 'pipe', 'pipe'] }), `${name} from the package`);
}

test('deb-package: unpacked into empty roots, the call manager serves /healthz with its MQTT client key and console token from LoadCredential=, and the agent homes on it', async (t) => {
  t.timeout(180_000);
  const cmRoot = roots['ipphone-cm'];
  const agentRoot = roots['ipphone-agent'];
  const rt = nodeRuntime(nodeMajorOf('ipphone-agent'));
  t.log(`node ${rt.version}`);
  const pki = await makePki();
  t.teardown(() => pki.remove());
  const mosq = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key } });
  t.teardown(() => mosq.stop());
  const port = await freePort();
  const services = `http://127.0.0.1:${port}/services`;
  const keys = generateKeyPair();

  // The installer's part for the call manager: secrets root-only in /etc/ipphone-cm, cm.json edited for this group.
  const etcCm = join(cmRoot, 'etc/ipphone-cm');
  const cmCert = await pki.client('cm-a');
  const token = 'deb-package-console-token-0123456789';
  for (const [f, text] of [['signing-key.pem', keys.privatePem], ['mqtt-client-key.pem', readFileSync(cmCert.key, 'utf8')], ['console.token', `${token}\n`]] as const) {
    writeFileSync(join(etcCm, f), text, { mode: 0o600 });
  }
  copyFileSync(pki.ca.cert, join(etcCm, 'ca.crt'));
  copyFileSync(cmCert.cert, join(etcCm, 'cm.crt'));
  const cmJson = JSON.parse(readFileSync(join(etcCm, 'cm.json'), 'utf8')) as Record<string, any>;
  // The packaged config reads its secrets from the credentials directory, and its public files from /etc.
  t.is(cmJson.signingKey, `${CREDENTIALS_PREFIX}signing-key.pem`);
  t.is(cmJson.mqtt.key, `${CREDENTIALS_PREFIX}mqtt-client-key.pem`);
  t.is(cmJson.console.tokenFile, `${CREDENTIALS_PREFIX}console.token`);
  Object.assign(cmJson, {
    cmId: 'cm-a',
    broker: mosq.url,
    http: { host: '127.0.0.1', port },
    group: [{ id: 'cm-a', broker: mosq.url, services, capacity: 10 }],
    rebalance: { enabled: false },
    stateDir: rerooted(cmRoot, '/var/lib/ipphone-cm'),
  });
  cmJson.mqtt.ca = rerooted(cmRoot, cmJson.mqtt.ca as string);
  cmJson.mqtt.cert = rerooted(cmRoot, cmJson.mqtt.cert as string);
  writeFileSync(join(etcCm, 'cm.json'), JSON.stringify(cmJson, null, 2));

  // What LoadCredential=/SetCredential= of the packaged unit make: every secret the config names is one of them.
  const { settings } = unitOf('ipphone-cm');
  const creds = mkdtempSync(join(tmpdir(), 'ipphone-deb-creds-'));
  removeAtExit(creds);
  const defaults = new Map(serviceList(settings, 'SetCredential').map((c) => c.split(/:(.*)/s) as [string, string]));
  const loaded: string[] = [];
  for (const c of serviceList(settings, 'LoadCredential')) {
    const [name, src] = c.split(/:(.*)/s) as [string, string];
    const file = rerooted(cmRoot, src);
    if (existsSync(file)) writeFileSync(join(creds, name), readFileSync(file));
    else if (defaults.has(name)) writeFileSync(join(creds, name), defaults.get(name)!.replace(/\\n/g, '\n'));
    else throw new Error(`LoadCredential=${c}: no file, no default: systemd would not start the unit`);
    chmodSync(join(creds, name), 0o400);
    loaded.push(name);
  }
  chmodSync(creds, 0o500);
  for (const v of [cmJson.signingKey, cmJson.mqtt.key, cmJson.console.tokenFile] as string[]) t.true(loaded.includes(v.slice(CREDENTIALS_PREFIX.length)), `${v} is a LoadCredential= of the unit`);

  const cm = startFromRoot('ipphone-cm', rt.node, { CREDENTIALS_DIRECTORY: creds, STATE_DIRECTORY: rerooted(cmRoot, '/var/lib/ipphone-cm') });
  t.teardown(() => cm.signal('SIGKILL'));
  const health = `http://127.0.0.1:${port}/healthz`;
  await waitFor(async () => (await fetch(health).catch(() => undefined))?.status === 200 || cm.child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 200, what: 'cm-a /healthz 200' }).catch((err: Error) => {
    throw new Error(`${err.message}\n${cm.output()}`);
  });
  t.is(cm.child.exitCode, null, cm.output());
  t.is((await fetch(health)).status, 200, 'connected to the TLS-only broker with the client key from the credentials directory');
  t.is((await fetch(`http://127.0.0.1:${port}/`)).status, 401, 'the console wants the token');
  t.is((await fetch(`http://127.0.0.1:${port}/`, { headers: { authorization: `Bearer ${token}` } })).status, 200, 'the token from the credentials directory opens it');

  // The installer's part for the phone: its identity, the call managers, the trusted key.
  const etcAgent = join(agentRoot, 'etc/ipphone-agent');
  const phone = await pki.client('p-deb');
  const agentJson = JSON.parse(readFileSync(join(etcAgent, 'agent.json'), 'utf8')) as Record<string, any>;
  for (const [k, src] of [['ca', pki.ca.cert], ['cert', phone.cert], ['key', phone.key]] as const) {
    copyFileSync(src, rerooted(agentRoot, agentJson.mqtt[k] as string));
    agentJson.mqtt[k] = rerooted(agentRoot, agentJson.mqtt[k] as string);
  }
  Object.assign(agentJson, { phoneId: 'p-deb', pointers: [{ id: 'cm-a', broker: mosq.url, services }], trust: { requireSigned: true, keys: { [cmJson.keyId as string]: keys.publicPem } } });
  writeFileSync(join(etcAgent, 'agent.json'), JSON.stringify(agentJson, null, 2));
  // What tmpfiles.d (and StateDirectory=) make.
  mkdirSync(join(agentRoot, 'var/lib/ipphone-agent'), { recursive: true, mode: 0o700 });

  const observerTls = await pki.clientTls('observer');
  const observer = await connectAsync(mosq.url, { ...observerTls, reconnectPeriod: 0, clientId: 'observer' });
  t.teardown(() => observer.endAsync());
  let status: Record<string, unknown> = {};
  observer.on('message', (_topic, payload) => {
    status = JSON.parse(payload.toString()) as Record<string, unknown>;
  });
  await observer.subscribeAsync('ipphone/v1/phone/p-deb/status');

  const agent = startFromRoot('ipphone-agent', rt.node, { STATE_DIRECTORY: rerooted(agentRoot, '/var/lib/ipphone-agent') });
  t.teardown(() => agent.signal('SIGKILL'));
  await waitFor(() => status.home === 'cm-a' || agent.child.exitCode !== null, { timeoutMs: 60_000, intervalMs: 100, what: 'p-deb homed on cm-a' }).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent.output()}\n${cm.output()}`);
  });
  t.is(agent.child.exitCode, null, agent.output());
  t.like(status, { online: true, home: 'cm-a' });
  await waitFor(() => readdirSync(join(agentRoot, 'var/lib/ipphone-agent')).length > 0, { timeoutMs: 30_000, what: 'a state file' });

  // Both stop cleanly on SIGTERM, as systemctl stop asks.
  agent.signal('SIGTERM');
  cm.signal('SIGTERM');
  t.is(await agent.exited, 0, agent.output());
  t.is(await cm.exited, 0, cm.output());
  rmSync(join(agentRoot, 'var/lib/ipphone-agent'), { recursive: true, force: true });
});

/**
 * The maintainer scripts where no systemd runs, as in an image build's chroot
 * (this machine has no /run/systemd/system), inside a private mount namespace
 * whose /etc and /var/lib are overlays: the host's users and directories are
 * never touched. The package's /usr/lib (sysusers.d, tmpfiles.d) is laid
 * over the host's. With the host's systemd-sysusers and systemd-tmpfiles,
 * and with both hidden (a chroot without systemd yet: useradd, install).
 */
function maintainerScripts(p: Pkg, hideSystemdTools: boolean): Record<string, string> {
  const scratch = mkdtempSync(join(tmpdir(), 'ipphone-deb-maint-'));
  removeAtExit(scratch);
  const control = join(out, `control-${p}-maint`);
  if (!existsSync(control)) run('dpkg-deb', ['-e', debs[p], control]);
  const script = [
    'set -eu',
    'scratch=$1 pkg=$2 control=$3 hide=$4 unit=$5',
    'ov() { mkdir -p "$scratch/ov$1/u" "$scratch/ov$1/w"; mount -t overlay overlay -o "lowerdir=$1,upperdir=$scratch/ov$1/u,workdir=$scratch/ov$1/w" "$1"; }',
    'ov /etc; ov /var/lib',
    'mount -t overlay overlay -o "lowerdir=$pkg/usr/lib:/usr/lib" /usr/lib',
    // Hidden: a PATH of links to every command but those two.
    'if [ "$hide" = 1 ]; then mkdir "$scratch/bin"; ln -s /usr/bin/* "$scratch/bin/"; ln -sf /usr/sbin/* "$scratch/bin/"; rm "$scratch/bin/systemd-sysusers" "$scratch/bin/systemd-tmpfiles"; export PATH=$scratch/bin; fi',
    'echo "tools=$(command -v systemd-sysusers || echo none)"',
    'sh "$control/postinst" configure ""',
    'echo "passwd=$(getent passwd ipphone || true)"',
    'echo "groups=$(id -nG ipphone 2>/dev/null || true)"',
    'echo "state=$(stat -c "%U:%G %a" /var/lib/ipphone-agent 2>/dev/null || echo none)"',
    'sh "$control/postinst" configure 0.0.1',
    'echo "upgrade=ok"',
    'sh "$control/prerm" remove',
    'sh "$control/postrm" remove',
    'echo "after-remove=$(test -d /var/lib/ipphone-agent && echo kept || echo gone)"',
    'sh "$control/postrm" purge',
    'echo "after-purge=$(test -d /var/lib/ipphone-agent && echo kept || echo gone)"',
  ].join('\n');
  const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', script, 'bash', scratch, roots[p], control, hideSystemdTools ? '1' : '0', `${p}.service`], { encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0) throw new Error(`${p} maintainer scripts (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  return Object.fromEntries(r.stdout.trim().split('\n').map((l) => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));
}

for (const hide of [false, true]) {
  test.serial(`deb-package: maintainer scripts without a running systemd (${hide ? 'nor systemd-sysusers/tmpfiles: useradd, install' : 'systemd-sysusers, systemd-tmpfiles'}): the agent unit's user, groups and state directory; upgrade, remove, purge`, (t) => {
    if (!existsSync('/usr/bin/systemd-sysusers')) throw new Error('systemd-sysusers is not installed (Debian package systemd)');
    const before = spawnSync('getent', ['passwd', 'ipphone']).status;
    const seen = maintainerScripts('ipphone-agent', hide);
    t.is(seen.tools === 'none', hide, seen.tools);
    const { settings } = unitOf('ipphone-agent');
    const user = serviceSetting(settings, 'User')!;
    t.regex(seen.passwd ?? '', new RegExp(`^${user}:x:\\d+:\\d+:ipphone agent:/var/lib/ipphone-agent:`), JSON.stringify(seen));
    t.deepEqual((seen.groups ?? '').split(' ').sort(), [user, ...serviceList(settings, 'SupplementaryGroups')].sort());
    t.is(seen.state, `${user}:${user} ${serviceSetting(settings, 'StateDirectoryMode')!.replace(/^0/, '')}`);
    t.is(seen.upgrade, 'ok');
    t.is(seen['after-remove'], 'kept', 'remove keeps the flash state');
    t.is(seen['after-purge'], 'gone', 'purge removes it');
    t.is(spawnSync('getent', ['passwd', 'ipphone']).status, before, 'the host is untouched');
  });
}

test.serial('deb-package: the call manager\'s maintainer scripts run without a running systemd', (t) => {
  const control = join(out, 'control-ipphone-cm-maint');
  run('dpkg-deb', ['-e', debs['ipphone-cm'], control]);
  for (const args of [['postinst', 'configure', ''], ['postinst', 'configure', '0.0.1'], ['prerm', 'remove'], ['postrm', 'remove'], ['postrm', 'purge']]) {
    // purge removes /var/lib/private/ipphone-cm: in a namespace with /var/lib an overlay, like the agent's.
    const r = spawnSync('unshare', ['--mount', '--propagation', 'private', '--', 'bash', '-c', 'set -eu; d=$(mktemp -d); mkdir $d/u $d/w; mount -t overlay overlay -o lowerdir=/var/lib,upperdir=$d/u,workdir=$d/w /var/lib; sh "$@"; rm -rf $d', 'bash', join(control, args[0]!), ...args.slice(1)], { encoding: 'utf8' });
    t.is(r.status, 0, `${args.join(' ')}: ${r.stdout}${r.stderr}`);
  }
});

for (const [arch, machine, nodeArch] of [['arm64', 'ARM aarch64', 'arm64'], ['armhf', 'ARM, EABI5', 'arm']] as const) {
  test.serial(`deb-package: --arch ${arch} packages the staged ${arch} image: ${arch} fields, only ${machine} objects, Depends on the Node line its addons are built for, lintian clean, the addons load under qemu on that Node`, (t) => {
    t.timeout(900_000);
    const image = ensureCrossImage(arch);
    const armOut = mkdtempSync(join(tmpdir(), `ipphone-deb-${arch}-`));
    removeAtExit(armOut);
    run(process.execPath, [join(ROOT, 'scripts/package.mjs'), '--arch', arch, '--image', image, '--out', armOut]);
    const deb = (p: Pkg): string => join(armOut, `${p}_${VERSION}_${arch}.deb`);
    for (const p of PACKAGES) t.is(run('dpkg-deb', ['-f', deb(p), 'Architecture']).stdout.trim(), arch, p);
    const info = JSON.parse(readFileSync(join(image, 'usr/share/ipphone/image.json'), 'utf8')) as { node: { major: number } };
    const depends = run('dpkg-deb', ['-f', deb('ipphone-agent'), 'Depends']).stdout.trim();
    t.regex(depends, new RegExp(`^nodejs \\(>= ${info.node.major}\\.\\d+~\\), nodejs \\(<< ${info.node.major + 1}~\\), libc6`), depends);

    const root = join(armOut, 'root');
    mkdirSync(root);
    run('dpkg-deb', ['-x', deb('ipphone-agent'), root]);
    const objects = run('find', [root, '-type', 'f', '-name', '*.node']).stdout.trim().split('\n');
    t.true(objects.length >= 2, objects.join(' '));
    for (const o of objects) t.regex(run('file', ['-b', o]).stdout, new RegExp(`LSB shared object, ${machine}`), o);

    const lint = run('lintian', ['--tag-display-limit', '0', ...PACKAGES.map(deb)], { ok: false });
    t.deepEqual(`${lint.stdout}${lint.stderr}`.split('\n').filter((l) => /^[EW]: /.test(l)), []);

    const rt = crossRuntime(arch, info.node.major);
    const modules = join(root, 'usr/lib/ipphone/node_modules');
    const script = `const r = require('node:module').createRequire(${JSON.stringify(`${modules}/`)});
      const b = r('@serialport/bindings-cpp').autoDetect(); if (typeof b.list !== 'function') throw new Error('no serialport binding');
      const { Epoll } = r('epoll'); if (typeof Epoll !== 'function') throw new Error('no epoll addon');
      console.log(process.arch, 'loaded');`;
    const r = spawnSync(rt.qemu, [rt.node, '-e', script], { encoding: 'utf8', timeout: 300_000 });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.trim(), `${nodeArch} loaded`);
    t.log(`${arch}: ${PACKAGES.map((p) => `${p} ${statSync(deb(p)).size} bytes`).join(', ')}; node ${rt.version} under ${rt.qemu}`);
  });
}
