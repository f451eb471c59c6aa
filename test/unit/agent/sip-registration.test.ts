import test from 'ava';
import { accountFor, initialRegState, nextReg, sameAor, type RegEffect, type RegInput, type RegState } from '../../../src/agent/sip-registration.js';

const cfg = { user: '1001', regintS: 120, timeoutMs: 4000 };
const A = { id: 'cm-a', sip: 'sip:127.0.0.1:5071;transport=tcp' };
const B = { id: 'cm-b', sip: 'sip:127.0.0.1:5072;transport=tcp' };
const AOR_A = 'sip:1001@127.0.0.1:5071;transport=tcp';
const AOR_B = 'sip:1001@127.0.0.1:5072;transport=tcp';

/** Feed inputs at times; collect the effects (logs and wakes left out). */
function run(inputs: [number, RegInput][], s: RegState = initialRegState(cfg)): { s: RegState; fx: RegEffect[] } {
  const fx: RegEffect[] = [];
  for (const [at, input] of inputs) {
    const step = nextReg(s, input, at);
    s = step.state;
    fx.push(...step.effects.filter((e) => e.type !== 'log' && e.type !== 'wake'));
  }
  return { s, fx };
}

const registeredAtA: [number, RegInput][] = [
  [0, { type: 'ua-up' }],
  [0, { type: 'target', home: A, searching: false }],
  [5, { type: 'registered', aor: AOR_A }],
];

test('accountFor: the AOR keeps the registrar’s transport; a pointer without sip has none', (t) => {
  t.deepEqual(accountFor(cfg, A), { cm: 'cm-a', aor: AOR_A, registrar: { hostport: '127.0.0.1:5071', params: ';transport=tcp' } });
  t.is(accountFor(cfg, { id: 'cm-x' }), null);
  t.is(accountFor(cfg, { id: 'cm-x', sip: 'http://nope' } as never), null);
});

test('registers at the home: add, then registered with the time from the home change', (t) => {
  const { s, fx } = run(registeredAtA);
  t.deepEqual(fx, [
    { type: 'add', aor: AOR_A, regintS: 120 },
    { type: 'registered', cm: 'cm-a', ms: 5 },
  ]);
  t.is(s.registered?.cm, 'cm-a');
});

test('a home change registers make-before-break: the old account is removed only after the new one answers', (t) => {
  const first = run(registeredAtA);
  const { s, fx } = run(
    [
      [100, { type: 'target', home: B, searching: false }],
      [103, { type: 'registered', aor: AOR_A }], // a refresh at the old home changes nothing
      [120, { type: 'registered', aor: AOR_B }],
    ],
    first.s,
  );
  t.deepEqual(fx, [
    { type: 'add', aor: AOR_B, regintS: 120 },
    { type: 'remove', aor: AOR_A },
    { type: 'registered', cm: 'cm-b', ms: 20 },
  ]);
  t.is(s.registered?.cm, 'cm-b');
});

test('register-failed at the new home fails that pointer; the old registration stays until a new home answers', (t) => {
  const { s, fx } = run([[100, { type: 'target', home: B, searching: false }], [110, { type: 'register-failed', aor: AOR_B, reason: '503' }], [111, { type: 'target', home: B, searching: false }]], run(registeredAtA).s);
  t.deepEqual(fx, [
    { type: 'add', aor: AOR_B, regintS: 120 },
    { type: 'remove', aor: AOR_B },
    { type: 'failed', cm: 'cm-b', reason: '503' },
  ]); // and no second attempt while the machine still has cm-b as home
  t.is(s.registered?.cm, 'cm-a');
});

test('no answer within the time-out fails that pointer', (t) => {
  const s0 = run([[0, { type: 'ua-up' }]]).s;
  const step = nextReg(s0, { type: 'target', home: A, searching: false }, 0);
  t.deepEqual(step.effects.find((e) => e.type === 'wake'), { type: 'wake', at: 4000 });
  const { fx } = run([[3999, { type: 'wake' }], [4000, { type: 'wake' }]], step.state);
  t.deepEqual(fx, [
    { type: 'remove', aor: AOR_A },
    { type: 'failed', cm: 'cm-a', reason: 'no answer in 4000 ms' },
  ]);
});

test('the user agent refusing the account fails that pointer', (t) => {
  const { fx } = run([[0, { type: 'ua-up' }], [0, { type: 'target', home: A, searching: false }], [1, { type: 'add-failed', aor: AOR_A, reason: 'bad aor' }]]);
  t.like(fx.at(-1), { type: 'failed', cm: 'cm-a' });
});

test('a user agent that goes down is registered nowhere, and again at the home when it comes back', (t) => {
  const { s, fx } = run([[100, { type: 'ua-down' }], [100, { type: 'target', home: A, searching: false }], [200, { type: 'ua-up' }], [210, { type: 'registered', aor: AOR_A }]], run(registeredAtA).s);
  t.deepEqual(fx, [
    { type: 'add', aor: AOR_A, regintS: 120 },
    { type: 'registered', cm: 'cm-a', ms: 10 },
  ]);
  t.is(s.registered?.cm, 'cm-a');
  t.is(run([[100, { type: 'ua-down' }]], run(registeredAtA).s).s.registered, null);
});

test('no home (not searching) or a home without sip: registered nowhere; searching keeps the registration', (t) => {
  const atA = run(registeredAtA).s;
  const searching = run([[100, { type: 'target', home: null, searching: true }]], atA);
  t.deepEqual(searching.fx, []);
  t.is(searching.s.registered?.cm, 'cm-a');
  t.deepEqual(run([[100, { type: 'target', home: null, searching: false }]], atA).fx, [{ type: 'remove', aor: AOR_A }]);
  const noSip = run([[100, { type: 'target', home: { id: 'cm-c' }, searching: false }]], atA);
  t.deepEqual(noSip.fx, [{ type: 'remove', aor: AOR_A }]);
  t.is(noSip.s.registered, null);
});

test('during a call the old account lingers (it may carry the call) and goes when the call ends', (t) => {
  const { s, fx } = run(
    [
      [50, { type: 'call-idle', idle: false }],
      [100, { type: 'target', home: B, searching: false }],
      [120, { type: 'registered', aor: AOR_B }],
      [900, { type: 'call-idle', idle: true }],
    ],
    run(registeredAtA).s,
  );
  t.deepEqual(fx, [
    { type: 'add', aor: AOR_B, regintS: 120 },
    { type: 'registered', cm: 'cm-b', ms: 20 },
    { type: 'remove', aor: AOR_A },
  ]);
  t.deepEqual(s.lingering, []);
});

test('back to a lingering account: it is still registered, nothing added', (t) => {
  const mid = run([[50, { type: 'call-idle', idle: false }], [100, { type: 'target', home: B, searching: false }], [120, { type: 'registered', aor: AOR_B }]], run(registeredAtA).s).s;
  const { s, fx } = run([[200, { type: 'target', home: A, searching: false }]], mid);
  t.deepEqual(fx, [{ type: 'registered', cm: 'cm-a', ms: 0 }]);
  t.is(s.registered?.cm, 'cm-a');
  t.deepEqual(s.lingering, [AOR_B]);
});

test('a refresh failing at the home fails the home', (t) => {
  const { s, fx } = run([[100_000, { type: 'register-failed', aor: AOR_A, reason: 'timeout' }]], run(registeredAtA).s);
  t.deepEqual(fx, [
    { type: 'remove', aor: AOR_A },
    { type: 'failed', cm: 'cm-a', reason: 'timeout' },
  ]);
  t.is(s.registered, null);
});

test('an answer named by the user agent without URI parameters still counts', (t) => {
  t.true(sameAor(AOR_A, 'sip:1001@127.0.0.1:5071'));
  t.false(sameAor(AOR_A, AOR_B));
  const { s } = run([[0, { type: 'ua-up' }], [0, { type: 'target', home: A, searching: false }], [5, { type: 'registered', aor: 'sip:1001@127.0.0.1:5071' }]]);
  t.is(s.registered?.cm, 'cm-a');
});
