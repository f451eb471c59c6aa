/**
 * The console as call-manager.ts wires it (console.ts), fed phones' messages
 * as they arrive from the broker: what it counts for `/metrics`
 * (`ipphone_cm_rehomes_total`) and what it shows (issue 15 §5).
 */
import test from 'ava';
import { pino } from 'pino';
import { FakeClock } from '../../../src/lib/clock.js';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { ConsoleAuth } from '../../../src/callmanager/console-auth.js';
import { CmConsole } from '../../../src/callmanager/console.js';
import { REHOME_BURST, REHOMES_MAX, REHOMES_PER_PHONE } from '../../../src/callmanager/console-model.js';

const TOKEN = 'a-console-token-of-32-characters';

function cons(withAuth = false): { c: CmConsole; clock: FakeClock } {
  const clock = new FakeClock();
  const c = new CmConsole({
    ...(withAuth ? { auth: new ConsoleAuth({ token: TOKEN, clock }) } : {}),
    cmId: 'cm-b',
    group: [
      { id: 'cm-a', capacity: 10 },
      { id: 'cm-b', capacity: 10 },
    ],
    prefix: 'ipphone/v1',
    clock,
    log: pino({ level: 'silent' }),
    host: { measure: () => ({ connected: true, phones: 0, servicesRps: 0 }), moves: () => ({ moves: [], queued: 0 }), pointers: () => ({ version: 1, reason: 'failover', list: ['cm-a', 'cm-b'] }), homedHere: () => false },
  });
  return { c, clock };
}

const rehomed = (reason = 'cm-offline'): Buffer => Buffer.from(JSON.stringify({ type: 'rehomed', from: 'cm-a', to: 'cm-b', reason, detectMs: 1, rehomeMs: 2 }));

test('rehomes-total-limited-per-phone: 60 forged rehomed events from one phone add REHOME_BURST to ipphone_cm_rehomes_total, not 60', (t) => {
  const { c } = cons();
  c.onMessage('ipphone/v1/phone/p-1/event', rehomed());
  c.onMessage('ipphone/v1/phone/p-2/event', rehomed());
  t.is(c.rehomesHere.get('cm-offline'), 2);
  for (let i = 0; i < 60; i++) c.onMessage('ipphone/v1/phone/p-forger/event', rehomed());
  t.is(c.rehomesHere.get('cm-offline'), 2 + REHOME_BURST, 'was 62 before the limit');
  t.is(c.rehomesLimited, 60 - REHOME_BURST);
});


/** A GET through CmConsole.handle with fake request and response objects. */
function get(c: CmConsole, url: string, headers: Record<string, string> = {}): { status: number; body: string; headers: Record<string, unknown> } {
  const req = Object.assign(new EventEmitter(), { url, method: 'GET', headers, socket: { remoteAddress: '10.0.0.5' } });
  const out = { status: 0, body: '', headers: {} as Record<string, unknown> };
  const res = Object.assign(new EventEmitter(), {
    writableLength: 0,
    writeHead(status: number, h: Record<string, unknown>) {
      out.status = status;
      out.headers = h;
      return res;
    },
    write(s: string) {
      out.body += s;
      return true;
    },
    end(b?: Buffer | string) {
      if (b !== undefined) out.body += b.toString();
    },
  });
  if (!c.handle(req as unknown as IncomingMessage, res as unknown as ServerResponse)) throw new Error(`${url} is not a console path`);
  return out;
}

test('no-token-no-console: without a token every console path is 404 with no group data; phones\' events still count', (t) => {
  const { c } = cons(false);
  c.onMessage('ipphone/v1/phone/p-1/event', rehomed());
  for (const path of ['/', '/console/events', '/console/phone?id=p-1']) {
    const r = get(c, path, { authorization: `Bearer ${TOKEN}` });
    t.is(r.status, 404, path);
    t.notRegex(r.body, /p-1|cm-a/, path);
  }
  t.is(c.rehomesHere.get('cm-offline'), 1);
});

test('recent-rehomes-fair: the snapshot an operator\'s stream starts from holds at most REHOMES_PER_PHONE of a forging phone', (t) => {
  const { c, clock } = cons(true);
  for (let i = 0; i < REHOMES_MAX; i++) c.onMessage(`ipphone/v1/phone/p-${i}/event`, rehomed());
  for (let i = 0; i < 60; i++) {
    clock.advance(1000);
    c.onMessage('ipphone/v1/phone/p-forger/event', rehomed('forged'));
  }
  t.is(get(c, '/console/events').status, 401, 'no stream without credentials');
  const r = get(c, '/console/events', { authorization: `Bearer ${TOKEN}` });
  t.is(r.status, 200);
  const snap = JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(r.body)![1]!) as { rehomes: { phone: string }[] };
  t.is(snap.rehomes.length, REHOMES_MAX);
  t.is(snap.rehomes.filter((x) => x.phone === 'p-forger').length, REHOMES_PER_PHONE, 'was all 50 before');
  c.stop();
});

test('phone-lookup-unknown-404: an unknown id is 404 with no list; a known one needs credentials', (t) => {
  const { c } = cons(true);
  c.onMessage('ipphone/v1/phone/p-1/status', Buffer.from('{"online":true,"home":"cm-a"}'));
  t.is(get(c, '/console/phone?id=p-1').status, 401);
  t.notRegex(get(c, '/console/phone?id=p-1').body, /cm-a/);
  const known = get(c, '/console/phone?id=p-1', { authorization: `Bearer ${TOKEN}` });
  t.is(known.status, 200);
  t.like(JSON.parse(known.body), { id: 'p-1', status: { home: 'cm-a' }, pointers: { list: ['cm-a', 'cm-b'] } });
  const unknown = get(c, '/console/phone?id=p-nobody', { authorization: `Bearer ${TOKEN}` });
  t.is(unknown.status, 404);
  t.deepEqual(JSON.parse(unknown.body), { error: 'nothing heard of phone p-nobody' }, 'no pointers, no status');
});

test('login-form-without-credentials: GET / answers 401 with the login form, no group data; with the token the page', (t) => {
  const { c } = cons(true);
  const r = get(c, '/');
  t.is(r.status, 401);
  t.regex(r.body, /action="\/console\/login"/);
  t.notRegex(r.body, /<script/);
  t.like(r.headers, { 'www-authenticate': 'Bearer realm="ipphone console"' });
  const ok = get(c, '/', { authorization: `Bearer ${TOKEN}` });
  t.is(ok.status, 200);
  t.regex(ok.body, /<script>/);
});
