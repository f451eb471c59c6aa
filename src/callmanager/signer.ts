import { readFile } from 'node:fs/promises';
import type { KeyObject } from 'node:crypto';
import { errorMessage, IpphoneError } from '../lib/errors.js';
import { parsePrivateKey, signEnvelope } from '../protocol/envelope.js';
import type { PointersSigner } from './list-book.js';

/**
 * The production {@link PointersSigner}: Ed25519 with the PKCS#8 PEM key at
 * `keyPath`, envelopes labelled `kid`. Throws CONFIG_INVALID naming the file
 * when it cannot be read or is not an Ed25519 private key.
 */
export async function loadKeySigner(keyPath: string, kid: string): Promise<PointersSigner> {
  let pem: string;
  try {
    pem = await readFile(keyPath, 'utf8');
  } catch (err) {
    throw new IpphoneError(`signingKey: cannot read ${keyPath}: ${errorMessage(err)}`, 'CONFIG_INVALID', { path: keyPath });
  }
  let key: KeyObject;
  try {
    key = parsePrivateKey(pem);
  } catch (err) {
    throw new IpphoneError(`signingKey: ${keyPath}: ${errorMessage(err)}`, 'CONFIG_INVALID', { path: keyPath });
  }
  return (body) => signEnvelope(body, key, kid);
}
