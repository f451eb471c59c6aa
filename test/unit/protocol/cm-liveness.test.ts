/**
 * The liveness rules of src/protocol/cm-liveness.ts, one table row per case,
 * each named after the rule it proves (as Sparkplug's TCK names its
 * assertions). A row feeds `before` (accepted or not) and then `msg`, and
 * checks the verdict and the state held afterwards; the challenge tests
 * below it run a verifier on a fake clock with deterministic random bytes.
 */
import test from 'ava';
import type { ErrorCode } from '../../../src/lib/errors.js';
import { CHALLENGE_GAP_MS, CHALLENGE_TRIES, CHALLENGE_TTL_MS, compareRun, LivenessVerifier, type CmRunId } from '../../../src/protocol/cm-liveness.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { encodeCmState, type CmStateBody } from '../../../src/protocol/cm-state.js';
import { generateKeyPair, parsePrivateKey, signEnvelope, trustedKeys } from '../../../src/protocol/envelope.js';

const ops = generateKeyPair();
const other = generateKeyPair();
const opsKey = parsePrivateKey(ops.privatePem);
const otherKey = parsePrivateKey(other.privatePem);
const keys = trustedKeys({ 'ops-1': ops.publicPem });

const N1 = 'nonce-run-1-conn-1';
const N2 = 'nonce-run-1-conn-2';
const N3 = 'nonce-run-2-conn-1';
type Run = { bdSeq: number; conn: number; nonce: string };
const R1: Run = { bdSeq: 10, conn: 1, nonce: N1 };
const R1b: Run = { bdSeq: 10, conn: 2, nonce: N2 };
const R2: Run = { bdSeq: 11, conn: 1, nonce: N3 };
type Seen = Run & { seq: number };

type Opts = { cm?: string; key?: typeof opsKey; kid?: string; challenge?: string };
const state = (online: boolean, run: Run, seq: number, o: Opts & { will?: true } = {}): Buffer =>
  Buffer.from(
    encodeCmState({ cm: o.cm ?? 'cm-a', online, ...run, seq, ...(o.will ? { will: o.will } : {}), ...(o.challenge ? { challenge: o.challenge } : {}) } as CmStateBody, (b) =>
      signEnvelope(b, o.key ?? opsKey, o.kid ?? 'ops-1'),
    ),
  );
/**
 * A run's states as CmRun signs them: at CONNECT of conn 1 the will (seq 1)
 * and the online (seq 2); an offline it reports itself (seq 3), online again
 * (seq 4). Conn 2 of R1 (R1b): will seq 5, online seq 6.
 */
const on = (run: Run, seq = run === R1b ? 6 : 2, o?: Opts) => state(true, run, seq, o);
const off = (run: Run, seq = 3, o?: Opts) => state(false, run, seq, o);
const will = (run: Run, o?: Opts) => state(false, run, run === R1b ? 5 : 1, { ...o, will: true });
const raw = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));
const at = (run: Run, seq: number): Seen => ({ ...run, seq });

interface Row {
  rule: string;
  before: Buffer[];
  msg: Buffer;
  /** Accepted with this online, or refused with this code (and quiet or not). */
  want: { online: boolean } | { code: ErrorCode; quiet?: boolean };
  /** The state held afterwards. */
  seen: Seen | undefined;
}

const flipped = (() => {
  const o = JSON.parse(will(R1).toString()) as Record<string, unknown>;
  return raw({ ...o, online: true });
})();
const sigOfOther = (() => {
  const a = JSON.parse(will(R1).toString()) as Record<string, string>;
  const b = JSON.parse(will(R2).toString()) as Record<string, string>;
  return raw({ ...a, sig: b.sig });
})();
/** A state signed as call managers signed them before `seq`. */
const unsequenced = Buffer.from(encodeCmState({ cm: 'cm-a', online: false, ...R1 } as CmStateBody, (b) => signEnvelope({ ...(b as object), seq: undefined }, opsKey, 'ops-1')));

const rows: Row[] = [
  // liveness-state-must-be-signed
  { rule: 'liveness-state-must-be-signed: a bare {"online":false} changes nothing', before: [on(R1)], msg: raw({ online: false }), want: { code: 'UNSIGNED' }, seen: at(R1, 2) },
  { rule: 'liveness-state-must-be-signed: a shaped but unsigned body changes nothing', before: [on(R1)], msg: raw({ online: false, kid: 'ops-1', body: Buffer.from(JSON.stringify({ cm: 'cm-a', online: false, ...R1, seq: 9 })).toString('base64') }), want: { code: 'UNSIGNED' }, seen: at(R1, 2) },
  { rule: 'liveness-state-must-be-signed: signed by another key under a trusted kid', before: [on(R1)], msg: will(R1, { key: otherKey }), want: { code: 'SIGNATURE_INVALID' }, seen: at(R1, 2) },
  { rule: 'liveness-state-must-be-signed: the signature of another body', before: [on(R1)], msg: sigOfOther, want: { code: 'SIGNATURE_INVALID' }, seen: at(R1, 2) },
  { rule: 'liveness-state-must-be-signed: an unknown kid', before: [on(R1)], msg: will(R1, { kid: 'ops-9' }), want: { code: 'KEY_UNKNOWN' }, seen: at(R1, 2) },
  { rule: 'liveness-state-must-be-signed: not JSON', before: [on(R1)], msg: Buffer.from('offline'), want: { code: 'PAYLOAD_INVALID' }, seen: at(R1, 2) },
  { rule: 'liveness-state-must-be-signed: an unsigned online is not accepted either', before: [], msg: raw({ online: true }), want: { code: 'UNSIGNED' }, seen: undefined },
  { rule: 'liveness-state-must-be-signed: a signed state without seq (it could be replayed within its run)', before: [on(R1)], msg: unsequenced, want: { code: 'PAYLOAD_INVALID' }, seen: at(R1, 2) },
  // liveness-empty-retained-refused
  { rule: 'liveness-empty-retained-refused', before: [on(R1)], msg: Buffer.alloc(0), want: { code: 'STATE_EMPTY' }, seen: at(R1, 2) },
  // liveness-body-cm-matches-topic
  { rule: 'liveness-body-cm-matches-topic: cm-b\'s genuine will on cm-a\'s topic', before: [on(R1)], msg: will(R1, { cm: 'cm-b' }), want: { code: 'WRONG_CM' }, seen: at(R1, 2) },
  { rule: 'liveness-body-cm-matches-topic: cm-b\'s genuine online on cm-a\'s topic', before: [], msg: on(R2, 2, { cm: 'cm-b' }), want: { code: 'WRONG_CM' }, seen: undefined },
  // liveness-online-field-matches-body
  { rule: 'liveness-online-field-matches-body: top-level online flipped over a signed will', before: [], msg: flipped, want: { code: 'PAYLOAD_INVALID' }, seen: undefined },
  // liveness-online-requires-not-older, liveness-offline-requires-run-match
  { rule: 'liveness-online-requires-not-older: the first online is taken', before: [], msg: on(R1), want: { online: true }, seen: at(R1, 2) },
  { rule: 'liveness-online-requires-not-older: a newer run (restart, bdSeq increased)', before: [on(R1)], msg: on(R2), want: { online: true }, seen: at(R2, 2) },
  { rule: 'liveness-offline-requires-run-match: a newer run that starts offline, never seen online (quiet)', before: [on(R1)], msg: off(R2, 2), want: { code: 'STATE_RUN_UNKNOWN', quiet: true }, seen: at(R1, 2) },
  { rule: 'liveness-offline-requires-run-match: its own offline of the run held', before: [on(R1)], msg: off(R1, 3), want: { online: false }, seen: at(R1, 3) },
  { rule: 'liveness-offline-requires-run-match: an own offline of an earlier run is a replay', before: [on(R2)], msg: off(R1, 3), want: { code: 'STATE_STALE' }, seen: at(R2, 2) },
  { rule: 'liveness-online-requires-not-older: a newer run after the will of the last one', before: [on(R1), will(R1)], msg: on(R2), want: { online: true }, seen: at(R2, 2) },
  { rule: 'liveness-offline-requires-run-match: no run seen online yet (quiet)', before: [], msg: off(R1), want: { code: 'STATE_RUN_UNKNOWN', quiet: true }, seen: undefined },
  // liveness-seq-strictly-newer
  { rule: 'liveness-seq-strictly-newer: the state held again is not news (quiet)', before: [on(R1)], msg: on(R1), want: { code: 'STATE_STALE', quiet: true }, seen: at(R1, 2) },
  { rule: 'liveness-seq-strictly-newer: its own offline while it lives (SIP server silent) is newer', before: [on(R1)], msg: off(R1, 3), want: { online: false }, seen: at(R1, 3) },
  { rule: 'liveness-seq-strictly-newer: online again after its own offline is newer still', before: [on(R1), off(R1, 3)], msg: on(R1, 4), want: { online: true }, seen: at(R1, 4) },
  { rule: 'liveness-seq-strictly-newer: its recorded offline replayed after it came back is refused', before: [on(R1), off(R1, 3), on(R1, 4)], msg: off(R1, 3), want: { code: 'STATE_STALE' }, seen: at(R1, 4) },
  { rule: 'liveness-seq-strictly-newer: its recorded offline replayed a second time is refused too', before: [on(R1), off(R1, 3), on(R1, 4), off(R1, 3)], msg: off(R1, 3), want: { code: 'STATE_STALE' }, seen: at(R1, 4) },
  { rule: 'liveness-seq-strictly-newer: its recorded online replayed while it reports offline is refused', before: [on(R1), off(R1, 3)], msg: on(R1, 2), want: { code: 'STATE_STALE' }, seen: at(R1, 3) },
  { rule: 'liveness-seq-strictly-newer: an older online while online says nothing (quiet)', before: [on(R1), off(R1, 3), on(R1, 4)], msg: on(R1, 2), want: { code: 'STATE_STALE', quiet: true }, seen: at(R1, 4) },
  { rule: 'liveness-online-requires-not-older: a newer connection of the same run (reconnect)', before: [on(R1)], msg: on(R1b), want: { online: true }, seen: at(R1b, 6) },
  { rule: 'liveness-offline-requires-run-match: an own offline of an older connection of the run is refused', before: [on(R1b)], msg: off(R1, 3), want: { code: 'STATE_STALE' }, seen: at(R1b, 6) },
  { rule: 'liveness-seq-strictly-newer: same bdSeq and conn, another nonce', before: [on(R1)], msg: on({ ...R1, nonce: 'another-nonce-xyz' }, 3), want: { code: 'STATE_RUN_MISMATCH' }, seen: at(R1, 2) },
  // liveness-will-is-final
  { rule: 'liveness-will-is-final: the will of the connection held', before: [on(R1)], msg: will(R1), want: { online: false }, seen: at(R1, 2) },
  { rule: 'liveness-will-is-final: the will after its own offline and online again (signed before them)', before: [on(R1), off(R1, 3), on(R1, 4)], msg: will(R1), want: { online: false }, seen: at(R1, 4) },
  { rule: 'liveness-will-is-final: the will of the reconnected connection', before: [on(R1), on(R1b)], msg: will(R1b), want: { online: false }, seen: at(R1b, 6) },
  { rule: 'liveness-will-is-final: once seen, the connection\'s online replayed is refused', before: [on(R1), will(R1)], msg: on(R1), want: { code: 'STATE_STALE' }, seen: at(R1, 2) },
  { rule: 'liveness-will-is-final: once seen, a newer state of that connection is refused too', before: [on(R1), will(R1)], msg: on(R1, 9), want: { code: 'STATE_STALE' }, seen: at(R1, 2) },
  { rule: 'liveness-will-is-final: the will again is not news (quiet)', before: [on(R1), will(R1)], msg: will(R1), want: { code: 'STATE_STALE', quiet: true }, seen: at(R1, 2) },
  { rule: 'liveness-will-is-final: the next connection of the run after the will is believed', before: [on(R1), will(R1)], msg: on(R1b), want: { online: true }, seen: at(R1b, 6) },
  { rule: 'liveness-offline-requires-run-match: a replayed will of an earlier run', before: [on(R2)], msg: will(R1), want: { code: 'STATE_STALE' }, seen: at(R2, 2) },
  { rule: 'liveness-offline-requires-run-match: a replayed will of an earlier connection of the run', before: [on(R1), on(R1b)], msg: will(R1), want: { code: 'STATE_STALE' }, seen: at(R1b, 6) },
  { rule: 'liveness-offline-requires-run-match: same bdSeq and conn, another nonce', before: [on(R1)], msg: will({ ...R1, nonce: 'another-nonce-xyz' }), want: { code: 'STATE_RUN_MISMATCH' }, seen: at(R1, 2) },
  { rule: 'liveness-offline-requires-run-match: a will when no run was seen online (quiet)', before: [], msg: will(R1), want: { code: 'STATE_RUN_UNKNOWN', quiet: true }, seen: undefined },
  { rule: 'liveness-offline-requires-run-match: a will of a newer run never seen online (quiet)', before: [on(R1)], msg: will(R2), want: { code: 'STATE_RUN_UNKNOWN', quiet: true }, seen: at(R1, 2) },
  // liveness-refused-changes-nothing
  { rule: 'liveness-refused-changes-nothing: a flood of refusals, then the genuine will still counts', before: [on(R1), raw({ online: false }), Buffer.alloc(0), will(R1, { key: otherKey }), on(R1, 2, { cm: 'cm-b' }), will(R2), on(R1), off(R1, 2)], msg: will(R1), want: { online: false }, seen: at(R1, 2) },
];

for (const row of rows) {
  test(row.rule, (t) => {
    const v = new LivenessVerifier(keys);
    for (const b of row.before) v.check('cm-a', b);
    const got = v.check('cm-a', row.msg);
    if ('online' in row.want) {
      t.true(got.ok, JSON.stringify(got));
      if (got.ok) t.is(got.online, row.want.online);
    } else {
      t.false(got.ok, 'refused');
      if (!got.ok) {
        t.is(got.code, row.want.code, got.reason);
        t.is(got.quiet, row.want.quiet ?? false, got.reason);
        t.true(got.reason.length > 0);
        t.is(got.challenge, undefined, 'no challenge for these');
      }
    }
    const seen = v.seen('cm-a');
    t.deepEqual(seen === undefined ? undefined : { ...seen }, row.seen);
  });
}

test('liveness-per-cm: one call manager\'s run says nothing about another\'s', (t) => {
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', on(R2)).ok);
  const b = v.check('cm-b', will(R2, { cm: 'cm-b' }));
  t.false(b.ok);
  if (!b.ok) t.is(b.code, 'STATE_RUN_UNKNOWN');
  t.true(v.check('cm-b', on(R1, 2, { cm: 'cm-b' })).ok, 'cm-b\'s older bdSeq is not compared with cm-a\'s');
});

test('liveness-keys-replaced: after setKeys a retired key no longer verifies, and the run seen is kept', (t) => {
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', on(R1)).ok);
  v.setKeys(trustedKeys({ 'ops-2': other.publicPem }));
  const r = v.check('cm-a', will(R1));
  t.false(r.ok);
  if (!r.ok) t.is(r.code, 'KEY_UNKNOWN');
  t.true(v.check('cm-a', will(R1, { key: otherKey, kid: 'ops-2' })).ok);
});

/** A verifier on a fake clock with deterministic challenges (16 bytes of 1, 2, …). */
function challenging() {
  const clock = new FakeClock();
  let n = 0;
  const v = new LivenessVerifier(keys, { clock, randomBytes: (len) => Buffer.alloc(len, ++n) });
  return { v, clock, nth: (i: number) => Buffer.alloc(16, i).toString('base64url') };
}
/** The run of a reinstalled cm-a: empty state directory, a correct clock → a lower bdSeq than its dead run (R2). */
const LOW: Run = { bdSeq: 5, conn: 1, nonce: 'nonce-reinstalled-1' };

test('liveness-unordered-online-challenged: a reinstalled call manager\'s lower online is challenged, and its answer is believed', (t) => {
  const { v, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  t.true(v.check('cm-a', will(R2)).ok, 'the dead run\'s will');
  const r = v.check('cm-a', on(LOW));
  t.false(r.ok);
  if (!r.ok) t.like(r, { code: 'STATE_STALE', quiet: true, challenge: nth(1) });
  t.deepEqual({ ...v.seen('cm-a')! }, at(R2, 2), 'the trigger is not believed');
  const a = v.answer('cm-a', on(LOW, 2, { challenge: nth(1) }));
  t.like(a, { ok: true, online: true, answered: true });
  t.deepEqual({ ...v.seen('cm-a')! }, at(LOW, 2));
  // From now on its states are ordered within its run as any other's.
  t.true(v.check('cm-a', will(LOW)).ok, 'its will counts');
});

test('liveness-unordered-online-challenged: also while the higher run is held online (its will was missed)', (t) => {
  const { v, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  const r = v.check('cm-a', on(LOW));
  t.like(r, { ok: false, challenge: nth(1) });
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: nth(1) })), { ok: true, online: true });
});

test('liveness-unordered-online-challenged: a replayed online of a dead run is never believed: no one answers', (t) => {
  const { v, clock, nth } = challenging();
  t.true(v.check('cm-a', on(R1)).ok);
  t.true(v.check('cm-a', on(R2)).ok);
  t.true(v.check('cm-a', will(R2)).ok);
  // The recorded online of run R1 (dead) replayed: challenged, never answered.
  t.like(v.check('cm-a', on(R1)), { ok: false, code: 'STATE_STALE', challenge: nth(1) });
  t.like(v.check('cm-a', on(R1)), { ok: false, code: 'STATE_STALE', quiet: true }, 'a second replay inside the gap');
  t.is((v.check('cm-a', on(R1)) as { challenge?: string }).challenge, undefined, 'no new challenge inside the gap');
  clock.advance(CHALLENGE_GAP_MS);
  t.like(v.check('cm-a', on(R1)), { ok: false, challenge: nth(2) }, 'one per gap');
  // Its recorded online with a challenge in it (an answer to someone else) is not an answer to ours.
  t.like(v.answer('cm-a', on(R1, 2, { challenge: nth(7) })), { ok: false, code: 'CHALLENGE_UNKNOWN' });
  t.like(v.answer('cm-a', on(R1)), { ok: false, code: 'CHALLENGE_UNKNOWN' }, 'no challenge at all');
  t.deepEqual({ ...v.seen('cm-a')! }, at(R2, 2));
});

test('liveness-unordered-online-challenged: an offline that cannot be ordered is refused, never challenged', (t) => {
  const { v } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  const r = v.check('cm-a', off(R1));
  t.like(r, { ok: false, code: 'STATE_STALE', quiet: false });
  t.is((r as { challenge?: string }).challenge, undefined);
});

test('liveness-unordered-online-challenged: after a lower run was taken back, the dead higher run\'s online is challenged, not taken (maxBdSeq)', (t) => {
  const { v, clock, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  t.true(v.check('cm-a', will(R2)).ok);
  v.check('cm-a', on(LOW));
  t.true(v.answer('cm-a', on(LOW, 2, { challenge: nth(1) })).ok);
  clock.advance(CHALLENGE_GAP_MS);
  // R2's bdSeq is above LOW's: by ordering alone it would be a restart. It is not above all ever believed.
  const r = v.check('cm-a', on(R2));
  t.like(r, { ok: false, code: 'STATE_STALE', quiet: true, challenge: nth(2) });
  t.deepEqual({ ...v.seen('cm-a')! }, at(LOW, 2));
  // The live (LOW) process answers: what it says is believed, the replay never is.
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: (r as { challenge: string }).challenge })), { ok: false, code: 'STATE_STALE', quiet: true }, 'the run held, no newer');
  t.deepEqual({ ...v.seen('cm-a')! }, at(LOW, 2));
  // A genuine restart above every run ever seen is taken as it comes.
  t.true(v.check('cm-a', on({ bdSeq: 12, conn: 1, nonce: 'nonce-run-12-conn1' })).ok);
});

test('liveness-unordered-online-challenged: an online inside the gap after another challenge is challenged once the gap is over (retry)', (t) => {
  const { v, clock, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  t.true(v.check('cm-a', will(R2)).ok);
  // A replay of a dead run's online triggers a challenge no one answers…
  t.like(v.check('cm-a', on(R1)), { ok: false, challenge: nth(1) });
  clock.advance(300);
  // …and the reinstalled run's genuine online arrives inside the gap: not challenged now, but later.
  const r = v.check('cm-a', on(LOW));
  t.like(r, { ok: false, code: 'STATE_STALE', quiet: true, retryInMs: CHALLENGE_GAP_MS - 300 });
  t.is((r as { challenge?: string }).challenge, undefined);
  clock.advance(CHALLENGE_GAP_MS - 300);
  const again = v.retry('cm-a');
  t.is(again.challenge, nth(2));
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: nth(2) })), { ok: true, online: true });
  t.deepEqual(v.retry('cm-a'), {}, 'answered: nothing more to ask');
});

test('liveness-unordered-online-challenged: an unanswered challenge is asked again, backing off, at most CHALLENGE_TRIES times', (t) => {
  const { v, clock, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  const first = v.check('cm-a', on(R1));
  t.like(first, { ok: false, challenge: nth(1), retryInMs: CHALLENGE_GAP_MS });
  const sent = [nth(1)];
  const gaps: number[] = [];
  let wait = (first as { retryInMs?: number }).retryInMs;
  while (wait !== undefined) {
    t.deepEqual(v.retry('cm-a'), { retryInMs: wait }, 'not before its time');
    clock.advance(wait);
    gaps.push(wait);
    const r = v.retry('cm-a');
    if (r.challenge !== undefined) sent.push(r.challenge);
    wait = r.retryInMs;
  }
  t.is(sent.length, CHALLENGE_TRIES);
  t.deepEqual(gaps, [1000, 2000, 4000, 8000]);
  t.deepEqual(v.retry('cm-a'), {}, 'given up: a dead run does not answer');
  t.deepEqual({ ...v.seen('cm-a')! }, at(R2, 2));
});

test('liveness-answer-binds-challenge: used once, within its time, ours only, signed by a trusted key', (t) => {
  const { v, clock, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  v.check('cm-a', on(LOW));
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: nth(1), key: otherKey })), { ok: false, code: 'SIGNATURE_INVALID' });
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: nth(1), cm: 'cm-b' })), { ok: false, code: 'WRONG_CM' });
  clock.advance(CHALLENGE_TTL_MS + 1);
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: nth(1) })), { ok: false, code: 'CHALLENGE_UNKNOWN' }, 'expired');
  const again = v.check('cm-a', on(LOW));
  t.like(again, { ok: false, challenge: nth(2) });
  t.true(v.answer('cm-a', on(LOW, 2, { challenge: nth(2) })).ok);
  t.like(v.answer('cm-a', on(LOW, 2, { challenge: nth(2) })), { ok: false, code: 'CHALLENGE_UNKNOWN' }, 'used');
});

test('liveness-answer-binds-challenge: the answer says offline when the live call manager reports itself offline', (t) => {
  const { v, nth } = challenging();
  t.true(v.check('cm-a', on(R2)).ok);
  v.check('cm-a', on(LOW));
  t.like(v.answer('cm-a', off(LOW, 3, { challenge: nth(1) })), { ok: true, online: false });
  t.true(v.check('cm-a', on(LOW, 4)).ok, 'and its next online, newer, is taken');
});

test('compareRun orders by bdSeq, then conn', (t) => {
  const r = (bdSeq: number, conn: number): CmRunId => ({ bdSeq, conn, nonce: 'x', seq: 1 });
  t.is(compareRun(r(1, 9), r(2, 1)), -1);
  t.is(compareRun(r(2, 1), r(1, 9)), 1);
  t.is(compareRun(r(2, 1), r(2, 2)), -1);
  t.is(compareRun(r(2, 2), r(2, 2)), 0);
});
