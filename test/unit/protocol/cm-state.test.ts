import test from 'ava';
import { isIpphoneError, type ErrorCode } from '../../../src/lib/errors.js';
import { decodeCmState } from '../../../src/protocol/codec.js';
import { decodeCmChallenge, decodeSignedCmState, encodeCmChallenge, encodeCmState, MAX_STATE_BYTES, parseCmStateBody, type CmStateBody } from '../../../src/protocol/cm-state.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, signEnvelope, trustedKeys } from '../../../src/protocol/envelope.js';

const pair = generateKeyPair();
const key = parsePrivateKey(pair.privatePem);
const keys = trustedKeys({ 'ops-1': pair.publicPem });
const sign = (b: unknown) => signEnvelope(b, key, 'ops-1');
const body: CmStateBody = { cm: 'cm-a', online: false, bdSeq: 7, conn: 2, nonce: 'AAECAwQFBgcICQoLDA0ODw', seq: 4 };

function refused(t: import('ava').ExecutionContext, fn: () => unknown, code: ErrorCode, words?: RegExp): void {
  const err = t.throws(fn);
  t.true(isIpphoneError(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${err?.message}`);
  if (words) t.regex(err!.message, words);
}

test('encodeCmState: top-level online first, then the envelope; the body is exactly the run', (t) => {
  const text = encodeCmState(body, sign);
  t.regex(text, /^\{"online":false,"kid":"ops-1","body":"[A-Za-z0-9+/=]+","sig":"[A-Za-z0-9+/=]+"\}$/);
  const st = decodeSignedCmState(Buffer.from(text));
  t.false(st.online);
  const opened = openEnvelope(st.envelope, keys);
  t.is(opened.toString('utf8'), '{"cm":"cm-a","online":false,"bdSeq":7,"conn":2,"nonce":"AAECAwQFBgcICQoLDA0ODw","seq":4}');
  t.deepEqual(parseCmStateBody(opened), body);
});

test('watchers that read only the top-level online still can (decodeCmState)', (t) => {
  t.deepEqual(decodeCmState(Buffer.from(encodeCmState({ ...body, online: true }, sign))), { online: true });
});

test('encodeCmState is deterministic: the will and the clean-stop offline are the same bytes', (t) => {
  t.is(encodeCmState(body, sign), encodeCmState({ ...body }, sign));
});

test('decodeSignedCmState: empty, unsigned, malformed', (t) => {
  refused(t, () => decodeSignedCmState(Buffer.alloc(0)), 'STATE_EMPTY', /cleared/);
  refused(t, () => decodeSignedCmState(Buffer.from('{"online":false}')), 'UNSIGNED', /not signed/);
  refused(t, () => decodeSignedCmState(Buffer.from('{"online":false,"kid":"ops-1","body":"e30="}')), 'UNSIGNED', /sig/);
  refused(t, () => decodeSignedCmState(Buffer.from('{"online":"false","kid":"k","body":"e30=","sig":"AA=="}')), 'PAYLOAD_INVALID', /online/);
  refused(t, () => decodeSignedCmState(Buffer.from('[false]')), 'PAYLOAD_INVALID');
  refused(t, () => decodeSignedCmState(Buffer.from(JSON.stringify({ online: false, pad: 'x'.repeat(MAX_STATE_BYTES) }))), 'PAYLOAD_TOO_LARGE');
});

test('parseCmStateBody: every field checked', (t) => {
  const b = (o: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...body, ...o }));
  t.deepEqual(parseCmStateBody(b({ extra: 1 })), body, 'extra fields ignored');
  refused(t, () => parseCmStateBody(b({ cm: 'a/b' })), 'PAYLOAD_INVALID', /cm/);
  refused(t, () => parseCmStateBody(b({ online: 0 })), 'PAYLOAD_INVALID', /online/);
  refused(t, () => parseCmStateBody(b({ bdSeq: 0 })), 'PAYLOAD_INVALID', /bdSeq/);
  refused(t, () => parseCmStateBody(b({ bdSeq: 1.5 })), 'PAYLOAD_INVALID', /bdSeq/);
  refused(t, () => parseCmStateBody(b({ conn: -1 })), 'PAYLOAD_INVALID', /conn/);
  refused(t, () => parseCmStateBody(b({ nonce: 'short' })), 'PAYLOAD_INVALID', /nonce/);
  refused(t, () => parseCmStateBody(b({ nonce: 'has spaces in it' })), 'PAYLOAD_INVALID', /nonce/);
  refused(t, () => parseCmStateBody(Buffer.from('nope')), 'PAYLOAD_INVALID', /body/);
});

test('cm-state-seq-required: a body without seq (a call manager from before it) is refused: its states cannot be ordered within a run', (t) => {
  const { seq: _, ...old } = body;
  refused(t, () => parseCmStateBody(Buffer.from(JSON.stringify(old))), 'PAYLOAD_INVALID', /seq/);
  refused(t, () => parseCmStateBody(Buffer.from(JSON.stringify({ ...body, seq: 0 }))), 'PAYLOAD_INVALID', /seq/);
});

test('cm-state-will-and-challenge: will only true in an offline; a challenge is base64url and never in a will', (t) => {
  const b = (o: Record<string, unknown>) => Buffer.from(JSON.stringify({ ...body, ...o }));
  t.deepEqual(parseCmStateBody(b({ will: true })), { ...body, will: true });
  t.deepEqual(parseCmStateBody(b({ online: true, challenge: 'A'.repeat(22) })), { ...body, online: true, challenge: 'A'.repeat(22) });
  refused(t, () => parseCmStateBody(b({ online: true, will: true })), 'PAYLOAD_INVALID', /will/);
  refused(t, () => parseCmStateBody(b({ will: false })), 'PAYLOAD_INVALID', /will/);
  refused(t, () => parseCmStateBody(b({ challenge: 'short' })), 'PAYLOAD_INVALID', /challenge/);
  refused(t, () => parseCmStateBody(b({ will: true, challenge: 'A'.repeat(22) })), 'PAYLOAD_INVALID', /challenge/);
  const text = encodeCmState({ ...body, will: true }, sign);
  t.deepEqual(parseCmStateBody(openEnvelope(decodeSignedCmState(Buffer.from(text)).envelope, keys)), { ...body, will: true });
});

test('cm-challenge codec: { challenge } of 16 to 64 base64url characters', (t) => {
  t.deepEqual(decodeCmChallenge(Buffer.from(encodeCmChallenge('A'.repeat(22)))), { challenge: 'A'.repeat(22) });
  refused(t, () => decodeCmChallenge(Buffer.from('{"challenge":"short"}')), 'PAYLOAD_INVALID', /challenge/);
  refused(t, () => decodeCmChallenge(Buffer.from('{}')), 'PAYLOAD_INVALID', /challenge/);
  refused(t, () => decodeCmChallenge(Buffer.from(JSON.stringify({ challenge: 'A'.repeat(22), pad: 'x'.repeat(300) }))), 'PAYLOAD_TOO_LARGE');
});
