import test from 'ava';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeClock } from '../../../src/lib/clock.js';
import { CONSOLE_CSP, CONSOLE_HEADERS, consolePage, escapeHtml, LOGIN_CSP, LOGIN_HEADERS, loginPage } from '../../../src/callmanager/console-page.js';
import { admit, SseHub, sseFrame, type StreamOwner } from '../../../src/callmanager/console-sse.js';

const hash = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

test('escapeHtml: every character that can open markup or end an attribute', (t) => {
  t.is(escapeHtml(`<script>alert("x")</script>&'`), '&#60;script&#62;alert(&#34;x&#34;)&#60;/script&#62;&#38;&#39;');
  t.is(escapeHtml('cm-a'), 'cm-a');
});

test('the page: one inline style and one inline script, exactly those allowed by the CSP hashes', (t) => {
  const html = consolePage('cm-a');
  const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
  const scripts = [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)].map((m) => m[1]!);
  t.is(styles.length, 1);
  t.is(scripts.length, 1);
  t.true(CONSOLE_CSP.includes(`style-src ${hash(styles[0]!)}`));
  t.true(CONSOLE_CSP.includes(`script-src ${hash(scripts[0]!)}`));
  t.regex(CONSOLE_CSP, /default-src 'none'/);
  t.notRegex(CONSOLE_CSP, /unsafe-inline|unsafe-eval|\*/);
  t.is(CONSOLE_HEADERS['content-security-policy'], CONSOLE_CSP);
});

test('the page loads nothing from anywhere: no URLs, no src/href, no innerHTML', (t) => {
  const html = consolePage('cm-a');
  t.notRegex(html, /https?:\/\//);
  t.notRegex(html, /\s(src|href)=/i);
  t.notRegex(html, /innerHTML|outerHTML|insertAdjacentHTML|document\.write/);
  t.notRegex(html, /@import|url\(/);
});

test('login-form: a password field posted to this origin, no script, no group data; its CSP allows only its style and same-origin forms', (t) => {
  const html = loginPage('cm-a', '<b>Wrong token.</b>');
  t.regex(html, /<form method="post" action="\/console\/login">/);
  t.regex(html, /<input id="token" name="token" type="password"/);
  t.notRegex(html, /<script/i);
  t.notRegex(html, /https?:\/\//);
  t.regex(html, /&#60;b&#62;Wrong token\.&#60;\/b&#62;/, 'the message is escaped');
  const styles = [...html.matchAll(/<style>([\s\S]*?)<\/style>/g)].map((m) => m[1]!);
  t.true(LOGIN_CSP.includes(`style-src ${hash(styles[0]!)}`));
  t.regex(LOGIN_CSP, /default-src 'none'/);
  t.regex(LOGIN_CSP, /form-action 'self'/);
  t.notRegex(LOGIN_CSP, /script-src|unsafe-inline|\*/);
  t.is(LOGIN_HEADERS['content-security-policy'], LOGIN_CSP);
  t.regex(CONSOLE_CSP, /form-action 'self'/, 'the console page posts its log-out form to this origin only');
});

test('the call manager id in the title is escaped', (t) => {
  t.regex(consolePage('<b>x</b>'), /<title>ipphone console — &#60;b&#62;x&#60;\/b&#62;<\/title>/);
});

test('sseFrame: one data line whatever the strings hold', (t) => {
  const f = sseFrame('rehome', { phone: 'a\nb\r\nc' });
  t.is(f, 'event: rehome\ndata: {"phone":"a\\nb\\r\\nc"}\n\n');
});

/** A response that records what was written and can be made to stop reading. */
class FakeRes extends EventEmitter {
  status = 0;
  headers: Record<string, unknown> = {};
  chunks: string[] = [];
  ended = false;
  destroyed = false;
  writableLength = 0;
  writeHead(status: number, headers: Record<string, unknown>): this {
    this.status = status;
    this.headers = headers;
    return this;
  }
  write(s: string): boolean {
    this.chunks.push(s);
    return true;
  }
  end(s?: string): void {
    if (s !== undefined) this.chunks.push(s);
    this.ended = true;
  }
  destroy(): void {
    this.destroyed = true;
  }
}

function client(hub: SseHub, snapshot: unknown = { n: 1 }, owner?: StreamOwner): FakeRes {
  const res = new FakeRes();
  hub.accept(new EventEmitter() as unknown as IncomingMessage, res as unknown as ServerResponse, () => snapshot, owner);
  return res;
}

test('SSE: snapshot first, then broadcasts; a client that does not read is dropped; stop ends all', (t) => {
  const clock = new FakeClock();
  const hub = new SseHub({ clock, maxClients: 2, maxBufferBytes: 100, heartbeatMs: 1000, headers: { 'x-test': '1' } });
  const a = client(hub);
  const b = client(hub);
  t.is(a.status, 200);
  t.like(a.headers, { 'content-type': 'text/event-stream; charset=utf-8', 'x-test': '1' });
  t.is(a.chunks[0], `retry: 2000\n${sseFrame('snapshot', { n: 1 })}`);

  hub.broadcast('members', { m: 1 });
  t.is(a.chunks[1], sseFrame('members', { m: 1 }));
  b.writableLength = 101; // b stopped reading
  hub.broadcast('rehome', { r: 1 });
  t.true(b.destroyed);
  t.is(hub.dropped, 1);
  t.is(hub.clients, 1);
  t.is(a.chunks[2], sseFrame('rehome', { r: 1 }));

  clock.advance(1000);
  t.is(a.chunks[3], ': heartbeat\n\n');
  clock.advance(1000);
  t.is(a.chunks[4], ': heartbeat\n\n');

  a.emit('close');
  t.is(hub.clients, 0, 'a closed client leaves');
  const d = client(hub);
  hub.stop();
  t.true(d.ended);
  t.is(hub.clients, 0);
  t.is(client(hub).status, 503, 'no new streams after stop');
  hub.stop();
});

test('stream-limit-per-address: a key holding maxPerKey streams gets 429 for the next; other keys still get theirs', (t) => {
  const hub = new SseHub({ clock: new FakeClock(), maxClients: 10, maxPerKey: 2 });
  const own = (key: string): StreamOwner => ({ key, until: Infinity });
  t.is(client(hub, {}, own('10.0.0.1')).status, 200);
  t.is(client(hub, {}, own('10.0.0.1')).status, 200);
  const third = client(hub, {}, own('10.0.0.1'));
  t.is(third.status, 429);
  t.true(third.ended);
  t.is(hub.refused, 1);
  t.is(client(hub, {}, own('10.0.0.2')).status, 200);
  t.deepEqual([...hub.perKey()], [['10.0.0.1', 2], ['10.0.0.2', 1]]);
});

test('stream-total-evicts-oldest: when every slot is taken a new stream ends the oldest with an ended frame, so no one is locked out', (t) => {
  const hub = new SseHub({ clock: new FakeClock(), maxClients: 3, maxPerKey: 3 });
  const old = [1, 2, 3].map((i) => client(hub, {}, { key: `10.0.0.${i}`, until: Infinity }));
  const operator = client(hub, {}, { key: '10.0.0.9', until: Infinity });
  t.is(operator.status, 200);
  t.true(old[0]!.ended);
  t.is(old[0]!.chunks.at(-1), sseFrame('ended', { why: 'evicted' }));
  t.false(old[1]!.ended);
  t.is(hub.clients, 3);
  t.is(hub.evicted, 1);
  t.deepEqual(admit([{ key: 'a' }, { key: 'b' }], 'c', { maxClients: 2, maxPerKey: 1 }), { accept: true, evict: 0 });
  t.deepEqual(admit([{ key: 'a' }, { key: 'b' }], 'a', { maxClients: 2, maxPerKey: 1 }), { accept: false }, 'the per-key limit first: a key cannot evict others to exceed it');
  t.deepEqual(admit([{ key: 'a' }], 'b', { maxClients: 2, maxPerKey: 1 }), { accept: true });
});

test('stream-ends-with-its-credential: at the first heartbeat past its session expiry, an ended frame (expired)', (t) => {
  const clock = new FakeClock();
  const hub = new SseHub({ clock, heartbeatMs: 1000 });
  const s = client(hub, {}, { key: 'k', until: 1500 });
  const forever = client(hub, {}, { key: 'k', until: Infinity });
  clock.advance(1000);
  t.false(s.ended);
  clock.advance(1000);
  t.true(s.ended);
  t.is(s.chunks.at(-1), sseFrame('ended', { why: 'expired' }));
  t.is(hub.expired, 1);
  t.false(forever.ended);
  t.is(forever.chunks.at(-1), ': heartbeat\n\n');
});
