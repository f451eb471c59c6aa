import test from 'ava';
import { callBusy, callLines, initialCallState, MAX_DIGITS, nextCall, type CallEffect, type CallEnv, type CallInput, type CallState } from '../../../src/agent/call-control.js';

const REG: CallEnv = { registered: { aor: 'sip:1001@127.0.0.1:5072;transport=tcp', registrar: { hostport: '127.0.0.1:5072', params: ';transport=tcp' } } };
const PEER_IN = 'sip:1002@127.0.0.1:5072;transport=tcp';

function run(inputs: CallInput[], env: CallEnv = REG, s: CallState = initialCallState()): { s: CallState; fx: CallEffect[] } {
  const fx: CallEffect[] = [];
  for (const i of inputs) {
    const step = nextCall(s, i, env);
    s = step.state;
    fx.push(...step.effects);
  }
  return { s, fx };
}

const keys = (text: string): CallInput[] => [...text].map((key) => ({ type: 'key', key }));
const lift: CallInput = { type: 'hook', offHook: true };
const replace: CallInput = { type: 'hook', offHook: false };

test('on hook and idle: no call screen, not busy, keys ignored', (t) => {
  const { s, fx } = run(keys('12#'));
  t.is(callLines(s), null);
  t.false(callBusy(s));
  t.deepEqual(fx, []);
});

test('lifting the handset when idle opens the dialling screen with the digits typed', (t) => {
  const { s, fx } = run([lift, ...keys('10*2')]);
  t.is(s.phase, 'dialing');
  t.deepEqual(callLines(s), ['Dial:', '10*2']);
  t.true(callBusy(s));
  t.deepEqual(fx, []);
  t.deepEqual(callLines(run([lift]).s), ['Dial:', '_']);
});

test('# places the call to sip:DIGITS@registrar with its transport; ringing, established → connected', (t) => {
  const dialled = run([lift, ...keys('1002#')]);
  t.deepEqual(dialled.fx, [{ type: 'dial', aor: REG.registered!.aor, uri: 'sip:1002@127.0.0.1:5072;transport=tcp' }]);
  t.is(dialled.s.phase, 'calling');
  t.deepEqual(callLines(dialled.s), ['Calling', '1002']);
  const ringing = run([{ type: 'ringing', peer: PEER_IN }], REG, dialled.s);
  t.deepEqual(callLines(ringing.s), ['Ringing', '1002']);
  const up = run([{ type: 'established', peer: PEER_IN }], REG, ringing.s);
  t.is(up.s.phase, 'connected');
  t.deepEqual(callLines(up.s), ['Connected', '1002']);
  const down = run([replace], REG, up.s);
  t.deepEqual(down.fx, [{ type: 'hangup' }]);
  t.is(down.s.phase, 'idle');
  t.false(callBusy(down.s));
});

test('# with no digits does nothing; # while not registered says so and keeps dialling', (t) => {
  t.deepEqual(run([lift, ...keys('#')]).fx, []);
  const { s, fx } = run([lift, ...keys('1002#')], { registered: null });
  t.deepEqual(fx, []);
  t.is(s.phase, 'dialing');
  t.deepEqual(callLines(s), ['Dial:', '1002', 'No SIP service']);
});

test('digits are bounded', (t) => {
  t.is(run([lift, ...keys('1'.repeat(MAX_DIGITS + 5))]).s.digits.length, MAX_DIGITS);
});

test('replacing the handset while dialling cancels it; while calling hangs up', (t) => {
  const cancelled = run([lift, ...keys('12'), replace]);
  t.deepEqual(cancelled.fx, []);
  t.is(cancelled.s.phase, 'idle');
  t.deepEqual(run([lift, ...keys('12#'), replace]).fx.at(-1), { type: 'hangup' });
});

test('an incoming call shows the caller and blinks the lamp; lifting answers; established → connected', (t) => {
  const ring = run([{ type: 'incoming', peer: 'sip:1001@127.0.0.1:5072' }]);
  t.is(ring.s.phase, 'ringing');
  t.deepEqual(callLines(ring.s), ['Call from', '1001']);
  t.deepEqual(ring.fx, [{ type: 'lamp', blink: true }]);
  t.true(callBusy(ring.s));
  const answered = run([lift], REG, ring.s);
  t.deepEqual(answered.fx, [{ type: 'answer' }, { type: 'lamp', blink: false }]);
  t.deepEqual(callLines(answered.s), ['Answering', '1001']);
  const up = run([{ type: 'established', peer: 'sip:1001@127.0.0.1:5072' }], REG, answered.s);
  t.is(up.s.phase, 'connected');
  t.deepEqual(up.fx, []);
  t.deepEqual(callLines(up.s), ['Connected', '1001']);
});

test('the caller giving up stops the ringing', (t) => {
  const { s, fx } = run([{ type: 'incoming', peer: PEER_IN }, { type: 'closed', peer: PEER_IN, reason: 'cancelled' }]);
  t.is(s.phase, 'idle');
  t.deepEqual(fx, [{ type: 'lamp', blink: true }, { type: 'lamp', blink: false }]);
  t.is(callLines(s), null);
});

test('the far end hanging up: idle, "Call ended" until the handset is replaced; lifting again dials', (t) => {
  const up = run([lift, ...keys('1002#'), { type: 'established', peer: PEER_IN }]);
  const ended = run([{ type: 'closed', peer: PEER_IN, reason: 'bye' }], REG, up.s);
  t.is(ended.s.phase, 'idle');
  t.true(callBusy(ended.s)); // still off hook
  t.deepEqual(callLines(ended.s), ['Call ended']);
  t.deepEqual(run(keys('5'), REG, ended.s).s.digits, '');
  const again = run([replace, lift], REG, ended.s);
  t.is(again.s.phase, 'dialing');
});

test('a failed call (closed while calling, or dial refused) says so', (t) => {
  const calling = run([lift, ...keys('1002#')]).s;
  t.deepEqual(callLines(run([{ type: 'closed', peer: PEER_IN, reason: '486 Busy' }], REG, calling).s), ['Call failed']);
  t.deepEqual(callLines(run([{ type: 'dial-failed', reason: 'no account' }], REG, calling).s), ['Call failed']);
});

test('a second incoming call during a call is left alone (hangup would end ours); its close does not end ours', (t) => {
  const up = run([lift, ...keys('1002#'), { type: 'established', peer: PEER_IN }]).s;
  const second = run([{ type: 'incoming', peer: 'sip:1003@x' }, { type: 'closed', peer: 'sip:1003@x', reason: 'cancel' }], REG, up);
  t.deepEqual(second.fx, []);
  t.is(second.s.phase, 'connected');
});

test('an incoming call while off hook with no call is refused', (t) => {
  t.deepEqual(run([lift, { type: 'incoming', peer: PEER_IN }]).fx, [{ type: 'hangup' }]);
});

test('the user agent going down ends the call', (t) => {
  const up = run([{ type: 'incoming', peer: PEER_IN }, lift, { type: 'established', peer: PEER_IN }]).s;
  const { s } = run([{ type: 'ua-down' }], REG, up);
  t.is(s.phase, 'idle');
  t.deepEqual(callLines(s), ['Call lost']);
});
