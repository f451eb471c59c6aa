/**
 * Digest authentication in the simulated SIP world answers as RFC 3261 §22 /
 * RFC 2617 and docs/simulation.md say: a challenge first, credentials taken or
 * refused (401 again, or 403), a stale nonce challenged again without a
 * failure, an unregister authenticated too, the operator's password edits at
 * their times; and the refusal reaches the product through its own baresip
 * event mapping. The checkers are proved able to fail by the auth plants in
 * regressions.json (sim.test.ts).
 */
import test from 'ava';
import { defaultTopology } from '../../src/sim/group.js';
import { Rng } from '../../src/sim/rng.js';
import { runSeed, scheduleFor } from '../../src/sim/run.js';
import { drawSipAuth, NONCE_EXPIRE_MS, refusalEvent, retryWait, SipAuth, type AuthPlant, type SipAuthPlan } from '../../src/sim/sip-auth.js';
import { sipWorld } from '../helpers/sim-sip.js';

function authWorld(plan: Partial<SipAuthPlan>, plant?: AuthPlant) {
  const { w, sw, aor, phone, run } = sipWorld();
  const auth = (sw.auth = new SipAuth(w, { authRetryMs: 5000, challenge: new Map([['cm-a', 401], ['cm-b', 403]]), wrong: new Set(), changes: [], ...plan }, plant));
  const refused: string[] = [];
  auth.onRefusalSent = (phone, cm) => refused.push(`${phone} ${cm}`);
  return { w, sw, auth, aor, phone, run, refused };
}

test('right credentials: the REGISTER is challenged 401, sent again with credentials and bound, within four link crossings', async (t) => {
  const s = authWorld({});
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(120);
  t.deepEqual(p.events.map((e) => e.type), ['up', 'registered']);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
  t.deepEqual(s.refused, []);
});

test('wrong credentials: refused 401 after they were sent (403 where the registrar answers so), reported through the product\'s baresip event mapping with the status; nothing bound', async (t) => {
  const s = authWorld({ wrong: new Set(['cm-a p-0001', 'cm-b p-0001']) });
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await p.ua.addAccount(s.aor('10001', 'cm-b'), 60);
  await s.run(200);
  const failed = p.events.filter((e) => e.type === 'register-failed');
  t.deepEqual(failed.map((e) => (e as { status?: number }).status).sort(), [401, 403]);
  t.deepEqual(failed.map((e) => (e as { reason: string }).reason).sort(), ['401 Unauthorized', '403 Forbidden']);
  t.deepEqual(s.sw.boundAt('10001'), []);
  t.deepEqual(s.refused.sort(), ['p-0001 cm-a', 'p-0001 cm-b']);
});

test('libre tries a refused account again after its fail wait while the account exists, not before', async (t) => {
  const s = authWorld({ wrong: new Set(['cm-a p-0001']) });
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(29_000);
  t.is(s.refused.length, 1);
  await s.run(2_000);
  t.is(s.refused.length, 2);
  await p.ua.removeAccount(s.aor('10001', 'cm-a'));
  await s.run(60_000);
  t.is(s.refused.length, 2, 'an unregister refused is not a REGISTER retried');
});

test('the operator\'s edit: a bound phone\'s refresh is refused once its password changed, its binding stays until it expires (its unregister refused too); fixed, it registers again', async (t) => {
  const s = authWorld({ changes: [{ at: 10_000, cm: 'cm-a', phone: 'p-0001', right: false }, { at: 120_000, cm: 'cm-a', phone: 'p-0001', right: true }] });
  s.auth.schedule();
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(56_000); // the refresh at 54 s
  t.true(p.events.some((e) => e.type === 'register-failed' && e.status === 401));
  t.true(s.auth.refuses('cm-a', 'p-0001'));
  await p.ua.removeAccount(s.aor('10001', 'cm-a'));
  await s.run(1_000);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a'], 'the refused unregister leaves the binding');
  await s.run(10_000);
  t.deepEqual(s.sw.boundAt('10001'), [], 'expired 60 s after the last refresh taken');
  await s.run(60_000);
  t.false(s.auth.refuses('cm-a', 'p-0001'));
  t.is(s.auth.rightSince('cm-a', 'p-0001'), 120_000);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(200);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
});

test('a nonce older than the registrar\'s nonce_expire is answered 401 stale: the user agent answers the new challenge at once, no failure', async (t) => {
  const s = authWorld({});
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(NONCE_EXPIRE_MS + 60_000);
  t.false(p.events.some((e) => e.type === 'register-failed'));
  t.true(p.events.filter((e) => e.type === 'registered').length >= 6);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
  t.is(s.auth.verdict('cm-a', 'p-0001', 'cm-a-1'), 'stale');
  t.is(s.auth.verdict('cm-a', 'p-0001', undefined), 'challenge');
  t.is(s.auth.verdict('cm-c', 'p-0001', undefined), 'ok', 'a registrar that asks for nothing');
});

test('refusalEvent: a refusal is REGISTER_FAIL through baresip-messages.ts sipEventOf; the plants lie about it', (t) => {
  t.deepEqual(refusalEvent('sip:1@h', '401 Unauthorized', undefined), { type: 'register-failed', aor: 'sip:1@h', reason: '401 Unauthorized', status: 401 });
  t.deepEqual(refusalEvent('sip:1@h', '403 Forbidden', undefined), { type: 'register-failed', aor: 'sip:1@h', reason: '403 Forbidden', status: 403 });
  t.false('status' in refusalEvent('sip:1@h', '401 Unauthorized', 'auth-rehome'));
  t.is(refusalEvent('sip:1@h', '401 Unauthorized', 'auth-blind').type, 'registered');
});

test('retryWait: authRetryMs doubling per refusal, capped at 10 minutes or authRetryMs when longer (the config\'s documented rule)', (t) => {
  t.deepEqual([0, 1, 2, 3].map((k) => retryWait(5000, k)), [5000, 10_000, 20_000, 40_000]);
  t.is(retryWait(5000, 12), 600_000);
  t.is(retryWait(900_000, 3), 900_000);
});

test('drawSipAuth: about a third of the seeds, from fork sip-auth only; the others keep their schedule and a world without credentials', (t) => {
  let on = 0;
  for (let seed = 1; seed <= 60; seed++) {
    const a = scheduleFor(seed);
    const b = scheduleFor(seed, { plant: 'auth-stuck' });
    t.deepEqual(a.faults, b.faults, 'the auth draw shifts no other draw');
    t.not(b.auth, undefined, 'an auth plant forces it on');
    if (a.auth === undefined) t.is(a.topo.phoneSip.auth, undefined);
    else {
      on++;
      t.deepEqual(a.topo.phoneSip.auth?.authRetryMs, a.auth.authRetryMs);
      t.true(a.auth.challenge.size > 0);
    }
  }
  t.true(on >= 10 && on <= 35, `${on} of 60`);
  t.deepEqual(drawSipAuth(new Rng(7), defaultTopology(4), true), drawSipAuth(new Rng(7), defaultTopology(4), true));
});

test('a seed with refused credentials holds every invariant: refusals were sent, and the auth checkers judged', async (t) => {
  const res = await runSeed(6);
  t.deepEqual(res.violations, []);
  t.true((res.authRefusals ?? 0) > 0, `refusals: ${res.authRefusals}`);
});
