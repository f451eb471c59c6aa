/**
 * The TLS trial of examples/README.md ("TLS and client certificates on one machine", issue 17):
 * its shell lines run as written — `examples/tls/make-pki.sh` (real openssl), mosquitto with
 * `examples/tls/mosquitto.conf`, the call managers and phones of `examples/tls/*.json`, and
 * `ipphone-admin status` as the operator `ops-1` — with ONLY what a shared test machine forces
 * moved: the PKI directory (the script's argument; the configs' paths rewritten to it), the
 * broker port and the HTTP ports, and the state directories. The phones must home over mqtts with
 * those certificates, and a client without one must be refused.
 */
import test from 'ava';
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { connect } from 'mqtt';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs, ROOT } from '../helpers/programs.js';

const TLS = join(ROOT, 'examples', 'tls');
const SHIPPED_DIR = '/tmp/ipphone-examples/tls/';

/** The shell lines of the README section, as a user copies them. */
function recipeLines(): string[] {
  const readme = readFileSync(join(ROOT, 'examples', 'README.md'), 'utf8');
  const section = readme.split(/^## TLS and client certificates on one machine$/m)[1]?.split(/^## /m)[0];
  if (section === undefined) throw new Error('examples/README.md has no section "TLS and client certificates on one machine"');
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (block === undefined) throw new Error('the TLS section has no sh block');
  return block.split('\n').map((l) => l.trim()).filter((l) => l !== '' && !l.startsWith('#'));
}

let mosq: Mosquitto | undefined;
const children: ChildProcess[] = [];
let dir: string | undefined;
test.after.always(async () => {
  for (const c of children) c.kill('SIGKILL');
  await mosq?.stop();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

test('deploy/mosquitto/ names no file outside the repository: every relative link resolves in it', (t) => {
  const base = join(ROOT, 'deploy', 'mosquitto');
  for (const f of ['README.md', 'mosquitto.conf']) {
    const text = readFileSync(join(base, f), 'utf8');
    t.notRegex(text, /CONTRACT\.md|shared\//, `${f} names the contract file of the workplace`);
    for (const m of text.matchAll(/\]\(([^)#]+)(#[^)]*)?\)/g)) {
      const target = resolve(base, m[1]!);
      t.true(target.startsWith(`${ROOT}/`) && existsSync(target), `${f}: ${m[1]} is a file of the repository`);
    }
  }
});

test.serial('the TLS trial as written: a CA, a broker certificate for 127.0.0.1, client certificates, the ACL; the phones home over mqtts', async (t) => {
  const lines = recipeLines();
  const programs = lines.filter((l) => l.startsWith('npx ipphone-'));
  t.deepEqual(lines.slice(0, 2), ['sh examples/tls/make-pki.sh', 'mosquitto -c examples/tls/mosquitto.conf']);
  t.deepEqual(
    programs.map((l) => l.split(' ').slice(0, 4).join(' ')),
    ['npx ipphone-cm --config examples/tls/cm-a.json', 'npx ipphone-cm --config examples/tls/cm-b.json', 'npx ipphone-agent --config examples/tls/phone.json', 'npx ipphone-agent --config examples/tls/phone-2.json', 'npx ipphone-admin status --broker'],
  );
  for (const l of programs.slice(0, 4)) t.true(existsSync(join(ROOT, l.split(' ')[3]!)), l);

  // 1. The script, in a directory of this test's (its documented argument).
  dir = mkdtempSync(join(tmpdir(), 'ipphone-examples-tls-'));
  chmodSync(dir, 0o755);
  const pki = join(dir, 'pki');
  const made = spawnSync('sh', ['examples/tls/make-pki.sh', pki], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  t.is(made.status, 0, `make-pki.sh: ${made.stderr}`);
  const san = spawnSync('openssl', ['x509', '-in', join(pki, 'server.crt'), '-noout', '-ext', 'subjectAltName'], { encoding: 'utf8' });
  t.regex(san.stdout, /IP Address:127\.0\.0\.1, DNS:localhost/);
  const acl = readFileSync(join(pki, 'acl'), 'utf8');
  t.regex(acl, /^user cm-a$/m);
  t.regex(acl, /^user ops-1$/m);
  t.regex(acl, /^pattern write ipphone\/v1\/phone\/%u\/status$/m);

  // 2. The broker: examples/tls/mosquitto.conf, its port and file paths moved.
  const ports = new Map<string, number>([
    ['8081', await freePort()],
    ['8082', await freePort()],
  ]);
  const conf = readFileSync(join(TLS, 'mosquitto.conf'), 'utf8');
  t.regex(conf, /^listener 8883 127\.0\.0\.1$/m);
  mosq = await startMosquitto({
    confText: (port) =>
      conf
        .replace(/^listener 8883 /m, `listener ${port} `)
        .replaceAll(SHIPPED_DIR, `${pki}/`)
        .replace(/^log_dest stdout$/m, 'log_dest stderr'),
  });
  t.regex(mosq.url, /^mqtts:/);
  const broker = mosq.url.replace(/^mqtts:\/\/[^:]+:/, 'mqtts://127.0.0.1:');

  // 3. The configs as shipped, but for those moves; they pass --check-config with the made files.
  const copy = (file: string): string => {
    const text = readFileSync(join(TLS, file), 'utf8')
      .replaceAll('mqtts://127.0.0.1:8883', broker)
      .replace(/127\.0\.0\.1:(8081|8082)/g, (_, p: string) => `127.0.0.1:${ports.get(p)}`)
      .replaceAll(SHIPPED_DIR, `${pki}/`);
    const c = JSON.parse(text) as Record<string, any>;
    c.stateDir = join(dir!, 'state', file.replace(/\.json$/, ''));
    if (typeof c.signingKey === 'string') c.signingKey = join(ROOT, c.signingKey);
    if (typeof c.console?.tokenFile === 'string') c.console.tokenFile = join(ROOT, c.console.tokenFile);
    if (c.http?.port !== undefined) c.http.port = ports.get(String(c.http.port)) ?? c.http.port;
    const out = join(dir!, file);
    writeFileSync(out, JSON.stringify(c));
    return out;
  };
  const files = readdirSync(TLS).filter((f) => f.endsWith('.json'));
  t.deepEqual(files.sort(), ['cm-a.json', 'cm-b.json', 'phone-2.json', 'phone.json']);
  const copies = new Map(files.map((f) => [f, copy(f)]));
  for (const [f, path] of copies) {
    const program = f.startsWith('cm-') ? 'ipphone-cm' : 'ipphone-agent';
    const r = spawnSync(process.execPath, [...programArgs(program), '--check-config', path], { cwd: ROOT, encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, `${program} --check-config examples/tls/${f}: ${r.stderr}`);
  }

  // 4. The group, as the README starts it (node for npx: the same program, one process each).
  const output = new Map<string, string>();
  for (const f of ['cm-a.json', 'cm-b.json', 'phone.json', 'phone-2.json']) {
    const program = f.startsWith('cm-') ? 'ipphone-cm' : 'ipphone-agent';
    const child = spawn(process.execPath, [...programArgs(program), '--config', copies.get(f)!], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    children.push(child);
    output.set(f, '');
    const keep = (b: Buffer): void => void output.set(f, (output.get(f)! + b.toString()).slice(-3000));
    child.stdout!.on('data', keep);
    child.stderr!.on('data', keep);
  }
  const dump = (): string => [...output].map(([f, o]) => `--- ${f}\n${o}`).join('\n');

  // 5. The README's status line as operator ops-1 (its certificate, the CA): both phones homed on cm-a.
  const statusLine = programs.at(-1)!.split(' ').slice(1);
  const args = statusLine
    .slice(1)
    .map((a) => (a === 'mqtts://127.0.0.1:8883' ? broker : a.replace(SHIPPED_DIR, `${pki}/`)))
    .concat(['--json', '--quiet', '500']);
  t.deepEqual(statusLine.slice(0, 1), ['ipphone-admin']);
  let seen: Record<string, unknown>[] = [];
  await waitFor(
    () => {
      const r = spawnSync(process.execPath, [...programArgs('ipphone-admin'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });
      seen = r.stdout.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);
      return ['p-0001', 'p-0002'].every((id) => seen.some((s) => s.phone === id && s.home === 'cm-a' && s.state === 'homed'));
    },
    { timeoutMs: 90_000, intervalMs: 1000, what: 'p-0001 and p-0002 homed on cm-a over mqtts' },
  ).catch((err: Error) => {
    throw new Error(`${err.message}; statuses ${JSON.stringify(seen)}\n${dump()}`);
  });
  t.pass('homed over mqtts');

  // 6. No certificate, no connection.
  const anonymous = connect(broker, { ca: readFileSync(join(pki, 'ca.crt')), reconnectPeriod: 0, connectTimeout: 5000 });
  const refused = await new Promise<boolean>((done) => {
    anonymous.once('connect', () => done(false));
    anonymous.once('error', () => done(true));
    anonymous.once('close', () => done(true));
  });
  anonymous.end(true);
  t.true(refused, 'a client without a certificate is refused');
  t.true(dirname(pki) === dir);
});
