import test from 'ava';
import { parseSipUri, sipUriProblems } from '../../../src/protocol/sip-uri.js';
import { cleanPointerList, samePointerList, validatePointerList } from '../../../src/protocol/pointers.js';
import { parsePointersBody } from '../../../src/protocol/codec.js';
import { mergeGroupList } from '../../../src/protocol/list-merge.js';
import type { Pointer } from '../../../src/protocol/types.js';

test('registrar URIs parse: host, port (default 5060), transport', (t) => {
  t.deepEqual(parseSipUri('sip:127.0.0.1:5061;transport=tcp', 'x'), { ok: true, uri: { host: '127.0.0.1', port: 5061, transport: 'tcp' } });
  t.deepEqual(parseSipUri('SIP:pbx.example.org', 'x'), { ok: true, uri: { host: 'pbx.example.org', port: 5060, transport: undefined } });
  t.deepEqual(parseSipUri('sip:[::1]:5070;lr;transport=TCP', 'x'), { ok: true, uri: { host: '::1', port: 5070, transport: 'tcp' } });
});

test('bad registrar URIs are refused with the field and the value', (t) => {
  const rows: [unknown, RegExp][] = [
    [5061, /must be a SIP URI string/],
    ['http://127.0.0.1:5061', /scheme must be sip:/],
    ['sips:127.0.0.1', /scheme must be sip:/],
    ['sip:1001@127.0.0.1', /without a user part/],
    ['sip:127.0.0.1?x=y', /headers/],
    ['sip::5061', /no valid host/],
    ['sip:127.0.0.1:0', /port must be 1 to 65535/],
    ['sip:127.0.0.1:70000', /port must be 1 to 65535/],
    ['sip:127.0.0.1:5061;transport=sctp', /transport must be udp, tcp, tls/],
    ['sip:127.0.0.1;a b', /malformed parameter/],
    [`sip:${'a'.repeat(300)}`, /at most 256/],
  ];
  for (const [value, re] of rows) {
    const p = sipUriProblems(value, 'group/0/sip');
    t.is(p.length, 1, String(value));
    t.regex(p[0]!, /^group\/0\/sip: /);
    t.regex(p[0]!, re, String(value));
  }
});

const a: Pointer = { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' };
const b: Pointer = { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services', sip: 'sip:127.0.0.1:5062;transport=tcp' };

test('a pointer may carry sip; lists without it stay valid; a bad sip is refused with its path', (t) => {
  t.deepEqual(validatePointerList([a]), []);
  t.deepEqual(validatePointerList([a, b]), []);
  t.deepEqual(validatePointerList([a, { ...b, sip: 'tel:1002' }]), ['pointers/1/sip: scheme must be sip: (got "tel:1002")']);
  t.deepEqual(validatePointerList([{ ...a, sip: null }], { path: 'list' }), ['list/0/sip: must be a SIP URI string like "sip:127.0.0.1:5061;transport=tcp" (got null)']);
});

test('sip survives cleaning, merging and a signed body; only when present; it counts in list equality', (t) => {
  const clean = cleanPointerList([{ ...a, extra: 1 } as Pointer, b]);
  t.deepEqual(clean, [a, b]);
  t.false('sip' in clean[0]!);
  t.deepEqual(mergeGroupList([a], [b, a], ['cm-a', 'cm-b']), [b, a]);
  const body = parsePointersBody(Buffer.from(JSON.stringify({ version: 3, reason: 'failover', list: [b, a] })), { phoneId: 'p1', heldVersion: 0, now: 0 });
  t.deepEqual(body.list, [b, a]);
  t.true(samePointerList([a, b], [a, { ...b }]));
  t.false(samePointerList([a, b], [a, { ...b, sip: 'sip:127.0.0.1:5099;transport=tcp' }]));
  t.false(samePointerList([b], [{ id: b.id, broker: b.broker, services: b.services }]));
});
