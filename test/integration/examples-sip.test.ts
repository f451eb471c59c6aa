/**
 * examples/sip/ (issue 17): the SIP group a new user starts from examples/README.md — two call
 * managers each with a Kamailio (deploy/kamailio/kamailio.cfg, digest auth, the shipped
 * subscriber table), phones each with its own baresip and its password file. The configs pass
 * `--check-config` as shipped; the README's own command lines run the group (with only what a
 * shared test machine forces rewritten: every port to a free one, /tmp/ipphone-examples to a temp
 * directory, `npx` as `node dist/bin/…`), both phones register at cm-a's Kamailio, and after that
 * Kamailio is killed (kill -9 of every process of it) at cm-b's.
 */
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs, ROOT } from '../helpers/programs.js';
import { killAtExit } from '../helpers/reaper.js';

const SIP = join(ROOT, 'examples', 'sip');
const configs = readdirSync(SIP).filter((f) => f.endsWith('.json'));
const programOf = (file: string): 'ipphone-cm' | 'ipphone-agent' => ('cmId' in (JSON.parse(readFileSync(join(SIP, file), 'utf8')) as object) ? 'ipphone-cm' : 'ipphone-agent');

test('examples/sip has two call managers with a registrar each and two phones with a password file', (t) => {
  t.deepEqual(configs.map(programOf).sort(), ['ipphone-agent', 'ipphone-agent', 'ipphone-cm', 'ipphone-cm']);
  const table = readFileSync(join(SIP, 'db', 'subscriber'), 'utf8');
  for (const f of configs.filter((f) => programOf(f) === 'ipphone-agent')) {
    const sip = (JSON.parse(readFileSync(join(SIP, f), 'utf8')) as { sip: { user: string; passwordFile: string } }).sip;
    const password = readFileSync(join(ROOT, sip.passwordFile), 'utf8').split('\n')[0];
    t.true(table.split('\n').includes(`${sip.user}:${password}`), `${f}: the registrars know ${sip.user} with the password of its file`);
  }
});

for (const file of configs) {
  test(`examples/sip/${file} passes --check-config as shipped`, (t) => {
    const program = programOf(file);
    const r = spawnSync(process.execPath, [...programArgs(program), '--check-config', join('examples', 'sip', file)], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, `${r.stderr}${r.stdout}`);
  });
}

const children: ChildProcess[] = [];
let mosq: Mosquitto | undefined;
let dir: string | undefined;
/**
 * Kill a detached child's whole process group (Kamailio forks its workers); a child that
 * leads no group (the call managers and agents, not detached) is killed itself — left
 * running, its pipes kept ava's worker, and so the whole run, from ever exiting.
 */
const killGroup = (c: ChildProcess, sig: NodeJS.Signals = 'SIGKILL'): void => {
  if (c.pid === undefined || c.exitCode !== null || c.signalCode !== null) return;
  try {
    process.kill(-c.pid, sig);
  } catch {
    c.kill(sig);
  }
};
test.after.always(async () => {
  for (const c of children) killGroup(c);
  await mosq?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test.serial('the README\'s SIP group registers both phones at cm-a\'s Kamailio, and at cm-b\'s after it is killed', async (t) => {
  t.timeout(240_000);
  const readme = readFileSync(join(ROOT, 'examples', 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('## A SIP group'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  t.truthy(block, 'the section has its command block');
  const lines = block!.split('\n').map((l) => l.replace(/\s+#.*$/, '').trim()).filter(Boolean);

  mosq = await startMosquitto();
  dir = mkdtempSync(join(tmpdir(), 'ipphone-examples-sip-'));
  const ports = new Map<string, number>([['1883', mosq.port]]);
  for (const p of ['5071', '5072', '8181', '8182', '4441', '4442']) ports.set(p, await freePort());
  for (const p of ['5081', '5083']) ports.set(p, await freePort({ span: 2, udp: true }));
  const rewrite = (text: string): string =>
    text.replace(/127\.0\.0\.1:(\d{4})\b/g, (m, p: string) => (ports.has(p) ? `127.0.0.1:${ports.get(p)}` : m)).replace(/\/tmp\/ipphone-examples/g, dir!);

  const output = new Map<string, string>();
  const keep = (name: string, c: ChildProcess): void => {
    output.set(name, '');
    const add = (b: Buffer): void => void output.set(name, (output.get(name)! + b.toString()).slice(-3000));
    c.stdout?.on('data', add);
    c.stderr?.on('data', add);
  };
  const shell = (name: string, line: string): ChildProcess => {
    const c = spawn('sh', ['-c', `exec ${line}`], { cwd: ROOT, stdio: ['pipe', 'pipe', 'pipe'], detached: true, env: { ...process.env, PWD: ROOT } });
    children.push(c);
    killAtExit(c, (k) => killGroup(k));
    keep(name, c);
    return c;
  };
  const program = (p: 'ipphone-cm' | 'ipphone-agent', file: string): void => {
    const c = JSON.parse(rewrite(readFileSync(join(ROOT, file), 'utf8'))) as Record<string, any>;
    if (typeof c.signingKey === 'string') c.signingKey = join(ROOT, c.signingKey);
    const out = join(dir!, file.replace(/\//g, '_'));
    writeFileSync(out, JSON.stringify(c));
    const child = spawn(process.execPath, [...programArgs(p), '--config', out], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    killAtExit(child);
    keep(file, child);
  };

  const sips = new Map<string, { home?: string | null; sip?: { registrar?: string | null } }>();
  const watcher = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => watcher.end(true));
  await new Promise<void>((resolve, reject) => {
    watcher.once('connect', () => resolve());
    watcher.once('error', reject);
  });
  watcher.on('message', (topic, payload) => {
    try {
      sips.set(topic.split('/')[3]!, JSON.parse(payload.toString()) as { home?: string | null });
    } catch {
      // not a status
    }
  });
  await watcher.subscribeAsync('ipphone/v1/phone/+/status');

  let kamailioA: ChildProcess | undefined;
  for (const raw of lines) {
    const line = rewrite(raw);
    if (/^(mkdir|cp) /.test(line)) {
      const r = spawnSync('sh', ['-c', line], { cwd: ROOT, encoding: 'utf8' });
      t.is(r.status, 0, `${line}: ${r.stderr}`);
      if (line.startsWith('cp ')) {
        // The copies' ports, as everything else here.
        for (const u of ['1001', '1002']) writeFileSync(join(dir!, `baresip-${u}`, 'config'), rewrite(readFileSync(join(dir!, `baresip-${u}`, 'config'), 'utf8')));
      }
    } else if (line.startsWith('mosquitto ')) {
      continue; // the broker: started above on a free port (examples.test.ts checks examples/mosquitto.conf)
    } else if (line.startsWith('kamailio ')) {
      const c = shell(`kamailio ${line.includes(`:${ports.get('5071')}'`) ? 'A' : 'B'}`, line);
      if (line.includes(`LISTEN=tcp:127.0.0.1:${ports.get('5071')}'`)) kamailioA = c;
    } else if (line.startsWith('baresip ')) {
      shell(line, line);
    } else {
      const m = /^npx (ipphone-cm|ipphone-agent) --config (\S+)$/.exec(line);
      t.truthy(m, `a line this test knows how to run: ${raw}`);
      if (m === null) continue;
      if (m[1] === 'ipphone-cm') await new Promise((r) => setTimeout(r, 1000)); // the registrars and baresips listening first
      program(m[1] as 'ipphone-cm' | 'ipphone-agent', m[2]!);
    }
  }
  t.truthy(kamailioA, 'Kamailio of cm-a started');
  const registeredAt = (cm: string): Promise<void> =>
    waitFor(() => ['p-1001', 'p-1002'].every((id) => sips.get(id)?.home === cm && sips.get(id)?.sip?.registrar === cm), { timeoutMs: 90_000, intervalMs: 100, what: `both phones registered at ${cm}` }).catch((err: Error) => {
      throw new Error(`${err.message}: ${JSON.stringify([...sips])}\n${[...output].map(([f, o]) => `--- ${f}\n${o}`).join('\n')}`);
    });
  await registeredAt('cm-a');
  killGroup(kamailioA!);
  const at = Date.now();
  await registeredAt('cm-b');
  t.log(`cm-a's Kamailio killed → both phones registered at cm-b: ${Date.now() - at} ms`);
});
