/**
 * The few SIP URIs the phone builds from a pointer's registrar
 * (`sip:HOST:PORT;transport=tcp`, CONTRACT.md) and reads from a user agent's
 * events. Pure string work: no SIP parsing beyond what the agent needs.
 */

/** A registrar as the agent uses it: `host:port` and the URI parameters (e.g. `;transport=tcp`). */
export interface Registrar {
  hostport: string;
  /** URI parameters including the leading `;`, or ''. */
  params: string;
}

/** `sip:HOST[:PORT][;params]` → its parts; undefined when it is not such a URI (a user part is refused). */
export function parseRegistrar(uri: string): Registrar | undefined {
  const m = /^sips?:([^@;<>\s]+)((?:;[^;<>\s]+)*)$/i.exec(uri.trim());
  if (m === null) return undefined;
  return { hostport: m[1]!, params: m[2] ?? '' };
}

/**
 * The phone's address of record at a registrar: `sip:USER@HOST:PORT;params`.
 * The transport parameter stays on it so the user agent registers over TCP
 * (a dead UDP registrar takes 32 s to notice).
 */
export function aorAt(user: string, r: Registrar): string {
  return `sip:${user}@${r.hostport}${r.params}`;
}

/**
 * Where `#` sends the digits typed: `sip:DIGITS@HOST:PORT;params` at the
 * registrar the phone is registered at — the registrar (Kamailio) routes the
 * INVITE to the callee's registered contact, and the same transport is used.
 */
export function dialUri(digits: string, r: Registrar): string {
  return `sip:${digits}@${r.hostport}${r.params}`;
}

/** The user part of a SIP URI (`"Name" <sip:1001@host>;tag=…` → `1001`), else the URI itself. */
export function userOf(peer: string): string {
  const m = /sips?:([^@;>\s]+)@/i.exec(peer);
  return m?.[1] ?? peer;
}

/** A pointer's optional `sip` field, read without depending on the protocol type carrying it (added by the call manager side). */
export function pointerSip(p: object | null | undefined): string | undefined {
  const v = (p as { sip?: unknown } | null | undefined)?.sip;
  return typeof v === 'string' && v !== '' ? v : undefined;
}
