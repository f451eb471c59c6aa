import test from 'ava';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { accountUri, baresipAor, commandBody, decodeCtrl, sipEventOf, uanewParams, type CtrlEvent } from '../../../src/sip/baresip-messages.js';

const j = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

test('commandBody: params left out when none', (t) => {
  t.deepEqual(JSON.parse(commandBody('accept', undefined, '3')), { command: 'accept', token: '3' });
  t.deepEqual(JSON.parse(commandBody('uadel', 'sip:a@b', '4')), { command: 'uadel', params: 'sip:a@b', token: '4' });
});

test('decodeCtrl: responses and events as baresip 1.0.0 sends them (captured)', (t) => {
  t.deepEqual(decodeCtrl(j({ response: true, ok: false, data: 'No such file or directory', token: 't2' })), { kind: 'response', ok: false, data: 'No such file or directory', token: 't2' });
  t.deepEqual(decodeCtrl(j({ event: true, type: 'REGISTER_FAIL', class: 'register', accountaor: 'sip:1001@127.0.0.1:1', param: 'Connection refused' })), {
    kind: 'event', type: 'REGISTER_FAIL', accountaor: 'sip:1001@127.0.0.1:1', peeruri: undefined, param: 'Connection refused',
  });
  t.is((decodeCtrl(j({ event: 'true', type: 'EXIT' })) as CtrlEvent).type, 'EXIT');
});

for (const bad of ['not json', '[]', 'null', '{"event":true}', '{"response":"yes"}']) {
  test(`decodeCtrl rejects ${bad} with PAYLOAD_INVALID`, (t) => {
    t.true(isIpphoneError(t.throws(() => decodeCtrl(Buffer.from(bad))), 'PAYLOAD_INVALID'));
  });
}

test("AORs: baresip's name has no params; uanew wraps the URI in <> with regint", (t) => {
  t.is(baresipAor('sip:1001@127.0.0.1:5070;transport=tcp'), 'sip:1001@127.0.0.1:5070');
  t.is(baresipAor('<sip:1001@h>'), 'sip:1001@h');
  t.is(baresipAor('sip:1001@h?x=y'), 'sip:1001@h');
  t.is(accountUri(' <sip:1@h;transport=tcp> '), 'sip:1@h;transport=tcp');
  t.is(uanewParams('sip:1@h:5;transport=tcp', 60), '<sip:1@h:5;transport=tcp>;regint=60');
  for (const bad of ['', 'tel:123', 'sip:a b@h', '<sip:a@h>;regint=1', 'sip:a@h>']) t.true(isIpphoneError(t.throws(() => baresipAor(bad)), 'CONFIG_INVALID'), bad);
  for (const n of [0, -1, 1.5, Number.NaN]) t.true(isIpphoneError(t.throws(() => uanewParams('sip:a@h', n)), 'CONFIG_INVALID'), String(n));
});

const ev = (type: string, extra: Partial<CtrlEvent> = {}): CtrlEvent => ({ kind: 'event', type, accountaor: 'sip:1@h', peeruri: 'sip:2@h', param: undefined, ...extra });
const rows: { in: CtrlEvent; out: unknown }[] = [
  { in: ev('REGISTER_OK'), out: { type: 'registered', aor: 'given:sip:1@h' } },
  { in: ev('REGISTER_FAIL', { param: '408 Request Timeout' }), out: { type: 'register-failed', aor: 'given:sip:1@h', reason: '408 Request Timeout', status: 408 } },
  { in: ev('REGISTER_FAIL'), out: { type: 'register-failed', aor: 'given:sip:1@h', reason: 'register failed' } },
  { in: ev('CALL_INCOMING'), out: { type: 'incoming', peer: 'sip:2@h' } },
  { in: ev('CALL_RINGING'), out: { type: 'ringing', peer: 'sip:2@h' } },
  { in: ev('CALL_ESTABLISHED'), out: { type: 'established', peer: 'sip:2@h' } },
  { in: ev('CALL_CLOSED', { param: 'Connection reset by user' }), out: { type: 'closed', peer: 'sip:2@h', reason: 'Connection reset by user' } },
  { in: ev('REGISTERING'), out: null },
  { in: ev('CALL_LOCAL_SDP'), out: null },
];
for (const row of rows) {
  test(`sipEventOf: ${row.in.type}${row.in.param ? ` (${row.in.param})` : ''}`, (t) => {
    t.deepEqual(sipEventOf(row.in, (a) => `given:${a}`), row.out);
  });
}
