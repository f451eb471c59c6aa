import { show } from '../protocol/pointers.js';

/**
 * File paths in a call manager config that may name a systemd credential.
 *
 * The call manager's unit runs with `DynamicUser=`: its secrets (the signing
 * key, the MQTT client key and password, the console token) stay root-owned
 * 0600 in /etc/ipphone-cm and reach the service only through `LoadCredential=`,
 * which copies each into a directory only that service can read and names it
 * in `$CREDENTIALS_DIRECTORY` (systemd.exec(5), "Credentials"). systemd says
 * to find them through that variable, not through the path it happens to be
 * (`/run/credentials/ipphone-cm.service` on systemd 252, for a system service):
 * a config may therefore write `${CREDENTIALS_DIRECTORY}/NAME`, and that prefix
 * is replaced by the variable's value when the config is loaded. Any other
 * path is used as it is (an absolute `/run/credentials/...` path keeps working).
 */

/** What a path field starts with to name a credential. Literal text, not a shell expansion. */
export const CREDENTIALS_PREFIX = '${CREDENTIALS_DIRECTORY}/';

/** The fields of a call manager config that hold file paths, as `[section, field]` (section null = top level). */
export const CM_PATH_FIELDS: ReadonlyArray<readonly [string | null, string]> = [
  [null, 'signingKey'],
  ['mqtt', 'ca'],
  ['mqtt', 'cert'],
  ['mqtt', 'key'],
  ['mqtt', 'passwordFile'],
  ['console', 'tokenFile'],
];

/** A credential name systemd accepts: one path component, not `.`/`..`, printable, at most 255 bytes. */
const CREDENTIAL_NAME = /^(?!\.\.?$)[^/\x00-\x1f\x7f]{1,255}$/;

/**
 * `value` with a leading {@link CREDENTIALS_PREFIX} replaced by
 * `env.CREDENTIALS_DIRECTORY`, or one problem line (`at: why`). Values that
 * are not strings or do not start with the prefix come back unchanged.
 */
export function expandCredentialPath(value: unknown, at: string, env: NodeJS.ProcessEnv): { ok: true; value: unknown } | { ok: false; problem: string } {
  if (typeof value !== 'string' || !value.startsWith(CREDENTIALS_PREFIX)) return { ok: true, value };
  const name = value.slice(CREDENTIALS_PREFIX.length);
  if (!CREDENTIAL_NAME.test(name)) {
    return { ok: false, problem: `${at}: ${show(value)} must name one credential (a file name after ${CREDENTIALS_PREFIX}, no "/")` };
  }
  const dir = env.CREDENTIALS_DIRECTORY;
  if (dir === undefined || dir === '') {
    return {
      ok: false,
      problem: `${at}: ${show(value)} names a systemd credential, but CREDENTIALS_DIRECTORY is not set: start the call manager from its unit (ipphone-cm.service, LoadCredential=${name}:…) or give the file's own path`,
    };
  }
  return { ok: true, value: `${dir.replace(/\/+$/, '')}/${name}` };
}

/**
 * A copy of an untrusted call manager config with every {@link CM_PATH_FIELDS}
 * path expanded ({@link expandCredentialPath}), and the problems found. Leaves
 * anything that is not an object (and fields of the wrong type) for
 * validation to report.
 */
export function expandCmCredentialPaths(raw: unknown, env: NodeJS.ProcessEnv): { value: unknown; problems: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) return { value: raw, problems: [] };
  const out: Record<string, unknown> = { ...(raw as Record<string, unknown>) };
  const problems: string[] = [];
  for (const [section, field] of CM_PATH_FIELDS) {
    const holder = section === null ? out : out[section];
    if (typeof holder !== 'object' || holder === null || Array.isArray(holder)) continue;
    const copy: Record<string, unknown> = section === null ? out : { ...(holder as Record<string, unknown>) };
    if (section !== null) out[section] = copy;
    const r = expandCredentialPath(copy[field], section === null ? field : `${section}/${field}`, env);
    if (r.ok) copy[field] = r.value;
    else problems.push(r.problem);
  }
  return { value: out, problems };
}
