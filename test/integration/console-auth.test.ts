/**
 * The operator console's access rules over real HTTP, against a real
 * `ipphone-cm` on a real mosquitto (issue 15 §4, shared/CONTRACT.md "Call
 * manager HTTP"): requests made with node:http as curl would make them (from
 * chosen loopback source addresses where the rule is per address). Serial:
 * every test runs a `cm-a` on the one broker, and one call manager id is one
 * MQTT client id (two at once would take each other's session over).
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { request, type IncomingMessage, type ClientRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { programArgs, ROOT } from '../helpers/programs.js';

const TOKEN = 'console-token-for-tests-0123456789abcdef';

let mosq: Mosquitto;
let dir: string;
let tokenFile: string;
test.before(async () => {
  mosq = await startMosquitto();
  dir = mkdtempSync(join(tmpdir(), 'ipphone-console-auth-'));
  tokenFile = join(dir, 'console.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
});
test.after.always(async () => {
  await mosq?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const base = (c: Cluster, id = 'cm-a'): string => c.group.find((g) => g.id === id)!.services.replace(/\/services$/, '');

interface Answer {
  status: number;
  headers: IncomingMessage['headers'];
  body: string;
}

/** One request to its end, as `curl` would make it; `from` is the source address. */
function http(url: string, o: { method?: string; headers?: Record<string, string>; body?: string; from?: string } = {}): Promise<Answer> {
  return new Promise((done, fail) => {
    const req = request(url, { method: o.method ?? 'GET', headers: o.headers ?? {}, ...(o.from !== undefined ? { localAddress: o.from } : {}), agent: false }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (s: string) => (body += s));
      res.on('end', () => done({ status: res.statusCode ?? 0, headers: res.headers, body }));
      res.on('error', fail);
    });
    req.on('error', fail);
    req.end(o.body);
  });
}

interface Stream {
  status: number;
  /** What arrived so far. */
  text(): string;
  ended(): boolean;
  close(): void;
}

/** `curl -N …/console/events`: the stream left open, read as it comes. */
function stream(url: string, o: { headers?: Record<string, string>; from?: string } = {}): Promise<Stream> {
  return new Promise((done, fail) => {
    const req: ClientRequest = request(url, { headers: o.headers ?? {}, ...(o.from !== undefined ? { localAddress: o.from } : {}), agent: false }, (res) => {
      let text = '';
      let ended = false;
      res.setEncoding('utf8');
      res.on('data', (s: string) => (text += s));
      res.on('end', () => (ended = true));
      res.on('close', () => (ended = true));
      res.on('error', () => (ended = true));
      done({ status: res.statusCode ?? 0, text: () => text, ended: () => ended, close: () => req.destroy() });
    });
    req.on('error', fail);
    req.end();
  });
}

const bearer = { authorization: `Bearer ${TOKEN}` };
const CONSOLE_PATHS = ['/', '/console/events', '/console/phone?id=p-1'];

/** A phone's retained status and one event on the cluster's broker, so the console has data to leak. */
async function phoneData(c: Cluster, phone: string): Promise<void> {
  const pub = connect(mosq.url, { reconnectPeriod: 0 });
  await new Promise<void>((ok, fail) => {
    pub.once('connect', () => ok());
    pub.once('error', fail);
  });
  await pub.publishAsync(`${c.prefix}/phone/${phone}/status`, JSON.stringify({ online: true, home: 'cm-a', state: 'homed' }), { qos: 1, retain: true });
  // The retained status arrives whenever the call manager's subscription is made; the event only once it is.
  await waitFor(async () => (await http(`${base(c)}/console/phone?id=${phone}`, { headers: bearer })).status === 200, { timeoutMs: 20_000, what: `the console heard ${phone}'s status` });
  await pub.publishAsync(`${c.prefix}/phone/${phone}/event`, JSON.stringify({ type: 'rehomed', from: 'cm-b', to: 'cm-a', reason: 'fallback' }), { qos: 1 });
  await pub.endAsync();
  await waitFor(async () => (await http(`${base(c)}/console/phone?id=${phone}`, { headers: bearer })).body.includes('"type":"rehomed"'), { timeoutMs: 20_000, what: `the console heard ${phone}'s event` }).catch(async (err: Error) => {
    const seen = await http(`${base(c)}/console/phone?id=${phone}`, { headers: bearer });
    throw new Error(`${err.message}\nlookup: ${seen.status} ${seen.body}\n${c.cms.get('cm-a')!.output().slice(-3000)}`);
  });
}

test.serial('no-token-no-console: without console.tokenFile every console path is 404 with no group data; services, healthz and metrics unchanged', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  for (const path of CONSOLE_PATHS) {
    for (const headers of [{}, bearer]) {
      const r = await http(`${base(c)}${path}`, { headers });
      t.is(r.status, 404, path);
      t.notRegex(r.body, /cm-a|members|snapshot/, `${path}: no group data`);
    }
  }
  t.is((await http(`${base(c)}/console/login`, { method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `token=${TOKEN}` })).status, 404);
  t.is((await http(`${base(c)}/services?phone=p-1`)).status, 200);
  await waitFor(async () => (await http(`${base(c)}/healthz`)).status === 200, { timeoutMs: 20_000, what: 'healthz 200' });
  t.regex((await http(`${base(c)}/metrics`)).body, /^ipphone_cm_rehomes_total\{reason="cm-offline"\} 0$/m, 'phones\' events still followed for /metrics');
});

test.serial('wrong-or-missing-token-401: every console path answers 401 and no data without the token or with a wrong one', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: true, tokenFile } });
  await phoneData(c, 'p-1');
  for (const path of CONSOLE_PATHS) {
    for (const headers of <Record<string, string>[]>[{}, { authorization: 'Bearer wrong-token-0123456789' }, { authorization: `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}` }, { cookie: `ipphone_console=${TOKEN}` }]) {
      const r = await http(`${base(c)}${path}`, { headers, from: '127.0.0.11' });
      t.is(r.status, 401, `${path} ${JSON.stringify(headers)}`);
      t.notRegex(r.body, /p-1|"members"|event: snapshot|cm-b/, `${path}: no data`);
      t.is(r.headers['www-authenticate'], 'Bearer realm="ipphone console"');
    }
  }
  const page = await http(`${base(c)}/`);
  t.regex(page.body, /<form method="post" action="\/console\/login">/, 'GET / shows the login form');
});

test.serial('bearer-token: Authorization: Bearer opens the page, the phone lookup and the stream', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: true, tokenFile } });
  await phoneData(c, 'p-1');
  const page = await http(`${base(c)}/`, { headers: bearer });
  t.is(page.status, 200);
  t.regex(page.body, /<script>/);
  const phone = await http(`${base(c)}/console/phone?id=p-1`, { headers: bearer });
  t.is(phone.status, 200);
  t.like(JSON.parse(phone.body), { id: 'p-1', status: { home: 'cm-a' } });
  const s = await stream(`${base(c)}/console/events`, { headers: bearer });
  t.teardown(() => s.close());
  t.is(s.status, 200);
  await waitFor(() => s.text().includes('event: snapshot') && s.text().includes('"phone":"p-1"'), { timeoutMs: 10_000, what: 'the snapshot with p-1\'s rehome' });
});

test.serial('session-cookie: logging in with the form sets an HttpOnly SameSite=Strict cookie that is not the token; it opens the console; wrong token 401; cross-site 403; logout ends it', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: true, tokenFile } });
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const wrong = await http(`${base(c)}/console/login`, { method: 'POST', headers: form, body: 'token=not-the-token-at-all', from: '127.0.0.12' });
  t.is(wrong.status, 401);
  t.is(wrong.headers['set-cookie'], undefined);
  t.regex(wrong.body, /Wrong token/);
  const cross = await http(`${base(c)}/console/login`, { method: 'POST', headers: { ...form, origin: 'http://evil.example' }, body: `token=${TOKEN}` });
  t.is(cross.status, 403, 'a form posted from another site');
  t.is(cross.headers['set-cookie'], undefined);
  t.is((await http(`${base(c)}/console/login`, { headers: form })).status, 405, 'no state-changing GET');

  const ok = await http(`${base(c)}/console/login`, { method: 'POST', headers: form, body: `token=${encodeURIComponent(TOKEN)}` });
  t.is(ok.status, 303);
  t.is(ok.headers.location, '/');
  const setCookie = ok.headers['set-cookie']![0]!;
  t.regex(setCookie, /^ipphone_console=[A-Za-z0-9_-]{43}; Path=\/; HttpOnly; SameSite=Strict; Max-Age=43200$/);
  t.false(setCookie.includes(TOKEN), 'the cookie is not the token');
  const cookie = setCookie.split(';')[0]!;
  t.is((await http(`${base(c)}/`, { headers: { cookie } })).status, 200);
  t.is((await http(`${base(c)}/console/phone?id=p-nobody`, { headers: { cookie } })).status, 404);
  const s = await stream(`${base(c)}/console/events`, { headers: { cookie } });
  t.teardown(() => s.close());
  t.is(s.status, 200);
  await waitFor(() => s.text().includes('event: snapshot'), { timeoutMs: 10_000, what: 'the snapshot' });

  const out = await http(`${base(c)}/console/logout`, { method: 'POST', headers: { cookie, 'content-type': 'application/x-www-form-urlencoded' } });
  t.is(out.status, 303);
  t.regex(out.headers['set-cookie']![0]!, /^ipphone_console=; .*Max-Age=0$/);
  t.is((await http(`${base(c)}/`, { headers: { cookie } })).status, 401, 'the session ended');
});

test.serial('login-rate-limited-per-address: after 10 wrong tokens from one address even the right one is 429 there; another address logs in', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: true, tokenFile } });
  const form = { 'content-type': 'application/x-www-form-urlencoded' };
  const statuses: number[] = [];
  for (let i = 0; i < 10; i++) statuses.push((await http(`${base(c)}/console/login`, { method: 'POST', headers: form, body: `token=guess-${i}-0123456789abcdef`, from: '127.0.0.13' })).status);
  t.deepEqual(statuses, Array<number>(10).fill(401));
  const limited = await http(`${base(c)}/console/login`, { method: 'POST', headers: form, body: `token=${TOKEN}`, from: '127.0.0.13' });
  t.is(limited.status, 429);
  t.regex(String(limited.headers['retry-after']), /^\d+$/);
  t.is(limited.headers['set-cookie'], undefined);
  t.is((await http(`${base(c)}/`, { headers: bearer, from: '127.0.0.13' })).status, 429, 'Bearer from there too');
  t.is((await http(`${base(c)}/console/login`, { method: 'POST', headers: form, body: `token=${TOKEN}`, from: '127.0.0.14' })).status, 303);
});

test.serial('idle-streams-cannot-lock-out: 17 idle unauthenticated streams get 401 and hold nothing; 16 authenticated ones from 4 addresses do not lock out an operator from a fifth', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: true, tokenFile } });
  const url = `${base(c)}/console/events`;
  const idle = await Promise.all(Array.from({ length: 17 }, (_, i) => stream(url, { from: `127.0.1.${i + 1}` })));
  t.teardown(() => idle.forEach((s) => s.close()));
  t.deepEqual(idle.map((s) => s.status), Array<number>(17).fill(401));
  const op = await stream(url, { headers: bearer, from: '127.0.0.20' });
  t.teardown(() => op.close());
  t.is(op.status, 200, 'the operator gets a stream');
  await waitFor(() => op.text().includes('event: snapshot'), { timeoutMs: 10_000, what: 'the operator\'s snapshot' });
  op.close();

  // With the token (a leaked one, or a stuck script): at most 4 streams per address …
  const held: Stream[] = [];
  t.teardown(() => held.forEach((s) => s.close()));
  for (let a = 0; a < 4; a++) for (let i = 0; i < 4; i++) held.push(await stream(url, { headers: bearer, from: `127.0.2.${a + 1}` }));
  t.deepEqual(held.map((s) => s.status), Array<number>(16).fill(200));
  const fifth = await http(url, { headers: bearer, from: '127.0.2.1' });
  t.is(fifth.status, 429, 'a fifth from one address');
  // … and a new operator ends the oldest stream instead of being refused.
  const late = await stream(url, { headers: bearer, from: '127.0.0.21' });
  t.teardown(() => late.close());
  t.is(late.status, 200);
  await waitFor(() => held[0]!.ended() && held[0]!.text().includes('event: ended\ndata: {"why":"evicted"}'), { timeoutMs: 10_000, what: 'the oldest stream ended' });
  t.false(held[1]!.ended());
});

test.serial('phone-lookup-unknown-404: an unknown id is 404 with no list, for an operator; a known one 200', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: true, tokenFile } });
  await phoneData(c, 'p-known');
  const r = await http(`${base(c)}/console/phone?id=p-unknown-anything`, { headers: bearer });
  t.is(r.status, 404);
  t.deepEqual(JSON.parse(r.body), { error: 'nothing heard of phone p-unknown-anything' });
  t.is((await http(`${base(c)}/console/phone?id=p-known`, { headers: bearer })).status, 200);
});

/** `ipphone-cm ARGS…` to its end. */
function cm(args: string[]): Promise<{ code: number; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...programArgs('ipphone-cm'), ...args], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.once('exit', (code) => {
      clearTimeout(killer);
      done({ code: code ?? -1, stderr });
    });
  });
}

test.serial('console-token-config: a missing, empty or short token file is one line and exit 1, from --check-config and at start', async (t) => {
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([{ id: 'cm-a', broker: mosq.url }]);
  const cases: [string, string, RegExp][] = [
    ['missing', join(dir, 'nope.token'), /cannot read ".*nope\.token": ENOENT/],
    ['empty', join(dir, 'empty.token'), /is empty/],
    ['short', join(dir, 'short.token'), /is too short \(5 characters; at least 16/],
  ];
  writeFileSync(join(dir, 'empty.token'), '\n');
  writeFileSync(join(dir, 'short.token'), 'abcde\n');
  for (const [name, file, want] of cases) {
    const cfg = join(c.dir, `${name}.json`);
    writeFileSync(cfg, JSON.stringify({ cmId: 'cm-a', broker: mosq.url, http: { port: 0 }, group: c.group, signingKey: c.keyPath, keyId: 'ops-1', topicPrefix: c.prefix, stateDir: join(c.dir, 'st'), console: { tokenFile: file } }));
    for (const flag of ['--check-config', '--config']) {
      const r = await cm([flag, cfg]);
      t.is(r.code, 1, `${name} ${flag}`);
      const lines = r.stderr.trim().split('\n');
      t.is(lines.length, 1, `${name} ${flag}: one line: ${r.stderr}`);
      t.regex(lines[0]!, /console\/tokenFile/);
      t.regex(lines[0]!, want);
    }
  }
});
