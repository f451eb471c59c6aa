/**
 * examples/ is what a new user runs first (issue 12): every config there must pass its program's
 * `--check-config` as shipped, and the group they describe must work. The group test runs the
 * shipped files with ONLY what a shared test machine forces rewritten, in temp copies: the
 * broker port (1883 → a free port; examples/mosquitto.conf's listener likewise), the HTTP ports
 * (8081/8082 → free ports, in `http.port` and the services URLs), `stateDir` (a temp dir) and
 * `signingKey` (made absolute). Everything else — ids, group, timings, trust, the example key —
 * is as shipped. Real mosquitto, call managers and agents as child processes.
 */
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs, ROOT } from '../helpers/programs.js';

const EXAMPLES = join(ROOT, 'examples');
const configs = readdirSync(EXAMPLES).filter((f) => f.endsWith('.json'));
const read = (file: string): Record<string, any> => JSON.parse(readFileSync(join(EXAMPLES, file), 'utf8')) as Record<string, any>;
const programOf = (c: Record<string, unknown>): 'ipphone-cm' | 'ipphone-agent' => ('cmId' in c ? 'ipphone-cm' : 'ipphone-agent');

test('examples/ has a group of call managers and phones', (t) => {
  const cms = configs.filter((f) => programOf(read(f)) === 'ipphone-cm');
  const phones = configs.filter((f) => programOf(read(f)) === 'ipphone-agent');
  t.true(cms.length >= 2, `call managers: ${cms.join(', ')}`);
  t.true(phones.length >= 2, `phones: ${phones.join(', ')}`);
  // Every phone trusts the key the group signs with, under the id the group uses.
  const kids = new Set(cms.map((f) => read(f).keyId as string));
  for (const f of phones) for (const kid of kids) t.truthy(read(f).trust?.keys?.[kid], `${f} trusts ${kid}`);
});

for (const file of configs) {
  test(`examples/${file} passes --check-config as shipped`, (t) => {
    const program = programOf(read(file));
    const r = spawnSync(process.execPath, [...programArgs(program), '--check-config', join('examples', file)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, `${program} --check-config examples/${file}: ${r.stderr}${r.stdout}`);
  });
}

let mosq: Mosquitto | undefined;
const children: ChildProcess[] = [];
let dir: string | undefined;
/** Start one program of the group (set by the group test). */
let startProgram: ((program: 'ipphone-cm' | 'ipphone-agent', file: string) => ChildProcess) | undefined;
test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  await mosq?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test.serial('the group started from examples/ homes its phones on the primary', async (t) => {
  // examples/mosquitto.conf itself, its listener moved to the free port.
  const shippedConf = readFileSync(join(EXAMPLES, 'mosquitto.conf'), 'utf8');
  t.regex(shippedConf, /^listener 1883 127\.0\.0\.1$/m);
  mosq = await startMosquitto({ confText: (port) => shippedConf.replace(/^listener 1883 /m, `listener ${port} `).replace(/^log_dest stdout$/m, 'log_dest stderr') });
  dir = mkdtempSync(join(tmpdir(), 'ipphone-examples-'));
  const httpPorts = new Map<string, number>([
    ['8081', await freePort()],
    ['8082', await freePort()],
  ]);
  const rewrite = (text: string): string =>
    text.replace(/127\.0\.0\.1:1883/g, `127.0.0.1:${mosq!.port}`).replace(/127\.0\.0\.1:(8081|8082)/g, (_, p: string) => `127.0.0.1:${httpPorts.get(p)}`);
  const copy = (file: string): string => {
    const c = JSON.parse(rewrite(readFileSync(join(EXAMPLES, file), 'utf8'))) as Record<string, any>;
    c.stateDir = join(dir!, file.replace(/\.json$/, ''));
    if (typeof c.signingKey === 'string') c.signingKey = join(ROOT, c.signingKey);
    if (c.http?.port !== undefined) c.http.port = httpPorts.get(String(c.http.port)) ?? c.http.port;
    const out = join(dir!, file);
    writeFileSync(out, JSON.stringify(c));
    return out;
  };
  const output = new Map<string, string>();
  const start = (program: 'ipphone-cm' | 'ipphone-agent', file: string): ChildProcess => {
    const child = spawn(process.execPath, [...programArgs(program), '--config', copy(file)], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    output.set(file, '');
    const keep = (b: Buffer): void => void output.set(file, (output.get(file)! + b.toString()).slice(-4000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
    return child;
  };
  startProgram = start;

  const cmA = read('cm-a.json');
  const primary = cmA.group[0].id as string;
  const homes = new Map<string, string | null>();
  const watcher = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => watcher.end(true));
  await new Promise<void>((resolve, reject) => {
    watcher.once('connect', () => resolve());
    watcher.once('error', reject);
  });
  watcher.on('message', (topic, payload) => {
    const phone = topic.split('/')[3]!;
    try {
      homes.set(phone, (JSON.parse(payload.toString()) as { home?: string | null }).home ?? null);
    } catch {
      // not a status this test reads
    }
  });
  await watcher.subscribeAsync(`${cmA.topicPrefix as string}/phone/+/status`);

  start('ipphone-cm', 'cm-a.json');
  start('ipphone-cm', 'cm-b.json');
  const phones = ['phone.json', 'phone-2.json'];
  for (const f of phones) start('ipphone-agent', f);
  const ids = phones.map((f) => read(f).phoneId as string);
  // Homed on the group's primary: at once when cm-a is up first, else after the examples' fallback hold.
  await waitFor(() => ids.every((id) => homes.get(id) === primary), { timeoutMs: 90_000, intervalMs: 100, what: `${ids.join(', ')} homed to ${primary}` }).catch((err: Error) => {
    throw new Error(`${err.message}; homes ${JSON.stringify([...homes])}\n${[...output].map(([f, o]) => `--- ${f}\n${o}`).join('\n')}`);
  });
  for (const id of ids) t.is(homes.get(id), primary);
  // The example's HTTP side as the README's curl lines use it.
  const base = `http://127.0.0.1:${httpPorts.get('8081')}`;
  t.is((await fetch(`${base}/healthz`)).status, 200);
  t.regex(await (await fetch(`${base}/services?phone=${ids[0]}`)).text(), new RegExp(`<Title>[^<]*${primary}`));
});

test('the README\'s pkill lines signal the program itself, under npx or not, never npm or sh (killing npm orphans the program)', (t) => {
  const readme = readFileSync(join(EXAMPLES, 'README.md'), 'utf8');
  const lines = [...readme.matchAll(/^pkill -(\w+) -f '([^']+)'/gm)];
  t.deepEqual(lines.map((m) => m[1]), ['KILL', 'STOP', 'TERM']);
  // The command lines `ps -eo args` shows for `npx ipphone-cm --config examples/cm-a.json` (npm 11),
  // and for the program run directly.
  const npm = 'npm exec ipphone-cm --config examples/cm-a.json';
  const sh = "sh -c 'ipphone-cm' --config examples/cm-a.json";
  const underNpx = 'node /root/.npm/_npx/5eec080bf95e7d97/node_modules/.bin/ipphone-cm --config examples/cm-a.json';
  const direct = '/usr/bin/node dist/bin/ipphone-cm.js --config examples/cm-a.json';
  const other = 'node /root/.npm/_npx/5eec080bf95e7d97/node_modules/.bin/ipphone-cm --config examples/cm-b.json';
  for (const [, signal, pattern] of lines) {
    // pkill -f matches an extended regular expression anywhere in the command line.
    const re = new RegExp(pattern!);
    t.true(re.test(underNpx) && re.test(direct), `${signal}: the call manager itself`);
    t.false(re.test(npm) || re.test(sh) || re.test(other), `${signal}: not npm exec, sh or cm-b`);
  }
});

test.serial('examples: a crash of cm-a (kill -9) rehomes with reason cm-offline, a hang (SIGSTOP) with keepalive-loss', async (t) => {
  // After "the group started from examples/ homes its phones on the primary" (same processes).
  if (mosq === undefined || children.length < 4 || startProgram === undefined) return t.fail('the group test did not start the group');
  const [cmA] = children;
  const events: { phone: string; reason: string; to: string }[] = [];
  const homes = new Map<string, string | null>();
  const w = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => w.end(true));
  await new Promise<void>((resolve, reject) => {
    w.once('connect', () => resolve());
    w.once('error', reject);
  });
  w.on('message', (topic, payload) => {
    const phone = topic.split('/')[3]!;
    try {
      const o = JSON.parse(payload.toString()) as { type?: string; reason?: string; to?: string; home?: string | null };
      if (topic.endsWith('/status')) homes.set(phone, o.home ?? null);
      else if (o.type === 'rehomed') events.push({ phone, reason: o.reason!, to: o.to! });
    } catch {
      // not for this test
    }
  });
  await w.subscribeAsync(['ipphone/v1/phone/+/status', 'ipphone/v1/phone/+/event']);
  const ids = ['p-0001', 'p-0002'];
  await waitFor(() => ids.every((id) => homes.get(id) === 'cm-a'), { timeoutMs: 30_000, what: 'both on cm-a' });
  cmA!.kill('SIGKILL');
  await waitFor(() => ids.every((id) => events.some((e) => e.phone === id && e.to === 'cm-b')), { timeoutMs: 30_000, what: 'both rehomed to cm-b after the crash' });
  t.deepEqual(events.filter((e) => e.to === 'cm-b').map((e) => e.reason), ['cm-offline', 'cm-offline'], 'a crash: the will, at once');
  // cm-a back: the phones fall back after the hold; then it hangs: only the missed keep-alives tell.
  const cmA2 = startProgram('ipphone-cm', 'cm-a.json');
  await waitFor(() => ids.every((id) => homes.get(id) === 'cm-a'), { timeoutMs: 60_000, what: 'both back on cm-a after fallback.holdMs' });
  events.length = 0;
  cmA2.kill('SIGSTOP');
  t.teardown(() => void cmA2.kill('SIGKILL'));
  await waitFor(() => ids.every((id) => events.some((e) => e.phone === id && e.to === 'cm-b')), { timeoutMs: 30_000, what: 'both rehomed to cm-b after the hang' });
  t.deepEqual(events.filter((e) => e.to === 'cm-b').map((e) => e.reason), ['keepalive-loss', 'keepalive-loss'], 'a hang: missed keep-alives');
});
