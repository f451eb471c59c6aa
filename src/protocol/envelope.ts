import { createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { IpphoneError } from '../lib/errors.js';
import type { Envelope } from './types.js';

/**
 * Signed envelopes (shared/CONTRACT.md): `{ kid, body, sig }` where `body` is
 * the base64 of the body's UTF-8 JSON bytes and `sig` the base64 Ed25519
 * signature of exactly those bytes — what
 * `openssl pkeyutl -sign -rawin -inkey key.pem -in body.json | base64 -w0` makes.
 *
 * This module checks the cryptography only; what the body means (version,
 * expiry, schema) is for the codecs and the receiver.
 */

/** DER prefix of an Ed25519 SubjectPublicKeyInfo; the raw 32-byte key follows it. */
const ED25519_SPKI_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** A named set of trusted public keys. */
export type TrustedKeys = ReadonlyMap<string, KeyObject>;

/**
 * Parse a public key given as SPKI PEM text or as the base64 of the raw 32
 * bytes. Throws CONFIG_INVALID with a reason otherwise.
 */
export function parsePublicKey(text: string): KeyObject {
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    if (trimmed.startsWith('-----BEGIN')) {
      key = createPublicKey({ key: trimmed, format: 'pem' });
    } else {
      const raw = Buffer.from(trimmed, 'base64');
      if (raw.length !== 32 || raw.toString('base64').replace(/=+$/, '') !== trimmed.replace(/=+$/, '')) {
        throw new Error('not the base64 of 32 raw bytes');
      }
      key = createPublicKey({ key: Buffer.concat([ED25519_SPKI_PREFIX, raw]), format: 'der', type: 'spki' });
    }
  } catch (err) {
    throw new IpphoneError(`public key is neither SPKI PEM nor base64 of a raw 32-byte key: ${(err as Error).message}`, 'CONFIG_INVALID');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IpphoneError(`public key is ${key.asymmetricKeyType ?? 'unknown'}, not ed25519`, 'CONFIG_INVALID');
  }
  return key;
}

/** Parse a PKCS#8 PEM Ed25519 private key (what `openssl genpkey -algorithm ed25519` writes). */
export function parsePrivateKey(pem: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey({ key: pem, format: 'pem' });
  } catch (err) {
    throw new IpphoneError(`private key is not a PEM PKCS#8 key: ${(err as Error).message}`, 'CONFIG_INVALID');
  }
  if (key.asymmetricKeyType !== 'ed25519') {
    throw new IpphoneError(`private key is ${key.asymmetricKeyType ?? 'unknown'}, not ed25519`, 'CONFIG_INVALID');
  }
  return key;
}

/** Build the trusted-key map from config (`trust.keys`). */
export function trustedKeys(keys: Record<string, string>): TrustedKeys {
  const map = new Map<string, KeyObject>();
  for (const [kid, text] of Object.entries(keys)) map.set(kid, parsePublicKey(text));
  return map;
}

/** A fresh Ed25519 key pair as PEM texts (PKCS#8 private, SPKI public). */
export function generateKeyPair(): { privatePem: string; publicPem: string } {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
  };
}

/** Sign a body: serialise it once and sign exactly those bytes. */
export function signEnvelope(body: unknown, privateKey: KeyObject, kid: string): Envelope {
  const bytes = Buffer.from(JSON.stringify(body), 'utf8');
  return signBytes(bytes, privateKey, kid);
}

/** Sign bytes already serialised (e.g. a body file as written by an operator). */
export function signBytes(bytes: Buffer, privateKey: KeyObject, kid: string): Envelope {
  const sig = sign(null, bytes, privateKey);
  return { kid, body: bytes.toString('base64'), sig: sig.toString('base64') };
}

const B64_RE = /^[A-Za-z0-9+/]*={0,2}$/;

/**
 * Envelopes already verified, by `kid|sig|body`, with the key object that
 * verified them. A call manager sends the same list in its ack and in a push,
 * and every phone of a fleet process gets the same group list: verifying
 * Ed25519 again for identical bytes and the same key was a fifth of a 2,000-phone
 * failover's CPU. A hit requires the same key material (`KeyObject.equals`:
 * the phones of a fleet each parse their own copy of a trusted key), so a
 * changed trust store never reuses an old verdict. Bounded (oldest dropped).
 */
const verified = new Map<string, KeyObject>();
const VERIFIED_MAX = 64;

/**
 * Check an envelope's signature against the trusted keys and return the body
 * bytes it covers. Throws UNSIGNED / KEY_UNKNOWN / SIGNATURE_INVALID /
 * PAYLOAD_INVALID with a reason; never returns unverified bytes.
 */
export function openEnvelope(env: Envelope, keys: TrustedKeys): Buffer {
  if (typeof env.kid !== 'string' || typeof env.body !== 'string' || typeof env.sig !== 'string') {
    throw new IpphoneError('envelope needs string kid, body and sig', 'UNSIGNED');
  }
  const key = keys.get(env.kid);
  if (key === undefined) throw new IpphoneError(`signed by unknown key ${JSON.stringify(env.kid.slice(0, 64))}`, 'KEY_UNKNOWN');
  if (!B64_RE.test(env.body) || !B64_RE.test(env.sig)) {
    throw new IpphoneError('envelope body or sig is not base64', 'PAYLOAD_INVALID');
  }
  const bytes = Buffer.from(env.body, 'base64');
  const cacheKey = `${env.kid}|${env.sig}|${env.body}`;
  const known = verified.get(cacheKey);
  if (known !== undefined && (known === key || known.equals(key))) return bytes;
  const sig = Buffer.from(env.sig, 'base64');
  if (sig.length !== 64 || !verify(null, bytes, key, sig)) {
    throw new IpphoneError(`bad signature for key ${JSON.stringify(env.kid)}`, 'SIGNATURE_INVALID');
  }
  if (env.body.length <= 16_384) {
    if (verified.size >= VERIFIED_MAX) verified.delete(verified.keys().next().value!);
    verified.set(cacheKey, key);
  }
  return bytes;
}
