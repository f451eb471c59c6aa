import { createPrivateKey, X509Certificate } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { Type } from '@sinclair/typebox';
import { errorMessage, IpphoneError } from '../lib/errors.js';
import { show } from '../protocol/pointers.js';

/**
 * The credentials a program gives its brokers — the `mqtt` section's
 * `username`, `password`/`passwordFile`, `ca`, `cert`, `key` — shared by the
 * agent config, the call manager config and the fleet. Three steps, so each
 * caller does what it can: {@link credentialSchema} (the fields, for
 * TypeBox), {@link credentialShapeProblems} (pure: pairs that must go together,
 * run also on remote config changes) and {@link credentialFileProblems} (reads
 * the files: run at start and by `--check-config`, so a missing certificate
 * is one clear line then instead of a TLS error on every connect later).
 */

const nullableString = (description: string, minLength = 0) =>
  Type.Optional(Type.Union([Type.String(minLength > 0 ? { minLength } : {}), Type.Null()], { default: null, description }));
/** A file path: empty is refused (it would read the working directory). */
const nullablePath = (description: string) => nullableString(description, 1);

/** The credential fields of an `mqtt` section (spread into its TypeBox object). */
export function credentialSchema() {
  return {
    username: nullableString('broker user name; with a client certificate and mosquitto use_identity_as_username, the broker takes the CN instead'),
    password: nullableString('broker password; prefer passwordFile, which keeps the secret out of the config file'),
    passwordFile: nullablePath('file whose first line is the broker password (trailing newline ignored); not with password'),
    ca: nullablePath('CA certificate file (PEM) that the broker’s certificate must chain to, for mqtts:/wss:; null = the system CAs'),
    cert: nullablePath('client certificate file (PEM) presented to mqtts:/wss: brokers; needs key'),
    key: nullablePath('private key file (PEM, unencrypted) of cert; needs cert'),
  };
}

/** The credential fields as validated (defaults filled: absent means null). */
export interface MqttCredentials {
  username: string | null;
  password: string | null;
  passwordFile: string | null;
  ca: string | null;
  cert: string | null;
  key: string | null;
}

const set = (v: unknown): boolean => typeof v === 'string' && v !== '';

/**
 * Problems of an `mqtt` section that need no file: a certificate without its
 * key (or a key without its certificate), and both `password` and
 * `passwordFile`. `at` is the section's path in problem lines (`mqtt`).
 */
export function credentialShapeProblems(m: unknown, at = 'mqtt'): string[] {
  if (typeof m !== 'object' || m === null) return [];
  const c = m as Record<string, unknown>;
  const problems: string[] = [];
  if (set(c.cert) && !set(c.key)) problems.push(`${at}/key: is required with ${at}/cert (the certificate's private key)`);
  if (set(c.key) && !set(c.cert)) problems.push(`${at}/cert: is required with ${at}/key (the key's certificate)`);
  if (set(c.password) && set(c.passwordFile)) problems.push(`${at}/passwordFile: give password or passwordFile, not both`);
  return problems;
}

/** PEM certificates in `text` (a CA file may hold a chain). */
function certificates(text: string): X509Certificate[] {
  const blocks = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  if (blocks.length === 0) throw new Error('no PEM certificate in it');
  return blocks.map((b) => new X509Certificate(b));
}

/**
 * Read every file an `mqtt` section names and check it is what its field
 * says: `ca` one or more PEM certificates, `cert` a PEM certificate, `key` an
 * unencrypted private key that belongs to `cert`, `passwordFile` a readable,
 * non-empty file. One line per problem, `mqtt/cert: cannot use "PATH": why`.
 * Paths resolve against the working directory (as `signingKey` does).
 *
 * A certificate past its validity is NOT refused here: a phone without a
 * real-time clock boots in 1970 until NTP answers, and the broker is the one
 * that decides (and refuses an expired certificate with a reason we log).
 */
export function credentialFileProblems(m: unknown, at = 'mqtt'): string[] {
  if (typeof m !== 'object' || m === null) return [];
  const c = m as Record<string, unknown>;
  const problems: string[] = [];
  const read = (field: string): string | undefined => {
    const path = c[field];
    if (!set(path)) return undefined;
    try {
      return readFileSync(path as string, 'utf8');
    } catch (err) {
      problems.push(`${at}/${field}: cannot use ${show(path)}: ${errorMessage(err)}`);
      return undefined;
    }
  };
  const check = (field: string, text: string | undefined, test: (text: string) => void): void => {
    if (text === undefined) return;
    try {
      test(text);
    } catch (err) {
      problems.push(`${at}/${field}: cannot use ${show(c[field])}: ${errorMessage(err)}`);
    }
  };
  check('ca', read('ca'), certificates);
  let cert: X509Certificate | undefined;
  check('cert', read('cert'), (t) => {
    cert = certificates(t)[0];
  });
  check('key', read('key'), (t) => {
    const key = createPrivateKey(t);
    if (cert !== undefined && !cert.checkPrivateKey(key)) throw new Error(`it is not the private key of ${at}/cert ${show(c.cert)}`);
  });
  check('passwordFile', read('passwordFile'), (t) => {
    if (passwordOf(t) === '') throw new Error('it is empty');
  });
  return problems;
}

/** The password in a password file's text: its first line, without the line end. */
export function passwordOf(text: string): string {
  return text.split(/\r?\n/, 1)[0] ?? '';
}

/** What mqtt.js needs from a section: user name, password and the TLS files' contents. */
export interface ResolvedCredentials {
  username?: string;
  password?: string;
  ca?: Buffer;
  cert?: Buffer;
  key?: Buffer;
}

/**
 * Read the section's files into mqtt.js options (once, at start). Throws
 * CONFIG_INVALID with every {@link credentialFileProblems} line when a file
 * cannot be used — what `--check-config` would have said.
 */
export function resolveCredentials(m: MqttCredentials, at = 'mqtt'): ResolvedCredentials {
  const problems = [...credentialShapeProblems(m, at), ...credentialFileProblems(m, at)];
  if (problems.length > 0) throw new IpphoneError(problems.join('\n'), 'CONFIG_INVALID', { problems });
  const out: ResolvedCredentials = {};
  if (m.username !== null) out.username = m.username;
  if (m.password !== null) out.password = m.password;
  else if (m.passwordFile !== null) out.password = passwordOf(readFileSync(m.passwordFile, 'utf8'));
  if (m.ca !== null) out.ca = readFileSync(m.ca);
  if (m.cert !== null) out.cert = readFileSync(m.cert);
  if (m.key !== null) out.key = readFileSync(m.key);
  return out;
}

/** True when the connection carries an identity of its own: a client certificate or a user name. */
export function hasIdentity(m: Pick<MqttCredentials, 'username' | 'cert'>): boolean {
  return set(m.username) || set(m.cert);
}
