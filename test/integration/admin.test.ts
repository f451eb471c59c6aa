/**
 * `ipphone-admin` end to end, as an operator runs it: a child process
 * against a real mosquitto, a real agent (child process) and call managers
 * for `pointers` and `status`, and a fake phone (a plain mqtt.js client that
 * opens the envelope with the phone-side codec) for `config`.
 */
import test from 'ava';
import { execFile, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { connect, type MqttClient } from 'mqtt';
import { openConfig, decodeEnvelope } from '../../src/protocol/codec.js';
import { trustedKeys } from '../../src/protocol/envelope.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs } from '../helpers/programs.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = promisify(execFile);

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

/** Run `ipphone-admin ARGS…` to its end; `live` sees its stdout so far while it runs. */
function admin(args: string[], timeoutMs = 30_000, live?: { stdout: string }, env?: NodeJS.ProcessEnv, argv?: string[]): Promise<Ran> {
  return new Promise((done) => {
    const [file, ...rest] = argv ?? [process.execPath, ...programArgs('ipphone-admin'), ...args];
    const child = spawn(file!, rest, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => {
      stdout += b.toString();
      if (live) live.stdout = stdout;
    });
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(killer);
      done({ code: code ?? -1, stdout, stderr });
    });
  });
}

const lines = (s: string): Record<string, unknown>[] => s.trim().split('\n').filter(Boolean).map((l) => JSON.parse(l) as Record<string, unknown>);

let mosq: Mosquitto;
let dir: string;
test.before(async () => {
  mosq = await startMosquitto();
  dir = mkdtempSync(join(tmpdir(), 'ipphone-admin-it-'));
});
test.after.always(async () => {
  await mosq?.stop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

test.serial('pointers --wait moves a real phone; the replayed version exits 1 with the rejection; an untrusted key exits 1; status --once prints it', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  c.startAgent('p-adm');
  await c.waitHome('p-adm', 'cm-a');

  const listFile = join(c.dir, 'list.json');
  const [a, b] = c.group;
  writeFileSync(listFile, JSON.stringify([b, a].map((p) => ({ id: p!.id, broker: p!.broker, services: p!.services }))));
  const version = Date.now();
  const push = ['pointers', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-adm', '--key', c.keyPath, '--kid', 'ops-1', '--list', listFile, '--version', String(version), '--wait'];

  const first = await admin(push);
  t.is(first.code, 0, first.stderr);
  const [shown] = lines(first.stdout);
  t.like(shown, { phone: 'p-adm', pointersVersion: version, online: true });
  await c.waitHome('p-adm', 'cm-b');
  t.like(await c.lastMove('p-adm', 'cm-b'), { from: 'cm-a', to: 'cm-b', reason: 'pushed' });

  const again = await admin(push);
  t.is(again.code, 1, again.stdout);
  t.regex(again.stderr, new RegExp(`not newer than held version ${version}`));
  t.like(lines(again.stdout)[0], { phone: 'p-adm', type: 'rejected', topic: `${c.prefix}/phone/p-adm/pointers` });

  const rogue = join(c.dir, 'rogue.pem');
  t.is((await admin(['keygen', '--out', rogue])).code, 0);
  const untrusted = await admin([...push.slice(0, 7), '--key', rogue, '--kid', 'rogue', '--list', listFile, '--wait']);
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /signed by unknown key "rogue"/);
  // A trusted key id with the wrong key: a bad signature.
  const forged = await admin([...push.slice(0, 7), '--key', rogue, '--kid', 'ops-1', '--list', listFile, '--wait']);
  t.is(forged.code, 1);
  t.regex(forged.stderr, /bad signature/);
  t.like(c.status('p-adm'), { home: 'cm-b', pointersVersion: version }, 'nothing changed');

  const one = await admin(['status', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-adm', '--once']);
  t.is(one.code, 0, one.stderr);
  const st = lines(one.stdout);
  t.is(st.length, 1);
  t.like(st[0], { phone: 'p-adm', online: true, home: 'cm-b', state: 'homed', pointersVersion: version });

  // Every phone under the prefix, over MQTT 3.1.1.
  const all = await admin(['status', '--broker', mosq.url, '--prefix', c.prefix, '--once', '--quiet', '300', '--mqtt-version', '4']);
  t.is(all.code, 0, all.stderr);
  t.deepEqual(lines(all.stdout).map((l) => l.phone), ['p-adm']);

  const none = await admin(['status', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-none', '--once', '--quiet', '300']);
  t.is(none.code, 1);
  t.regex(none.stderr, /phone p-none has no status/);
});

/** libfaketime (Debian `faketime`): the wall clock offset, the monotonic clock left alone as NTP does. */
const LIBFAKETIME = '/usr/lib/x86_64-linux-gnu/faketime/libfaketime.so.1';

test.serial('an operator whose clock is 10 min behind: pointers and config without --version still go above what the phone holds (issue 10)', async (t) => {
  t.true(existsSync(LIBFAKETIME), `${LIBFAKETIME} (Debian faketime) is needed`);
  const c = await Cluster.group(t, mosq.url);
  c.startAgent('p-skew');
  await c.waitHome('p-skew', 'cm-a');
  const behind = { LD_PRELOAD: LIBFAKETIME, FAKETIME: '-10m', FAKETIME_DONT_FAKE_MONOTONIC: '1' };
  const listFile = join(c.dir, 'skew-list.json');
  const [a, b] = c.group;
  writeFileSync(listFile, JSON.stringify([b, a].map((p) => ({ id: p!.id, broker: p!.broker, services: p!.services }))));
  // The phone holds a list versioned by this (correct) clock.
  const held = Date.now();
  const first = await admin(['pointers', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-skew', '--key', c.keyPath, '--kid', 'ops-1', '--list', listFile, '--version', String(held), '--wait']);
  t.is(first.code, 0, first.stderr);

  writeFileSync(listFile, JSON.stringify([a, b].map((p) => ({ id: p!.id, broker: p!.broker, services: p!.services }))));
  const late = await admin(['pointers', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-skew', '--key', c.keyPath, '--kid', 'ops-1', '--list', listFile, '--wait'], 30_000, undefined, behind);
  t.is(late.code, 0, late.stderr);
  t.like(lines(late.stdout)[0], { phone: 'p-skew', pointersVersion: held + 1 });
  await c.waitHome('p-skew', 'cm-a');

  const patch = join(c.dir, 'skew-patch.json');
  writeFileSync(patch, JSON.stringify({ log: { level: 'debug' } }));
  const cfgHeld = Date.now();
  const cfg1 = await admin(['config', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-skew', '--key', c.keyPath, '--kid', 'ops-1', '--file', patch, '--version', String(cfgHeld)]);
  t.is(cfg1.code, 0, cfg1.stderr);
  await waitFor(() => c.status('p-skew')?.configVersion === cfgHeld, { timeoutMs: 10_000, what: 'the config version in the status' });
  writeFileSync(patch, JSON.stringify({ log: { level: 'info' } }));
  const cfg2 = await admin(['config', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-skew', '--key', c.keyPath, '--kid', 'ops-1', '--file', patch], 30_000, undefined, behind);
  t.is(cfg2.code, 0, cfg2.stderr);
  t.regex(cfg2.stderr, new RegExp(`sent config version ${cfgHeld + 1}`));
});

test.serial('config against a real running agent: applied → exit 0; a schema error → exit 1 with the agent\'s reason', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  c.startAgent('p-adm-cfg');
  await c.waitHome('p-adm-cfg', 'cm-a');
  const good = join(c.dir, 'good-patch.json');
  writeFileSync(good, JSON.stringify({ keepalive: { intervalMs: 700 }, log: { level: 'debug' } }));
  const base = ['config', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-adm-cfg', '--key', c.keyPath, '--kid', 'ops-1'];
  const ok = await admin([...base, '--file', good]);
  t.is(ok.code, 0, ok.stderr);
  t.like(lines(ok.stdout)[0], { ok: true });
  const bad = join(c.dir, 'bad-patch.json');
  writeFileSync(bad, JSON.stringify({ keepalive: { intervalMs: 5 } }));
  const no = await admin([...base, '--file', bad]);
  t.is(no.code, 1);
  t.regex(no.stderr + no.stdout, /keepalive\/intervalMs/);
  t.like(c.status('p-adm-cfg'), { home: 'cm-a', state: 'homed' }, 'still homed');
});

test.serial('pointers without --wait: exit 0 once the broker has it; a live status follower sees the change', async (t) => {
  const c = await Cluster.group(t, mosq.url);
  c.startAgent('p-nw');
  await c.waitHome('p-nw', 'cm-a');
  const live = { stdout: '' };
  const follower = admin(['status', '--broker', mosq.url, '--prefix', c.prefix, '--timeout', '8000'], 30_000, live);
  // Only once the follower has the retained status is "first" well defined.
  await waitFor(() => live.stdout.includes('"p-nw"'), { timeoutMs: 10_000, what: 'the follower to print the retained status' });
  const listFile = join(c.dir, 'list.json');
  writeFileSync(listFile, JSON.stringify({ list: [c.group[1], c.group[0]] }));
  const sent = await admin(['pointers', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-nw', '--key', c.keyPath, '--kid', 'ops-1', '--list', listFile]);
  t.is(sent.code, 0, sent.stderr);
  t.like(lines(sent.stdout)[0], { phone: 'p-nw', reason: 'admin', list: ['cm-b', 'cm-a'], sent: true });
  await c.waitHome('p-nw', 'cm-b');
  const seen = await follower;
  t.is(seen.code, 0, seen.stderr);
  const homes = lines(seen.stdout).filter((l) => l.phone === 'p-nw').map((l) => l.home);
  t.is(homes[0], 'cm-a', 'the retained status first');
  t.true(homes.includes('cm-b'), `live statuses follow: ${homes.join(',')}`);
});

/** A phone that only answers config changes: opens the envelope like the agent and replies on config/result. */
async function fakePhone(prefix: string, phone: string, publicPem: string, answer: 'ok' | 'refuse' | 'silent'): Promise<{ client: MqttClient; got: Record<string, unknown>[] }> {
  const client = connect(mosq.url, { reconnectPeriod: 0, clientId: `fake-${phone}-${Date.now()}` });
  await new Promise<void>((done, fail) => {
    client.once('connect', () => done());
    client.once('error', fail);
  });
  const keys = trustedKeys({ 'ops-1': publicPem });
  const got: Record<string, unknown>[] = [];
  let held = 0;
  client.on('message', (_topic, payload) => {
    let reply: Record<string, unknown>;
    try {
      const body = openConfig(decodeEnvelope(payload), keys, { phoneId: phone, heldVersion: held, now: Date.now() });
      got.push(body as unknown as Record<string, unknown>);
      if (answer === 'silent') return;
      // An answer for another version first: the tool must wait for its own.
      client.publish(`${prefix}/phone/${phone}/config/result`, JSON.stringify({ version: body.version - 1, ok: false, error: 'stale' }), { qos: 1 });
      if (answer === 'refuse') reply = { version: body.version, ok: false, error: 'keepalive/intervalMs: must be at least 100 (got 5)' };
      else {
        held = body.version;
        reply = { version: body.version, ok: true };
      }
    } catch (err) {
      const v = (() => {
        try {
          return (JSON.parse(Buffer.from(decodeEnvelope(payload).body, 'base64').toString()) as { version: number }).version;
        } catch {
          return 0;
        }
      })();
      reply = { version: v, ok: false, error: (err as Error).message };
    }
    client.publish(`${prefix}/phone/${phone}/config/result`, JSON.stringify(reply), { qos: 1 });
  });
  await client.subscribeAsync(`${prefix}/phone/${phone}/config`, { qos: 1 });
  return { client, got };
}

test.serial('config: applied → exit 0 with the result; refused → exit 1 with the error; untrusted → exit 1; silent → timeout exit 1', async (t) => {
  const c = new Cluster(); // only for its keys and prefix
  t.teardown(() => c.close());
  const patch = join(c.dir, 'patch.json');
  writeFileSync(patch, JSON.stringify({ keepalive: { intervalMs: 2000 } }));
  const base = (phone: string): string[] => ['config', '--broker', mosq.url, '--prefix', c.prefix, '--phone', phone, '--file', patch];

  const ok = await fakePhone(c.prefix, 'f-ok', c.publicPem, 'ok');
  t.teardown(() => ok.client.endAsync());
  const applied = await admin([...base('f-ok'), '--key', c.keyPath, '--kid', 'ops-1', '--version', '10', '--expires-in', '60000']);
  t.is(applied.code, 0, applied.stderr);
  t.deepEqual(lines(applied.stdout), [{ version: 10, ok: true }]);
  t.like(ok.got[0], { version: 10, config: { keepalive: { intervalMs: 2000 } }, phone: 'f-ok' });
  t.true((ok.got[0]!.expires as number) > Date.now());
  // Default version: the time of sending.
  const before = Date.now();
  const dflt = await admin([...base('f-ok'), '--key', c.keyPath, '--kid', 'ops-1']);
  t.is(dflt.code, 0, dflt.stderr);
  t.true((ok.got[1]!.version as number) >= before && (ok.got[1]!.version as number) <= Date.now());
  // A replayed version: the phone refuses it.
  const replay = await admin([...base('f-ok'), '--key', c.keyPath, '--kid', 'ops-1', '--version', '10', '--timeout', '5000']);
  t.is(replay.code, 1);
  t.regex(replay.stderr, /not newer than held version/);

  const no = await fakePhone(c.prefix, 'f-no', c.publicPem, 'refuse');
  t.teardown(() => no.client.endAsync());
  const refused = await admin([...base('f-no'), '--key', c.keyPath, '--kid', 'ops-1']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /not applied by phone f-no: keepalive\/intervalMs: must be at least 100 \(got 5\)/);
  t.like(lines(refused.stdout)[0], { ok: false });

  const rogue = join(c.dir, 'rogue.pem');
  t.is((await admin(['keygen', '--out', rogue])).code, 0);
  const untrusted = await admin([...base('f-no'), '--key', rogue, '--kid', 'rogue']);
  t.is(untrusted.code, 1);
  t.regex(untrusted.stderr, /signed by unknown key "rogue"/);

  const quiet = await fakePhone(c.prefix, 'f-quiet', c.publicPem, 'silent');
  t.teardown(() => quiet.client.endAsync());
  const started = Date.now();
  const timedOut = await admin([...base('f-quiet'), '--key', c.keyPath, '--kid', 'ops-1', '--timeout', '700']);
  t.is(timedOut.code, 1);
  t.regex(timedOut.stderr, /no config result for version \d+ from phone f-quiet within 700 ms/);
  t.is(quiet.got.length, 1, 'the phone did receive it');
  t.true(Date.now() - started < 15_000);
});

test.serial('pointers --wait for a phone that is not there: exit 1 after --timeout, saying so', async (t) => {
  const c = new Cluster(); // only for its keys and prefix
  t.teardown(() => c.close());
  const listFile = join(c.dir, 'list.json');
  writeFileSync(listFile, JSON.stringify([{ id: 'cm-a', broker: mosq.url, services: 'http://127.0.0.1:1/services' }]));
  const r = await admin(['pointers', '--broker', mosq.url, '--prefix', c.prefix, '--phone', 'p-gone', '--key', c.keyPath, '--kid', 'ops-1', '--list', listFile, '--wait', '--timeout', '600']);
  t.is(r.code, 1);
  t.regex(r.stderr, /phone p-gone did not show pointers version \d+ within 600 ms/);
  t.is(r.stdout, '');
});

test.serial('keygen files are read by openssl; a second keygen refuses to overwrite', async (t) => {
  const out = join(dir, 'ops-9.pem');
  const r = await admin(['keygen', '--out', out]);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /kid hint: +ops-9/);
  t.is(statSync(out).mode & 0o777, 0o600);
  await t.notThrowsAsync(run('openssl', ['pkey', '-in', out, '-noout']));
  await t.notThrowsAsync(run('openssl', ['pkey', '-pubin', '-in', `${out}.pub`, '-noout']));
  // The raw public key printed is the one in the .pub file.
  const { stdout: der } = await run('openssl', ['pkey', '-pubin', '-in', `${out}.pub`, '-outform', 'DER'], { encoding: 'buffer' });
  t.true(r.stdout.includes((der as unknown as Buffer).subarray(12).toString('base64')));
  const before = readFileSync(out, 'utf8');
  const again = await admin(['keygen', '--out', out]);
  t.is(again.code, 1);
  t.regex(again.stderr, /exists; use --force/);
  t.is(readFileSync(out, 'utf8'), before);
});

test.serial('an unreachable broker: refused → exit 1 at once; silent → exit 1 after the connect timeout; bad args → exit 2', async (t) => {
  const port = await freePort();
  const refused = await admin(['status', '--broker', `mqtt://user:s3cret@127.0.0.1:${port}`, '--password', 'hunter2', '--once']);
  t.is(refused.code, 1);
  t.regex(refused.stderr, /cannot connect to broker mqtt:\/\/127\.0\.0\.1:\d+: .*ECONNREFUSED/);
  t.false(refused.stderr.includes('s3cret') || refused.stderr.includes('hunter2'), 'no secret printed');

  // Accepts TCP, never answers MQTT.
  const silent: Server = createServer(() => {});
  await new Promise<void>((done) => silent.listen(0, '127.0.0.1', done));
  t.teardown(() => silent.close());
  const addr = silent.address();
  const sport = typeof addr === 'object' && addr ? addr.port : 0;
  const timed = await admin(['status', '--broker', `mqtt://127.0.0.1:${sport}`, '--once', '--connect-timeout', '500']);
  t.is(timed.code, 1);
  t.regex(timed.stderr, /no answer within 500 ms/);

  const bad = await admin(['pointers', '--broker', mosq.url]);
  t.is(bad.code, 2);
  t.regex(bad.stderr, /--phone is required.*\nUsage: ipphone-admin pointers/);
  const help = await admin(['status', '--help']);
  t.is(help.code, 0);
  t.regex(help.stdout, /--once/);
});

/** A call manager config as the contract shows it, with the given group ids. */
function cmConfig(ids: string[], extra: Record<string, unknown> = {}): string {
  const file = join(dir, `cm-${Math.random().toString(16).slice(2)}.json`);
  writeFileSync(
    file,
    JSON.stringify({
      cmId: ids[0],
      broker: 'mqtts://127.0.0.1:8883',
      http: { host: '127.0.0.1', port: 8081 },
      group: ids.map((id, i) => ({ id, broker: 'mqtts://127.0.0.1:8883', services: `http://127.0.0.1:${8081 + i}/services`, capacity: 1000 })),
      signingKey: '/nonexistent/ops-1.pem', // not read by `acl`
      keyId: 'ops-1',
      ...extra,
    }),
  );
  return file;
}

test('acl prints the group\'s acl_file from a call manager config; the signing key is not needed', async (t) => {
  const r = await admin(['acl', '--config', cmConfig(['cm-a', 'cm-b'], { topicPrefix: 'site1/v1' }), '--operator', 'ops-1', '--operator', 'ops-2']);
  t.is(r.code, 0, r.stderr);
  t.is(r.stderr, '');
  const rules = r.stdout.split('\n').filter((l) => l !== '' && !l.startsWith('#'));
  t.deepEqual(rules.filter((l) => l.startsWith('user ')), ['user cm-a', 'user cm-b', 'user ops-1', 'user ops-2']);
  t.true(rules.includes('pattern write site1/v1/phone/%u/status'));
  t.true(rules.includes('topic write site1/v1/cm/cm-b/state'));
  t.regex(r.stdout, /mosquitto#3552/);
});

test('acl refuses ids mosquitto cannot pattern-match safely, naming each: exit 1, nothing on stdout', async (t) => {
  const r = await admin(['acl', '--config', cmConfig(['cm-a', 'cm+b', 'cm/c']), '--operator', 'ops#1', '--operator', 'ops 2']);
  t.is(r.code, 1);
  t.is(r.stdout, '');
  for (const re of [/call manager id "cm\+b": contains "\+"/, /call manager id "cm\/c": contains "\/"/, /operator id "ops#1": contains "#"/, /operator id "ops 2": contains whitespace/, /CVE-2017-7650/]) {
    t.regex(r.stderr, re);
  }
});

test('acl: a config that is not a call manager config, or is missing, is exit 1 with its problems', async (t) => {
  const bad = await admin(['acl', '--config', cmConfig(['cm-a'], { group: [] })]);
  t.is(bad.code, 1);
  t.regex(bad.stderr, /not a valid call manager config/);
  const missing = await admin(['acl', '--config', join(dir, 'nope.json')]);
  t.is(missing.code, 1);
  t.regex(missing.stderr, /cannot read/);
  const usage = await admin(['acl']);
  t.is(usage.code, 2);
  t.regex(usage.stderr, /--config is required/);
});

test('a missing or non-PEM TLS file is an error naming it, before any connection', async (t) => {
  const notPem = join(dir, 'not-a-cert.pem');
  writeFileSync(notPem, 'hello');
  // Port 1: nothing listens; the error must be about the files, not the broker.
  const r = await admin(['status', '--broker', 'mqtts://127.0.0.1:1', '--ca', join(dir, 'missing-ca.pem'), '--cert', notPem, '--tls-key', join(dir, 'missing.key'), '--once']);
  t.is(r.code, 1);
  t.regex(r.stderr, /--ca \S*missing-ca\.pem: cannot read it \(ENOENT\)/);
  t.regex(r.stderr, /--cert \S*not-a-cert\.pem: is not a PEM file/);
  t.regex(r.stderr, /--tls-key \S*missing\.key: cannot read it \(ENOENT\)/);
  t.notRegex(r.stderr, /cannot connect/);
});

/** Run `ipphone-admin ARGS…` with its stdout on a real terminal (util-linux `script` gives it a pty); what the terminal showed. */
async function adminOnTerminal(args: string[]): Promise<Ran> {
  const command = [process.execPath, ...programArgs('ipphone-admin'), ...args].map((a) => `'${a.replace(/'/g, `'\\''`)}'`).join(' ');
  return admin([], 30_000, undefined, undefined, ['script', '-qefc', command, '/dev/null']);
}

test.serial('status --once on a terminal prints a table (phone, online, state, home…); --json keeps the JSON lines; a pipe gets JSON lines', async (t) => {
  const prefix = `tbl${Math.random().toString(16).slice(2, 8)}/v1`;
  const pub = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => pub.end(true));
  await new Promise<void>((done, fail) => {
    pub.once('connect', () => done());
    pub.once('error', fail);
  });
  await pub.publishAsync(`${prefix}/phone/p-tbl-1/status`, JSON.stringify({ online: true, home: 'cm-a', services: 'cm-a', state: 'homed', pointersVersion: 12, configVersion: 3, rehomes: 2 }), { qos: 1, retain: true });
  await pub.publishAsync(`${prefix}/phone/p-tbl-2/status`, JSON.stringify({ online: false }), { qos: 1, retain: true });
  const base = ['status', '--broker', mosq.url, '--prefix', prefix, '--once', '--quiet', '300'];

  const tty = await adminOnTerminal(base);
  t.is(tty.code, 0, tty.stdout + tty.stderr);
  const rows = tty.stdout.replace(/\r/g, '').trimEnd().split('\n');
  t.deepEqual(rows.map((r) => r.split(/\s+/)), [
    ['PHONE', 'ONLINE', 'STATE', 'HOME', 'SERVICES', 'SIP', 'POINTERS', 'CONFIG', 'REHOMES'],
    ['p-tbl-1', 'yes', 'homed', 'cm-a', 'cm-a', '-', '12', '3', '2'],
    ['p-tbl-2', 'no', 'offline', '-', '-', '-', '-', '-', '-'],
  ], tty.stdout);

  const json = await adminOnTerminal([...base, '--json']);
  t.is(json.code, 0, json.stdout);
  t.deepEqual(lines(json.stdout.replace(/\r/g, '')).map((l) => [l.phone, l.online]), [['p-tbl-1', true], ['p-tbl-2', false]]);

  // Scripts (stdout a pipe) keep the JSON lines without a flag; --table forces the table there.
  const piped = await admin(base);
  t.deepEqual(lines(piped.stdout).map((l) => l.phone).sort(), ['p-tbl-1', 'p-tbl-2']);
  const forced = await admin([...base, '--table']);
  t.regex(forced.stdout, /^PHONE\s+ONLINE\s+STATE/);
  await pub.publishAsync(`${prefix}/phone/p-tbl-1/status`, '', { qos: 1, retain: true });
  await pub.publishAsync(`${prefix}/phone/p-tbl-2/status`, '', { qos: 1, retain: true });
});
