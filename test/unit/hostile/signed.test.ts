/**
 * openPointers / openConfig with real Ed25519 keys: random bodies signed
 * right or by another key, tampered signatures and bodies, unknown kids,
 * expired, replayed and wrong-phone bodies. Accepted only when everything is
 * right; otherwise an IpphoneError whose code a small model predicts.
 */
import test from 'ava';
import fc from 'fast-check';
import { IpphoneError, type ErrorCode } from '../../../src/lib/errors.js';
import { openConfig, openPointers, type OpenContext } from '../../../src/protocol/codec.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Envelope } from '../../../src/protocol/types.js';
import { pointerList } from '../../helpers/arbitraries.js';

const RUNS = 10_000;
const NOW = 1_700_000_000_000;
const mine = generateKeyPair();
const other = generateKeyPair();
const myKey = parsePrivateKey(mine.privatePem);
const otherKey = parsePrivateKey(other.privatePem);
const keys = new Map([['ops-1', parsePublicKey(mine.publicPem)]]);

type Signer = 'right' | 'other-key' | 'unknown-kid';
type Tamper = 'none' | 'sig-bit' | 'body-byte' | 'sig-short' | 'not-base64';

interface Case {
  kind: 'pointers' | 'config';
  version: number;
  held: number;
  phone: 'absent' | 'me' | 'other';
  expires: 'absent' | 'past' | 'now' | 'future';
  signer: Signer;
  tamper: Tamper;
  payload: unknown;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  kind: fc.constantFrom('pointers' as const, 'config' as const),
  version: fc.oneof(fc.integer({ min: 1, max: 20 }), fc.integer({ min: 1, max: Number.MAX_SAFE_INTEGER })),
  held: fc.oneof(fc.integer({ min: 0, max: 20 }), fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER })),
  phone: fc.constantFrom('absent' as const, 'me' as const, 'other' as const),
  expires: fc.constantFrom('absent' as const, 'past' as const, 'now' as const, 'future' as const),
  signer: fc.constantFrom('right' as const, 'right' as const, 'other-key' as const, 'unknown-kid' as const),
  tamper: fc.constantFrom('none' as const, 'none' as const, 'none' as const, 'sig-bit' as const, 'body-byte' as const, 'sig-short' as const, 'not-base64' as const),
  payload: fc.oneof(pointerList(), fc.dictionary(fc.string({ maxLength: 6 }), fc.jsonValue({ maxDepth: 2 }), { maxKeys: 4 })),
});

function build(c: Case): Envelope {
  const body: Record<string, unknown> = { version: c.version };
  if (c.kind === 'pointers') Object.assign(body, { reason: 'admin', list: Array.isArray(c.payload) ? c.payload : [{ id: 'A', broker: 'mqtt://h', services: 'http://h/' }] });
  else body.config = Array.isArray(c.payload) ? { pointers: c.payload } : c.payload;
  if (c.phone !== 'absent') body.phone = c.phone === 'me' ? 'p1' : 'p2';
  if (c.expires !== 'absent') body.expires = c.expires === 'past' ? NOW - 1 : c.expires === 'now' ? NOW : NOW + 1;
  const env = signEnvelope(body, c.signer === 'other-key' ? otherKey : myKey, c.signer === 'unknown-kid' ? 'ops-9' : 'ops-1');
  switch (c.tamper) {
    case 'none':
      return env;
    case 'sig-bit': {
      const sig = Buffer.from(env.sig, 'base64');
      sig[sig.length >> 1]! ^= 0x01;
      return { ...env, sig: sig.toString('base64') };
    }
    case 'body-byte': {
      // Still the same JSON shape, one digit of the version changed: only the signature can tell.
      const text = Buffer.from(env.body, 'base64').toString('utf8').replace(/"version":(\d)/, (_m, d: string) => `"version":${(Number(d) + 1) % 10 || 1}`);
      return { ...env, body: Buffer.from(text, 'utf8').toString('base64') };
    }
    case 'sig-short':
      return { ...env, sig: Buffer.from(env.sig, 'base64').subarray(0, 63).toString('base64') };
    case 'not-base64':
      return { ...env, sig: `${env.sig.slice(0, 10)}!${env.sig.slice(11)}` };
  }
}

/** The code the receiver must refuse with, or null for "accepted" — same precedence as the contract: signature, then freshness. */
function expected(c: Case): ErrorCode | null {
  if (c.signer === 'unknown-kid') return 'KEY_UNKNOWN';
  if (c.tamper === 'not-base64') return 'PAYLOAD_INVALID';
  if (c.signer === 'other-key' || c.tamper !== 'none') return 'SIGNATURE_INVALID';
  if (c.phone === 'other') return 'WRONG_PHONE';
  if (c.expires === 'past' || c.expires === 'now') return 'EXPIRED';
  if (c.version <= c.held) return 'VERSION_REPLAYED';
  return null;
}

test(`signed bodies: accepted exactly when key, signature, phone, expiry and version are all right (${RUNS} runs)`, (t) => {
  const seen = new Map<string, number>();
  fc.assert(
    fc.property(caseArb, (c) => {
      const env = build(c);
      const ctx: OpenContext = { phoneId: 'p1', heldVersion: c.held, now: NOW };
      const want = expected(c);
      const open = (): unknown => (c.kind === 'pointers' ? openPointers(env, keys, ctx) : openConfig(env, keys, ctx));
      let got: ErrorCode | null = null;
      let value: unknown;
      try {
        value = open();
      } catch (err) {
        if (!(err instanceof IpphoneError)) throw new Error(`non-IpphoneError: ${String(err)}`);
        if (err.message.trim() === '') throw new Error(`empty message for ${err.code}`);
        got = err.code;
      }
      seen.set(String(got), (seen.get(String(got)) ?? 0) + 1);
      if (got !== want) throw new Error(`expected ${want ?? 'accepted'}, got ${got ?? 'accepted'}`);
      if (got === null) {
        const v = value as { version: number };
        if (v.version !== c.version) throw new Error('accepted body has another version');
      }
    }),
    { numRuns: RUNS, seed: 6_0003 },
  );
  // Every outcome actually happened (the generator reaches every branch).
  for (const code of ['null', 'KEY_UNKNOWN', 'SIGNATURE_INVALID', 'PAYLOAD_INVALID', 'WRONG_PHONE', 'EXPIRED', 'VERSION_REPLAYED']) {
    t.true((seen.get(code) ?? 0) > 0, `outcome ${code} seen ${seen.get(code) ?? 0} times`);
  }
});

test('a replay of the very envelope just accepted is refused (VERSION_REPLAYED), for lists and configs', (t) => {
  fc.assert(
    fc.property(fc.integer({ min: 1, max: 1e12 }), pointerList(), (version, list) => {
      const pe = signEnvelope({ version, reason: 'rebalance', list }, myKey, 'ops-1');
      const ce = signEnvelope({ version, config: { log: { level: 'debug' } } }, myKey, 'ops-1');
      const first = openPointers(pe, keys, { phoneId: 'p1', heldVersion: version - 1, now: NOW });
      openConfig(ce, keys, { phoneId: 'p1', heldVersion: version - 1, now: NOW });
      for (const again of [() => openPointers(pe, keys, { phoneId: 'p1', heldVersion: first.version, now: NOW }), () => openConfig(ce, keys, { phoneId: 'p1', heldVersion: version, now: NOW })]) {
        try {
          again();
          return false;
        } catch (err) {
          if (!(err instanceof IpphoneError) || err.code !== 'VERSION_REPLAYED' || !/not newer/.test(err.message)) return false;
        }
      }
      return true;
    }),
    { numRuns: 1000, seed: 6_0004 },
  );
  t.pass();
});

test('envelopes with hostile field values (not strings, huge, empty) never throw anything but IpphoneError', (t) => {
  const field = fc.oneof(fc.string({ maxLength: 20 }), fc.constant(''), fc.constant('='.repeat(5000)), fc.base64String({ maxLength: 200 }), fc.jsonValue({ maxDepth: 2 }));
  let n = 0;
  fc.assert(
    fc.property(fc.record({ kid: fc.oneof(field, fc.constant('ops-1')), body: field, sig: field }), (e) => {
      n++;
      try {
        openPointers(e as unknown as Envelope, keys, { phoneId: 'p1', heldVersion: 0, now: NOW });
      } catch (err) {
        return err instanceof IpphoneError && err.message.length > 0;
      }
      return false; // an unsigned random body can never verify
    }),
    { numRuns: RUNS, seed: 6_0005 },
  );
  t.is(n, RUNS);
});
