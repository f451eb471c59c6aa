import test from 'ava';
import { AUTH_RETRY_MAX_MS, accountFor, initialRegState, nextReg, sameAor, unregisteredReason, type RegEffect, type RegInput, type RegState } from '../../../src/agent/sip-registration.js';

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

test('a lingering account whose refresh failed is not taken back as registered; it is registered afresh once the call ends', (t) => {
  // In a call homed on A, the phone moves to B; A's account lingers for the call, and its refresh fails
  // (A's registrar restarted: the binding is gone). Back to A while the call lasts: not registered there.
  const mid = run(
    [
      [50, { type: 'call-idle', idle: false }],
      [100, { type: 'target', home: B, searching: false }],
      [120, { type: 'registered', aor: AOR_B }],
      [5_000, { type: 'register-failed', aor: 'sip:1001@127.0.0.1:5071', reason: 'Connection refused' }],
    ],
    run(registeredAtA).s,
  ).s;
  const back = run([[6_000, { type: 'target', home: A, searching: false }]], mid);
  t.false(back.fx.some((e) => e.type === 'registered'), 'no registration at A is claimed');
  t.not(back.s.registered?.cm, 'cm-a');
  t.false(back.fx.some((e) => e.type === 'remove' || e.type === 'add'), 'the account carrying the call is neither deleted nor re-made during the call');
  // The call ends: the stale account goes and A is registered afresh (make-before-break from B).
  const idle = run([[9_000, { type: 'call-idle', idle: true }]], back.s);
  t.deepEqual(idle.fx, [
    { type: 'remove', aor: AOR_A },
    { type: 'add', aor: AOR_A, regintS: 120 },
  ]);
  const done = run([[9_040, { type: 'registered', aor: AOR_A }]], idle.s);
  t.deepEqual(done.fx, [
    { type: 'remove', aor: AOR_B },
    { type: 'registered', cm: 'cm-a', ms: 40 },
  ]);
});

test('a lingering account whose refresh failed and which registers again on its own is taken back as registered', (t) => {
  const mid = run(
    [
      [50, { type: 'call-idle', idle: false }],
      [100, { type: 'target', home: B, searching: false }],
      [120, { type: 'registered', aor: AOR_B }],
      [5_000, { type: 'register-failed', aor: AOR_A, reason: 'Connection refused' }],
      [6_000, { type: 'target', home: A, searching: false }],
      [40_000, { type: 'registered', aor: AOR_A }], // the user agent's own retry
    ],
    run(registeredAtA).s,
  );
  t.is(mid.s.registered?.cm, 'cm-a');
  t.deepEqual(mid.fx.slice(-1), [{ type: 'registered', cm: 'cm-a', ms: 34_000 }]);
  t.deepEqual(mid.s.lingering, [AOR_B], 'B lingers for the call');
});

// ---- credentials refused (issue 17) ----------------------------------------------------------

const withCreds = { ...cfg, credentials: true, authRetryMs: 30_000 };
const credsAtA: RegState = run(registeredAtA, initialRegState(withCreds)).s;

/** Every wake the controller asks for (the last one is where it looks next). */
function wakes(inputs: [number, RegInput][], s: RegState): (number | null)[] {
  const out: (number | null)[] = [];
  for (const [at, input] of inputs) {
    const step = nextReg(s, input, at);
    s = step.state;
    for (const e of step.effects) if (e.type === 'wake') out.push(e.at);
  }
  return out;
}

test('credentials refused (401) at the new home: no failure of that call manager, registered nowhere, the reason says why, tried again slowly', (t) => {
  const steps: [number, RegInput][] = [
    [100, { type: 'target', home: B, searching: false }],
    [120, { type: 'register-failed', aor: 'sip:1001@127.0.0.1:5072', reason: '401 Unauthorized', status: 401 }],
  ];
  const { s, fx } = run(steps, credsAtA);
  t.deepEqual(fx, [
    { type: 'add', aor: AOR_B, regintS: 120 },
    { type: 'remove', aor: AOR_B },
    { type: 'remove', aor: AOR_A },
    { type: 'auth-failed', cm: 'cm-b', reason: '401 Unauthorized', retryMs: 30_000 },
  ]);
  t.false(fx.some((e) => e.type === 'failed'), 'no sip-failed: the phone does not rehome for it');
  t.is(s.registered, null, 'registered at the home or nowhere: the old registration at A went too');
  t.is(unregisteredReason(s), 'sip-auth-failed');
  t.deepEqual(wakes(steps, credsAtA).slice(-1), [30_120]);
  // Nothing happens before the retry time; then the account is made again.
  t.deepEqual(run([[20_000, { type: 'wake' }]], s).fx, []);
  const retry = run([[30_120, { type: 'wake' }]], s);
  t.deepEqual(retry.fx, [{ type: 'add', aor: AOR_B, regintS: 120 }]);
  t.is(unregisteredReason(retry.s), 'sip-auth-failed', 'still says why while trying again');
  // Refused again: the wait doubles. Then the registrar takes the (fixed) credentials.
  const again = run([[30_130, { type: 'register-failed', aor: AOR_B, reason: '403 Forbidden', status: 403 }]], retry.s);
  t.deepEqual(again.fx, [{ type: 'remove', aor: AOR_B }, { type: 'auth-failed', cm: 'cm-b', reason: '403 Forbidden', retryMs: 60_000 }]);
  const ok = run([[90_130, { type: 'wake' }], [90_150, { type: 'registered', aor: AOR_B }]], again.s);
  t.deepEqual(ok.fx, [{ type: 'add', aor: AOR_B, regintS: 120 }, { type: 'registered', cm: 'cm-b', ms: 20 }]);
  t.is(ok.s.authFailed, null);
  t.is(unregisteredReason(ok.s), null);
});

test('credentials refused on a refresh at the home (403): registered nowhere, no failure, tried again', (t) => {
  const { s, fx } = run([[60_000, { type: 'register-failed', aor: AOR_A, reason: '403 Forbidden', status: 403 }]], credsAtA);
  t.deepEqual(fx, [{ type: 'remove', aor: AOR_A }, { type: 'auth-failed', cm: 'cm-a', reason: '403 Forbidden', retryMs: 30_000 }]);
  t.is(s.registered, null);
  t.is(unregisteredReason(s), 'sip-auth-failed');
});

test('credentials refused on a refresh at the home during a call: the account kept for the call is not taken back as registered at the retry; registered afresh once the call ends', (t) => {
  // The operator changed the phone's password at A: A's registrar refuses the refresh while a call is up.
  // The account lingers for the call, but its binding is no longer refreshed. Before, at the retry the
  // phone took it back as registered ("back to an account kept for a call"), its status naming A with
  // no reason while A refused it (what the simulator's auth-shown judges; found reading this code for it).
  const refused = run(
    [
      [50, { type: 'call-idle', idle: false }],
      [60_000, { type: 'register-failed', aor: AOR_A, reason: '401 Unauthorized', status: 401 }],
    ],
    credsAtA,
  );
  t.deepEqual(refused.fx, [{ type: 'auth-failed', cm: 'cm-a', reason: '401 Unauthorized', retryMs: 30_000 }], 'kept for the call: not removed');
  const retry = run([[90_000, { type: 'wake' }]], refused.s);
  t.false(retry.fx.some((e) => e.type === 'registered'), 'no registration at A is claimed');
  t.is(retry.s.registered, null);
  t.is(unregisteredReason(retry.s), 'sip-auth-failed');
  t.false(retry.fx.some((e) => e.type === 'remove' || e.type === 'add'), 'the account carrying the call is neither deleted nor re-made during the call');
  // The user agent's own retry is refused again: the wait doubles.
  const again = run([[95_000, { type: 'register-failed', aor: AOR_A, reason: '401 Unauthorized', status: 401 }]], retry.s);
  t.deepEqual(again.fx, [{ type: 'auth-failed', cm: 'cm-a', reason: '401 Unauthorized', retryMs: 60_000 }]);
  // The call ends: the stale account goes; the account is made afresh at the retry time.
  const idle = run([[100_000, { type: 'call-idle', idle: true }]], again.s);
  t.deepEqual(idle.fx, [{ type: 'remove', aor: AOR_A }]);
  t.is(unregisteredReason(idle.s), 'sip-auth-failed');
  const made = run([[155_000, { type: 'wake' }], [155_040, { type: 'registered', aor: AOR_A }]], idle.s);
  t.deepEqual(made.fx, [{ type: 'add', aor: AOR_A, regintS: 120 }, { type: 'registered', cm: 'cm-a', ms: 40 }]);
  t.is(unregisteredReason(made.s), null);
});

test('refused credentials, then a search past the retry time: no wake-up in the past (the controller does not spin)', (t) => {
  // Refused at B; the phone then searches (no home, a move under way: the registration is kept) past the
  // retry time. The retry cannot act while searching; a wake-up asked for the past fired at once, again
  // and again: a busy loop (simulator seed 1049 hung in it).
  const refused = run(
    [
      [100, { type: 'target', home: B, searching: false }],
      [120, { type: 'register-failed', aor: AOR_B, reason: '401 Unauthorized', status: 401 }],
      [5_000, { type: 'target', home: null, searching: true }],
    ],
    credsAtA,
  ).s;
  let s = refused;
  for (const now of [30_120, 30_121, 30_122]) {
    const step = nextReg(s, { type: 'wake' }, now);
    s = step.state;
    t.false(step.effects.some((e) => e.type === 'wake' && e.at !== null && e.at <= now), `wake-up in the past at ${now}: ${JSON.stringify(step.effects)}`);
  }
  // The search ends at B: tried at once (a new want), as before.
  const back = run([[40_000, { type: 'target', home: B, searching: false }]], s);
  t.deepEqual(back.fx, [{ type: 'add', aor: AOR_B, regintS: 120 }]);
});

test('the wait after refused credentials doubles up to its cap', (t) => {
  let s = run([[100, { type: 'target', home: B, searching: false }]], credsAtA).s;
  const waits: number[] = [];
  let now = 100;
  for (let i = 0; i < 8; i++) {
    const r = nextReg(s, { type: 'register-failed', aor: AOR_B, reason: '401 Unauthorized', status: 401 }, now + 1);
    const e = r.effects.find((x) => x.type === 'auth-failed') as { retryMs: number };
    waits.push(e.retryMs);
    now = r.state.authFailed!.retryAt;
    s = nextReg(r.state, { type: 'wake' }, now).state;
    t.is(s.pending?.aor, AOR_B);
  }
  t.deepEqual(waits, [30_000, 60_000, 120_000, 240_000, 480_000, AUTH_RETRY_MAX_MS, AUTH_RETRY_MAX_MS, AUTH_RETRY_MAX_MS]);
});

test('without credentials a 401 or 403 is a failure of that call manager, as before', (t) => {
  const { fx } = run([[100, { type: 'target', home: B, searching: false }], [120, { type: 'register-failed', aor: AOR_B, reason: '401 Unauthorized', status: 401 }]], run(registeredAtA).s);
  t.deepEqual(fx.slice(-2), [{ type: 'remove', aor: AOR_B }, { type: 'failed', cm: 'cm-b', reason: '401 Unauthorized' }]);
});

test('with credentials, time-outs, 408 and 5xx stay failures of that call manager', (t) => {
  for (const [reason, status] of [['408 Request Timeout', 408], ['503 Service Unavailable', 503], ['500 Server Internal Error', 500], ['Connection refused', undefined]] as const) {
    const { fx } = run([[100, { type: 'target', home: B, searching: false }], [120, { type: 'register-failed', aor: AOR_B, reason, ...(status !== undefined ? { status } : {}) }]], credsAtA);
    t.deepEqual(fx.slice(-1), [{ type: 'failed', cm: 'cm-b', reason }], reason);
  }
  const timeout = run([[100, { type: 'target', home: B, searching: false }], [4_100, { type: 'wake' }]], credsAtA);
  t.deepEqual(timeout.fx.slice(-1), [{ type: 'failed', cm: 'cm-b', reason: 'no answer in 4000 ms' }]);
});

test('a new home after refused credentials registers there at once', (t) => {
  const refused = run([[100, { type: 'target', home: B, searching: false }], [120, { type: 'register-failed', aor: AOR_B, reason: '401 Unauthorized', status: 401 }]], credsAtA).s;
  const { s, fx } = run([[500, { type: 'target', home: A, searching: false }]], refused);
  t.deepEqual(fx, [{ type: 'add', aor: AOR_A, regintS: 120 }]);
  t.is(s.authFailed, null);
  t.is(unregisteredReason(s), 'registering');
});

test('the status reason: registered, registering, no registrar, user agent down', (t) => {
  t.is(unregisteredReason(credsAtA), null);
  t.is(unregisteredReason(run([[100, { type: 'target', home: B, searching: false }]], credsAtA).s), 'registering');
  t.is(unregisteredReason(run([[100, { type: 'target', home: null, searching: false }]], credsAtA).s), 'no-registrar');
  t.is(unregisteredReason(run([[100, { type: 'ua-down' }]], credsAtA).s), 'ua-down');
  t.is(unregisteredReason(run([[100, { type: 'target', home: B, searching: false }], [120, { type: 'register-failed', aor: AOR_B, reason: 'x' }]], credsAtA).s), 'registering', 'failed: moving on');
});
