import { readFile } from 'node:fs/promises';
import { createPublicKey, type KeyObject } from 'node:crypto';
import { errorMessage, IpphoneError } from '../lib/errors.js';
import { parsePrivateKey, signEnvelope } from '../protocol/envelope.js';
import type { PointersSigner } from './list-book.js';

/**
 * The call manager's signing key, loaded once: the production
 * {@link PointersSigner} (Ed25519 with the PKCS#8 PEM key at `keyPath`,
 * envelopes labelled `kid`) and its public half, which the call manager
 * trusts for its peers' states (a group sharing one key needs no trust
 * section). Throws CONFIG_INVALID naming the file when it cannot be read or
 * is not an Ed25519 private key.
 */
export async function loadSigningKey(keyPath: string, kid: string): Promise<{ sign: PointersSigner; publicKey: KeyObject }> {
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
  return { sign: (body) => signEnvelope(body, key, kid), publicKey: createPublicKey(key) };
}

/** {@link loadSigningKey}'s signer alone. */
export async function loadKeySigner(keyPath: string, kid: string): Promise<PointersSigner> {
  return (await loadSigningKey(keyPath, kid)).sign;
}
