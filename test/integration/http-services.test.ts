import http from 'node:http';
import https from 'node:https';
import { readFileSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import test from 'ava';
import { isIpphoneError } from '../../src/lib/errors.js';
import { freePort, waitFor } from '../helpers/net.js';
import { makePki } from '../helpers/pki.js';
import { SERVICES_MAX_BYTES, fetchServices, servicesUrl } from '../../src/agent/http-services.js';

/** A real HTTP server on 127.0.0.1 with `handler`; remembers request URLs and closes every socket on teardown. */
/** The timeout of a request that must not time out: generous, the machine may be loaded. */
const OK_MS = 20_000;

async function serve(t: { teardown(fn: () => unknown): void }, handler: http.RequestListener) {
  const urls: string[] = [];
  let sockets = 0;
  const server = http.createServer((req, res) => {
    urls.push(req.url ?? '');
    handler(req, res);
  });
  server.on('connection', (s) => {
    sockets++;
    s.on('close', () => sockets--);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  t.teardown(() => {
    server.closeAllConnections();
    return new Promise<void>((resolve) => server.close(() => resolve()));
  });
  const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return { base, urls, openSockets: () => sockets };
}

const XML = '<CiscoIPPhoneText><Title>cm-a</Title><Text>héllo</Text></CiscoIPPhoneText>';

test('servicesUrl appends phone with ? or &', (t) => {
  t.is(servicesUrl('http://h/services', 'p 1'), 'http://h/services?phone=p%201');
  t.is(servicesUrl('http://h/services?x=1', 'p/2'), 'http://h/services?x=1&phone=p%2F2');
  t.is(servicesUrl('http://h/s#frag', 'p'), 'http://h/s?phone=p');
});

test('servicesUrl leaves a link that names the phone already alone (a call manager refuses phone= twice)', (t) => {
  t.is(servicesUrl('http://h/services/status?phone=p1', 'p1'), 'http://h/services/status?phone=p1');
  t.is(servicesUrl('http://h/s?x=1&phone=p1#f', 'p1'), 'http://h/s?x=1&phone=p1');
  t.is(servicesUrl('http://h/s?telephone=1', 'p1'), 'http://h/s?telephone=1&phone=p1');
});

test('200: resolves with the body text, sends the phone parameter, leaves no socket open', async (t) => {
  const srv = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-type': 'text/xml; charset=utf-8' });
    res.end(XML);
  });
  t.is(await fetchServices(`${srv.base}/services`, 'p-0001', OK_MS), XML);
  t.deepEqual(srv.urls, ['/services?phone=p-0001']);
  // The socket is closed from our side; the server sees it go.
  await waitFor(() => srv.openSockets() === 0, { what: 'socket closed' });
  t.pass();
});

test('a URL with a query gets &phone=', async (t) => {
  const srv = await serve(t, (_req, res) => res.end('ok'));
  t.is(await fetchServices(`${srv.base}/services?lang=fr`, 'a&b', OK_MS), 'ok');
  t.deepEqual(srv.urls, ['/services?lang=fr&phone=a%26b']);
});

test('500 rejects with TRANSPORT and the status', async (t) => {
  const srv = await serve(t, (_req, res) => {
    res.writeHead(500);
    res.end('broken');
  });
  const err = await t.throwsAsync(fetchServices(`${srv.base}/services`, 'p', OK_MS));
  t.true(isIpphoneError(err, 'TRANSPORT'));
  t.is((err as { context?: { status?: number } }).context?.status, 500);
  t.regex(err!.message, /500/);
});

test('a server that accepts and never answers rejects with TIMEOUT after timeoutMs', async (t) => {
  const srv = await serve(t, () => {
    /* never answer */
  });
  const started = Date.now();
  const err = await t.throwsAsync(fetchServices(`${srv.base}/services`, 'p', 300));
  const elapsed = Date.now() - started;
  t.true(isIpphoneError(err, 'TIMEOUT'));
  // Not early, and not the far later end of some other limit; how late a timer fires is the machine's.
  t.true(elapsed >= 280 && elapsed < 15_000, `elapsed ${elapsed} ms`);
  await waitFor(() => srv.openSockets() === 0, { what: 'socket closed' });
});

test('a body that stalls after the headers still times out', async (t) => {
  const srv = await serve(t, (_req, res) => {
    res.writeHead(200);
    res.write('<CiscoIPPhoneText>');
  });
  const err = await t.throwsAsync(fetchServices(`${srv.base}/services`, 'p', 300));
  t.true(isIpphoneError(err, 'TIMEOUT'));
});

test('a body over 256 KiB rejects with PAYLOAD_TOO_LARGE (chunked and with Content-Length)', async (t) => {
  const big = Buffer.alloc(SERVICES_MAX_BYTES + 1, 0x61);
  const chunked = await serve(t, (_req, res) => {
    res.writeHead(200);
    for (let i = 0; i < big.length; i += 16 * 1024) res.write(big.subarray(i, i + 16 * 1024));
    res.end();
  });
  const e1 = await t.throwsAsync(fetchServices(`${chunked.base}/s`, 'p', OK_MS));
  t.true(isIpphoneError(e1, 'PAYLOAD_TOO_LARGE'));

  const sized = await serve(t, (_req, res) => {
    res.writeHead(200, { 'content-length': big.length });
    res.end(big);
  });
  const e2 = await t.throwsAsync(fetchServices(`${sized.base}/s`, 'p', OK_MS));
  t.true(isIpphoneError(e2, 'PAYLOAD_TOO_LARGE'));

  // Exactly at the cap is fine.
  const atCap = await serve(t, (_req, res) => res.end(big.subarray(0, SERVICES_MAX_BYTES)));
  t.is((await fetchServices(`${atCap.base}/s`, 'p', OK_MS)).length, SERVICES_MAX_BYTES);
});

test('a refused connection rejects with TRANSPORT; a bad URL with CONFIG_INVALID', async (t) => {
  const port = await freePort();
  const e1 = await t.throwsAsync(fetchServices(`http://127.0.0.1:${port}/s`, 'p', OK_MS));
  t.true(isIpphoneError(e1, 'TRANSPORT'));
  t.regex(e1!.message, /ECONNREFUSED/);
  const e2 = await t.throwsAsync(fetchServices('ftp://127.0.0.1/s', 'p', OK_MS));
  t.true(isIpphoneError(e2, 'CONFIG_INVALID'));
  const e3 = await t.throwsAsync(fetchServices('no url', 'p', OK_MS));
  t.true(isIpphoneError(e3, 'CONFIG_INVALID'));
});

test('an https: services URL is fetched over TLS (node:https, loaded on the first such URL): a server whose certificate no trusted CA signed is refused with TRANSPORT', async (t) => {
  const pki = await makePki();
  t.teardown(() => pki.remove());
  let handshakes = 0;
  const server = https.createServer({ cert: readFileSync(pki.server.cert), key: readFileSync(pki.server.key) }, (_req, res) => res.end('<CiscoIPPhoneText/>'));
  server.on('tlsClientError', () => handshakes++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  t.teardown(() => new Promise<void>((r) => server.close(() => r())));
  const port = (server.address() as AddressInfo).port;
  const e = await t.throwsAsync(fetchServices(`https://127.0.0.1:${port}/s`, 'p', OK_MS));
  t.true(isIpphoneError(e, 'TRANSPORT'));
  t.regex(e!.message, /certificate/);
  await waitFor(() => handshakes === 1, { timeoutMs: 5000, what: 'the server to see the refused handshake' });
  t.pass();
});
