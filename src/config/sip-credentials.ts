/**
 * The phone's SIP digest credentials (issue 17): `sip.passwordFile` and
 * `sip.authUser` of the agent config. The password lives in a file of its
 * own (as `mqtt.passwordFile` does) so the config file, which operators copy
 * and publish changes of, never holds it; it is read once at start and goes
 * nowhere but to the user agent's account — never into a log line, an error
 * message, the status or an event.
 */
import { readFileSync } from 'node:fs';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { show } from '../protocol/pointers.js';
import { passwordOf } from './mqtt-credentials.js';

/** What the user agent answers a digest challenge with. */
export interface SipCredentials {
  /** The digest user name (`sip.authUser`, default `sip.user`). */
  user: string;
  password: string;
}

/**
 * Characters a password may hold: printable ASCII but space, `;`, `"`, `<`, `>`, `\`. baresip
 * 1.0.0 takes an account's `auth_pass` from its parameter list up to the first space or `;`,
 * and quotes and angle brackets end the account's URI or value; such a password would be cut
 * short silently, so it is refused at start with a clear reason instead.
 */
const PASSWORD_RE = /^[\x21\x23-\x3a\x3d\x3f-\x5b\x5d-\x7e]{1,256}$/;

/** Problems with `sip.passwordFile` (empty = usable, or none given). The password itself is never shown. */
export function sipPasswordFileProblems(sip: unknown): string[] {
  if (typeof sip !== 'object' || sip === null) return [];
  const path = (sip as { passwordFile?: unknown }).passwordFile;
  if (path === undefined || typeof path !== 'string' || path === '') return [];
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return [`sip/passwordFile: cannot use ${show(path)}: ${errorMessage(err)}`];
  }
  const password = passwordOf(text);
  if (password === '') return [`sip/passwordFile: cannot use ${show(path)}: its first line is empty`];
  if (!PASSWORD_RE.test(password)) {
    return [`sip/passwordFile: cannot use ${show(path)}: the password must be 1 to 256 printable ASCII characters without space, ;, ", <, > or \\ (baresip cuts an account's password at a space or ;)`];
  }
  return [];
}

/**
 * The credentials of a `sip` section, read now (at start), or null when it names no
 * `passwordFile`. Throws CONFIG_INVALID (`sip/passwordFile: cannot use "PATH": why`) when the
 * file cannot be used.
 */
export function readSipCredentials(sip: { user: string; authUser?: string | undefined; passwordFile?: string | undefined }): SipCredentials | null {
  if (sip.passwordFile === undefined) return null;
  const problems = sipPasswordFileProblems(sip);
  if (problems.length > 0) throw new IpphoneError(problems.join('\n'), 'CONFIG_INVALID', { problems });
  return { user: sip.authUser ?? sip.user, password: passwordOf(readFileSync(sip.passwordFile, 'utf8')) };
}
