import test from 'ava';
import { buildOptions, MAX_MESSAGE_BYTES, SipStreamReader } from '../../../src/sip/options.js';

const req = buildOptions({
  target: { host: '127.0.0.1', port: 5061, transport: 'tcp' },
  local: { host: '127.0.0.1', port: 40000 },
  branch: 'abc123',
  tag: 't1',
  callId: 'c1@ipphone-cm',
  cseq: 7,
  user: 'cm-a',
});

test('an OPTIONS request carries what RFC 3261 requires and ends with an empty body', (t) => {
  const lines = req.split('\r\n');
  t.is(lines[0], 'OPTIONS sip:127.0.0.1:5061;transport=tcp SIP/2.0');
  t.true(lines.includes('Via: SIP/2.0/TCP 127.0.0.1:40000;branch=z9hG4bKabc123;rport'));
  t.true(lines.includes('Max-Forwards: 70'));
  t.true(lines.includes('From: <sip:cm-a@127.0.0.1>;tag=t1'));
  t.true(lines.includes('To: <sip:127.0.0.1:5061>'));
  t.true(lines.includes('Call-ID: c1@ipphone-cm'));
  t.true(lines.includes('CSeq: 7 OPTIONS'));
  t.true(req.endsWith('Content-Length: 0\r\n\r\n'));
});

const resp = (status: string, extra = '', body = ''): string =>
  `SIP/2.0 ${status}\r\nVia: x\r\nCall-ID: c1@ipphone-cm\r\nCSeq: 7 OPTIONS\r\n${extra}Content-Length: ${body.length}\r\n\r\n${body}`;

test('responses split across chunks, with bodies, compact headers, CRLF keep-alives and requests in between', (t) => {
  const r = new SipStreamReader();
  const all = `\r\n\r\n${resp('200 OK', '', 'v=0\r\n')}OPTIONS sip:x SIP/2.0\r\nl: 0\r\n\r\nSIP/2.0 404 Not Here\r\ni: c2\r\nCSeq: 8 OPTIONS\r\nl: 0\r\n\r\n`;
  const got = [];
  for (let i = 0; i < all.length; i += 5) got.push(...r.push(all.slice(i, i + 5)));
  t.deepEqual(got, [
    { status: 200, reason: 'OK', callId: 'c1@ipphone-cm', cseq: { seq: 7, method: 'OPTIONS' } },
    { status: 404, reason: 'Not Here', callId: 'c2', cseq: { seq: 8, method: 'OPTIONS' } },
  ]);
});

test('a stream that is not SIP is refused, so the probe drops the connection', (t) => {
  t.throws(() => new SipStreamReader().push('HTTP/1.1 200 OK\r\n\r\n'), { message: /not a SIP status line/ });
  t.throws(() => new SipStreamReader().push('SIP/2.0 200 OK\r\nContent-Length: -1\r\n\r\n'), { message: /bad Content-Length/ });
  t.throws(() => new SipStreamReader().push('x'.repeat(MAX_MESSAGE_BYTES + 1)), { message: /no end of SIP headers/ });
});
