import test from 'ava';
import { createHash } from 'node:crypto';
import { EventEmitter } from 'node:events';
import type { IncomingMessage, ServerResponse } from 'node:http';
import { FakeClock } from '../../../src/lib/clock.js';
import { CONSOLE_CSP, CONSOLE_HEADERS, consolePage, escapeHtml } from '../../../src/callmanager/console-page.js';
import { SseHub, sseFrame } from '../../../src/callmanager/console-sse.js';

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

function client(hub: SseHub, snapshot: unknown = { n: 1 }): FakeRes {
  const res = new FakeRes();
  hub.accept(new EventEmitter() as unknown as IncomingMessage, res as unknown as ServerResponse, () => snapshot);
  return res;
}

test('SSE: snapshot first, then broadcasts; the limit answers 503; a client that does not read is dropped; stop ends all', (t) => {
  const clock = new FakeClock();
  const hub = new SseHub({ clock, maxClients: 2, maxBufferBytes: 100, heartbeatMs: 1000, headers: { 'x-test': '1' } });
  const a = client(hub);
  const b = client(hub);
  t.is(a.status, 200);
  t.like(a.headers, { 'content-type': 'text/event-stream; charset=utf-8', 'x-test': '1' });
  t.is(a.chunks[0], `retry: 2000\n${sseFrame('snapshot', { n: 1 })}`);
  const c = client(hub);
  t.is(c.status, 503);
  t.true(c.ended);
  t.is(hub.refused, 1);

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
