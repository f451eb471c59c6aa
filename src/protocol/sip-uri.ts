/**
 * SIP registrar URIs as the contract writes them (shared/CONTRACT.md, a
 * member's/pointer's `sip`, a call manager's `sip.registrar`):
 * `sip:HOST[:PORT][;param…]`, e.g. `sip:127.0.0.1:5061;transport=tcp`.
 * A registrar URI names a server, so it has no user part. Pure; shared by
 * the call manager config, the pointer-list checker and the OPTIONS probe,
 * so every side refuses the same things with the same words.
 */
import { show } from './pointers.js';

/** A parsed registrar URI. */
export interface SipUri {
  /** Host name, IPv4 address, or IPv6 address without brackets. */
  host: string;
  /** Port, 1–65535; 5060 when the URI names none (RFC 3261 §19.1.2). */
  port: number;
  /** `transport` parameter, lower case; `undefined` when absent. */
  transport: string | undefined;
}

/** Transports a SIP URI may name here. */
export const SIP_TRANSPORTS = ['udp', 'tcp', 'tls'] as const;

const HOST_RE = /^(?:\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9](?:[A-Za-z0-9.-]{0,251}[A-Za-z0-9])?)$/;
const PARAM_RE = /^[A-Za-z0-9\-_.!~*'()%]+(?:=[A-Za-z0-9\-_.!~*'()%]*)?$/;
/** Longest URI accepted: a registrar URI is short; anything far longer is not one. */
const MAX_URI = 256;

/**
 * Parse a registrar URI or say what is wrong with it (the message is
 * prefixed with `path`). Refuses `sips:` (not supported here), a user part,
 * headers (`?`), a bad host or port, a transport other than udp/tcp/tls.
 */
export function parseSipUri(value: unknown, path: string): { ok: true; uri: SipUri } | { ok: false; problem: string } {
  const bad = (what: string) => ({ ok: false as const, problem: `${path}: ${what} (got ${show(value)})` });
  if (typeof value !== 'string') return bad('must be a SIP URI string like "sip:127.0.0.1:5061;transport=tcp"');
  if (value.length > MAX_URI) return bad(`must be at most ${MAX_URI} characters`);
  if (!/^sip:/i.test(value)) return bad('scheme must be sip:');
  const rest = value.slice(4);
  if (rest.includes('?')) return bad('must not carry headers (?)');
  if (rest.includes('@')) return bad('must name a server, without a user part');
  const [hostport = '', ...params] = rest.split(';');
  const m = /^(\[[^\]]*\]|[^:]*)(?::(\d{1,5}))?$/.exec(hostport);
  if (m === null || m[1] === undefined || !HOST_RE.test(m[1])) return bad('has no valid host');
  const port = m[2] === undefined ? 5060 : Number(m[2]);
  if (port < 1 || port > 65535) return bad('port must be 1 to 65535');
  let transport: string | undefined;
  for (const p of params) {
    if (!PARAM_RE.test(p)) return bad(`has a malformed parameter ${show(p)}`);
    const [name = '', v = ''] = p.split('=');
    if (name.toLowerCase() !== 'transport') continue;
    transport = v.toLowerCase();
    if (!(SIP_TRANSPORTS as readonly string[]).includes(transport)) return bad(`transport must be ${SIP_TRANSPORTS.join(', ')}`);
  }
  const host = m[1].startsWith('[') ? m[1].slice(1, -1) : m[1];
  return { ok: true, uri: { host, port, transport } };
}

/** Problems with a SIP URI field (empty = ok); see {@link parseSipUri}. */
export function sipUriProblems(value: unknown, path: string): string[] {
  const r = parseSipUri(value, path);
  return r.ok ? [] : [r.problem];
}
