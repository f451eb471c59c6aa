/**
 * Issue 15 §1, recovery: a phone holding a version far ahead (taken from a call
 * manager dragged ahead before the fix, or one whose clock was wrong) refuses
 * every list a call manager may now issue (never above its clock + 24 h). A
 * signed rebase (`ipphone-admin pointers --rebase`) replaces that version with a
 * lower one — bound to the phone, short-lived, and one-time: it is taken only
 * while the phone holds exactly the version it names, so a recorded rebase can
 * never roll a phone back later. These are the phone's checks (the agent opens a
 * pushed list with `rebase: true`, an ack or an unsigned body without).
 */
import test from 'ava';
import { rebaseBody } from '../../../src/admin/bodies.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { openPointers, parsePointersBody, REBASE_MAX_LIFETIME_MS, type OpenContext } from '../../../src/protocol/codec.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { PointersBody } from '../../../src/protocol/types.js';

const NOW = 1_764_000_000_000;
const DAY = 24 * 3600_000;
const FAR = NOW + 30 * DAY;
const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);
const A = { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' };
const B = { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services' };
const pushed = (heldVersion: number, now = NOW): OpenContext => ({ phoneId: 'p1', heldVersion, now, rebase: true });
const rebase = (o: Partial<PointersBody> = {}): PointersBody => ({ version: NOW, reason: 'admin', list: [A, B], expires: NOW + 10 * 60_000, phone: 'p1', rebase: FAR, ...o });
const code = (fn: () => unknown): string | undefined => {
  try {
    fn();
    return undefined;
  } catch (err) {
    return isIpphoneError(err) ? err.code : String(err);
  }
};

test('rebase-recovers-far-ahead-phone: a signed rebase naming the held version is taken although lower; then the call managers\' lists are again', (t) => {
  const body = openPointers(signEnvelope(rebase(), priv, 'ops-1'), trusted, pushed(FAR));
  t.is(body.version, NOW);
  t.is(body.rebase, FAR);
  // A list a call manager issues a minute later (its clock + 0) is newer than the rebased version.
  t.is(code(() => openPointers(signEnvelope({ version: NOW + 60_000, reason: 'failover', list: [B, A] }, priv, 'ops-1'), trusted, { phoneId: 'p1', heldVersion: body.version, now: NOW })), undefined);
  // ...and was refused before the rebase.
  t.is(code(() => openPointers(signEnvelope({ version: NOW + 60_000, reason: 'failover', list: [B, A] }, priv, 'ops-1'), trusted, { phoneId: 'p1', heldVersion: FAR, now: NOW })), 'VERSION_REPLAYED');
});

test('rebase-is-one-time: the same rebase replayed after it was taken is refused (the phone no longer holds the version it names)', (t) => {
  const env = signEnvelope(rebase(), priv, 'ops-1');
  openPointers(env, trusted, pushed(FAR));
  t.is(code(() => openPointers(env, trusted, pushed(NOW))), 'VERSION_REPLAYED', 'replayed at once');
  t.is(code(() => openPointers(env, trusted, pushed(NOW + 120_000, NOW + 60_000))), 'VERSION_REPLAYED', 'replayed after newer lists');
});

test('rebase-is-bound-and-short-lived: another phone, no phone, expired, no expiry or one too far off are refused', (t) => {
  const open = (b: PointersBody, now = NOW): string | undefined => code(() => openPointers(signEnvelope(b, priv, 'ops-1'), trusted, pushed(FAR, now)));
  t.is(open(rebase({ phone: 'p2' })), 'WRONG_PHONE');
  const { phone: _p, ...unbound } = rebase();
  t.is(open(unbound), 'WRONG_PHONE', 'a rebase must name its phone');
  t.is(open(rebase(), NOW + 10 * 60_000), 'EXPIRED');
  const { expires: _e, ...forever } = rebase();
  t.is(open(forever), 'PAYLOAD_INVALID');
  t.is(open(rebase({ expires: NOW + REBASE_MAX_LIFETIME_MS + 1 })), 'PAYLOAD_INVALID');
  t.is(open(rebase({ version: FAR })), 'PAYLOAD_INVALID', 'not below the version it replaces');
});

test('rebase-only-signed-and-pushed: unsigned, in an ack, or signed by an unknown key, a rebase is refused', (t) => {
  const bytes = Buffer.from(JSON.stringify(rebase()));
  t.is(code(() => parsePointersBody(bytes, { phoneId: 'p1', heldVersion: FAR, now: NOW })), 'PAYLOAD_INVALID', 'unsigned (trust.requireSigned false)');
  t.is(code(() => openPointers(signEnvelope(rebase(), priv, 'ops-1'), trusted, { ...pushed(FAR), rebase: false })), 'PAYLOAD_INVALID', 'in an ack');
  const other = parsePrivateKey(generateKeyPair().privatePem);
  t.is(code(() => openPointers(signEnvelope(rebase(), other, 'ops-1'), trusted, pushed(FAR))), 'SIGNATURE_INVALID');
});

test('rebase body (ipphone-admin pointers --rebase): names the held version, the phone and a short expiry; refuses when nothing is ahead', (t) => {
  const b = rebaseBody([A, B], 'admin', { phone: 'p1', now: NOW, held: FAR, expiresInMs: 10 * 60_000 });
  t.deepEqual(b, { version: NOW, reason: 'admin', list: [A, B], expires: NOW + 10 * 60_000, phone: 'p1', rebase: FAR });
  t.is(code(() => rebaseBody([A], 'admin', { phone: 'p1', now: NOW, held: NOW - 1, expiresInMs: 1000 })), 'CONFIG_INVALID', 'the phone is not ahead: a plain push reaches it');
  t.is(code(() => rebaseBody([A], 'admin', { phone: 'p1', now: NOW, held: undefined, expiresInMs: 1000 })), 'CONFIG_INVALID', 'no status: nothing to rebase from');
});
