/**
 * The liveness rules of src/protocol/cm-liveness.ts, one table row per case,
 * each named after the rule it proves (as Sparkplug's TCK names its
 * assertions). A row feeds `before` (accepted or not) and then `msg`, and
 * checks the verdict and the run remembered afterwards.
 */
import test from 'ava';
import type { ErrorCode } from '../../../src/lib/errors.js';
import { compareRun, LivenessVerifier, type CmRunId } from '../../../src/protocol/cm-liveness.js';
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

const state = (online: boolean, run: Run, o: { cm?: string; key?: typeof opsKey; kid?: string } = {}): Buffer =>
  Buffer.from(encodeCmState({ cm: o.cm ?? 'cm-a', online, ...run } as CmStateBody, (b) => signEnvelope(b, o.key ?? opsKey, o.kid ?? 'ops-1')));
const on = (run: Run, o?: Parameters<typeof state>[2]) => state(true, run, o);
const off = (run: Run, o?: Parameters<typeof state>[2]) => state(false, run, o);
const raw = (v: unknown): Buffer => Buffer.from(JSON.stringify(v));

interface Row {
  rule: string;
  before: Buffer[];
  msg: Buffer;
  /** Accepted with this online, or refused with this code (and quiet or not). */
  want: { online: boolean } | { code: ErrorCode; quiet?: boolean };
  /** The run remembered as seen online afterwards. */
  seen: Run | undefined;
}

const flipped = (() => {
  const o = JSON.parse(off(R1).toString()) as Record<string, unknown>;
  return raw({ ...o, online: true });
})();
const sigOfOther = (() => {
  const a = JSON.parse(off(R1).toString()) as Record<string, string>;
  const b = JSON.parse(off(R2).toString()) as Record<string, string>;
  return raw({ ...a, sig: b.sig });
})();

const rows: Row[] = [
  // liveness-state-must-be-signed
  { rule: 'liveness-state-must-be-signed: a bare {"online":false} changes nothing', before: [on(R1)], msg: raw({ online: false }), want: { code: 'UNSIGNED' }, seen: R1 },
  { rule: 'liveness-state-must-be-signed: a shaped but unsigned body changes nothing', before: [on(R1)], msg: raw({ online: false, kid: 'ops-1', body: Buffer.from(JSON.stringify({ cm: 'cm-a', online: false, ...R1 })).toString('base64') }), want: { code: 'UNSIGNED' }, seen: R1 },
  { rule: 'liveness-state-must-be-signed: signed by another key under a trusted kid', before: [on(R1)], msg: off(R1, { key: otherKey }), want: { code: 'SIGNATURE_INVALID' }, seen: R1 },
  { rule: 'liveness-state-must-be-signed: the signature of another body', before: [on(R1)], msg: sigOfOther, want: { code: 'SIGNATURE_INVALID' }, seen: R1 },
  { rule: 'liveness-state-must-be-signed: an unknown kid', before: [on(R1)], msg: off(R1, { kid: 'ops-9' }), want: { code: 'KEY_UNKNOWN' }, seen: R1 },
  { rule: 'liveness-state-must-be-signed: not JSON', before: [on(R1)], msg: Buffer.from('offline'), want: { code: 'PAYLOAD_INVALID' }, seen: R1 },
  { rule: 'liveness-state-must-be-signed: an unsigned online is not accepted either', before: [], msg: raw({ online: true }), want: { code: 'UNSIGNED' }, seen: undefined },
  // liveness-empty-retained-refused
  { rule: 'liveness-empty-retained-refused', before: [on(R1)], msg: Buffer.alloc(0), want: { code: 'STATE_EMPTY' }, seen: R1 },
  // liveness-body-cm-matches-topic
  { rule: 'liveness-body-cm-matches-topic: cm-b\'s genuine offline on cm-a\'s topic', before: [on(R1)], msg: off(R1, { cm: 'cm-b' }), want: { code: 'WRONG_CM' }, seen: R1 },
  { rule: 'liveness-body-cm-matches-topic: cm-b\'s genuine online on cm-a\'s topic', before: [], msg: on(R2, { cm: 'cm-b' }), want: { code: 'WRONG_CM' }, seen: undefined },
  // liveness-online-field-matches-body
  { rule: 'liveness-online-field-matches-body: top-level online flipped over a signed offline', before: [], msg: flipped, want: { code: 'PAYLOAD_INVALID' }, seen: undefined },
  // liveness-online-requires-not-older
  { rule: 'liveness-online-requires-not-older: the first online is taken', before: [], msg: on(R1), want: { online: true }, seen: R1 },
  { rule: 'liveness-online-requires-not-older: the same online again', before: [on(R1)], msg: on(R1), want: { online: true }, seen: R1 },
  { rule: 'liveness-online-requires-not-older: a newer connection of the same run (reconnect)', before: [on(R1)], msg: on(R1b), want: { online: true }, seen: R1b },
  { rule: 'liveness-online-requires-not-older: a newer run (restart, bdSeq increased)', before: [on(R1)], msg: on(R2), want: { online: true }, seen: R2 },
  { rule: 'liveness-online-requires-not-older: an older run is stale', before: [on(R2)], msg: on(R1), want: { code: 'STATE_STALE' }, seen: R2 },
  { rule: 'liveness-online-requires-not-older: an older connection of the run is stale', before: [on(R1b)], msg: on(R1), want: { code: 'STATE_STALE' }, seen: R1b },
  { rule: 'liveness-online-requires-not-older: same bdSeq and conn, another nonce', before: [on(R1)], msg: on({ ...R1, nonce: 'another-nonce-xyz' }), want: { code: 'STATE_RUN_MISMATCH' }, seen: R1 },
  { rule: 'liveness-online-requires-not-older: back online after its own offline of the same run', before: [on(R1), off(R1)], msg: on(R1), want: { online: true }, seen: R1 },
  // liveness-offline-requires-run-match
  { rule: 'liveness-offline-requires-run-match: the will of the run seen online', before: [on(R1)], msg: off(R1), want: { online: false }, seen: R1 },
  { rule: 'liveness-offline-requires-run-match: the will of the reconnected connection', before: [on(R1), on(R1b)], msg: off(R1b), want: { online: false }, seen: R1b },
  { rule: 'liveness-offline-requires-run-match: a replayed will of an earlier run', before: [on(R2)], msg: off(R1), want: { code: 'STATE_STALE' }, seen: R2 },
  { rule: 'liveness-offline-requires-run-match: a replayed will of an earlier connection of the run', before: [on(R1), on(R1b)], msg: off(R1), want: { code: 'STATE_STALE' }, seen: R1b },
  { rule: 'liveness-offline-requires-run-match: same bdSeq and conn, another nonce', before: [on(R1)], msg: off({ ...R1, nonce: 'another-nonce-xyz' }), want: { code: 'STATE_RUN_MISMATCH' }, seen: R1 },
  { rule: 'liveness-offline-requires-run-match: no run seen online yet (quiet)', before: [], msg: off(R1), want: { code: 'STATE_RUN_UNKNOWN', quiet: true }, seen: undefined },
  { rule: 'liveness-offline-requires-run-match: a newer run never seen online (quiet)', before: [on(R1)], msg: off(R2), want: { code: 'STATE_RUN_UNKNOWN', quiet: true }, seen: R1 },
  // liveness-refused-changes-nothing
  { rule: 'liveness-refused-changes-nothing: a flood of refusals, then the genuine will still counts', before: [on(R1), raw({ online: false }), Buffer.alloc(0), off(R1, { key: otherKey }), on(R1, { cm: 'cm-b' }), off(R2)], msg: off(R1), want: { online: false }, seen: R1 },
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
        t.is(got.quiet, row.want.quiet ?? false);
        t.true(got.reason.length > 0);
      }
    }
    const seen = v.seen('cm-a');
    t.deepEqual(seen === undefined ? undefined : { ...seen }, row.seen);
  });
}

test('liveness-per-cm: one call manager\'s run says nothing about another\'s', (t) => {
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', on(R2)).ok);
  const b = v.check('cm-b', off(R2, { cm: 'cm-b' }));
  t.false(b.ok);
  if (!b.ok) t.is(b.code, 'STATE_RUN_UNKNOWN');
  t.true(v.check('cm-b', on(R1, { cm: 'cm-b' })).ok, 'cm-b\'s older bdSeq is not compared with cm-a\'s');
});

test('liveness-keys-replaced: after setKeys a retired key no longer verifies, and the run seen is kept', (t) => {
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', on(R1)).ok);
  v.setKeys(trustedKeys({ 'ops-2': other.publicPem }));
  const r = v.check('cm-a', off(R1));
  t.false(r.ok);
  if (!r.ok) t.is(r.code, 'KEY_UNKNOWN');
  t.true(v.check('cm-a', off(R1, { key: otherKey, kid: 'ops-2' })).ok);
});

test('compareRun orders by bdSeq, then conn', (t) => {
  const r = (bdSeq: number, conn: number): CmRunId => ({ bdSeq, conn, nonce: 'x' });
  t.is(compareRun(r(1, 9), r(2, 1)), -1);
  t.is(compareRun(r(2, 1), r(1, 9)), 1);
  t.is(compareRun(r(2, 1), r(2, 2)), -1);
  t.is(compareRun(r(2, 2), r(2, 2)), 0);
});
