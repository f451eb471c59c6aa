/**
 * `ipphone-admin keygen`: a new Ed25519 key pair on disk, in the formats
 * openssl and node:crypto both read (shared/CONTRACT.md "Keys").
 */
import { closeSync, existsSync, fsyncSync, openSync, rmSync, writeSync } from 'node:fs';
import { basename } from 'node:path';
import { IpphoneError } from '../lib/errors.js';
import { generateKeyPair, parsePublicKey } from '../protocol/envelope.js';

/** What {@link keygen} wrote. Holds no secret. */
export interface KeygenResult {
  privatePath: string;
  publicPath: string;
  /** Suggested key id: the private key's file name without `.pem` (or `.key`). */
  kidHint: string;
  /** Base64 of the raw 32-byte public key, as `trust.keys` accepts it. */
  publicRaw: string;
  publicPem: string;
}

/** DER SPKI of an Ed25519 key is a 12-byte prefix then the raw 32 bytes. */
function rawPublicKey(publicPem: string): string {
  const der = parsePublicKey(publicPem).export({ type: 'spki', format: 'der' });
  return der.subarray(der.length - 32).toString('base64');
}

/** Suggested kid for a key file: `keys/ops-2.pem` → `ops-2`; falls back to `ops-1` when the name is no valid id. */
export function kidHintFor(path: string): string {
  const name = basename(path).replace(/\.(pem|key)$/i, '');
  return /^[A-Za-z0-9._-]{1,64}$/.test(name) ? name : 'ops-1';
}

/**
 * Create the file with `mode` and write `text`, fsync'd. Always a new file
 * (`wx`): `force` removes the old one first, so a private key is never
 * written into a file whose older, wider mode open() would keep.
 */
function writeNew(path: string, text: string, mode: number, force: boolean): void {
  let fd: number;
  try {
    if (force) rmSync(path, { force: true });
    fd = openSync(path, 'wx', mode);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new IpphoneError(`${path} exists; use --force to overwrite it`, 'USAGE', { path });
    throw new IpphoneError(`cannot write ${path}: ${(err as Error).message}`, 'STORE_IO', { path });
  }
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}

/**
 * Write a fresh key pair: `out` the private key (PKCS#8 PEM, mode 0600) and
 * `out.pub` the public key (SPKI PEM, mode 0644). Without `force`, refuses
 * (USAGE) when either file exists, before writing anything. The umask can
 * only narrow modes, so the private key is never readable by others.
 */
export function keygen(out: string, force = false): KeygenResult {
  const publicPath = `${out}.pub`;
  if (!force) {
    for (const p of [out, publicPath]) {
      if (existsSync(p)) throw new IpphoneError(`${p} exists; use --force to overwrite it`, 'USAGE', { path: p });
    }
  }
  const { privatePem, publicPem } = generateKeyPair();
  writeNew(out, privatePem, 0o600, force);
  writeNew(publicPath, publicPem, 0o644, force);
  return { privatePath: out, publicPath, kidHint: kidHintFor(out), publicRaw: rawPublicKey(publicPem), publicPem };
}

/** The lines `keygen` prints: where the files are, the kid hint and the raw public key (never the private key). */
export function keygenReport(r: KeygenResult): string {
  return [
    `private key: ${r.privatePath} (PKCS#8 PEM, mode 0600; keep it secret)`,
    `public key:  ${r.publicPath} (SPKI PEM)`,
    `kid hint:    ${r.kidHint}`,
    `public key (base64 raw): ${r.publicRaw}`,
    `agent trust: "trust": { "keys": { ${JSON.stringify(r.kidHint)}: ${JSON.stringify(r.publicRaw)} } }`,
    '',
  ].join('\n');
}
