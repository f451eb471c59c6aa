import { IpphoneError } from '../lib/errors.js';
import { sipUriProblems } from './sip-uri.js';
import { isValidId } from './topics.js';
import type { Pointer } from './types.js';

/**
 * Pointer lists (shared/CONTRACT.md): 1–16 `{ id, broker, services, sip? }`,
 * unique ids, the first is the primary; `sip` (optional) is the SIP registrar
 * of that call manager (protocol/sip-uri.ts). Shared by the agent config, signed pointer
 * bodies and the call manager's group list, so every side refuses the same
 * things with the same words.
 */

/** Most pointers a phone accepts in one list. */
export const MAX_POINTERS = 16;

export const BROKER_SCHEMES = ['mqtt:', 'mqtts:', 'ws:', 'wss:'] as const;
export const SERVICES_SCHEMES = ['http:', 'https:'] as const;

/** Port each broker scheme means when the URL names none. */
const DEFAULT_PORTS: Record<string, string> = { 'mqtt:': '1883', 'mqtts:': '8883', 'ws:': '80', 'wss:': '443' };

/** A short, safe rendering of an untrusted value for a problem message. */
export function show(value: unknown): string {
  let text: string;
  try {
    text = value === undefined ? 'undefined' : JSON.stringify(value) ?? String(value);
  } catch {
    text = String(value);
  }
  return text.length > 80 ? `${text.slice(0, 77)}...` : text;
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Problems with a URL field, each prefixed with `path` (empty = ok).
 * `schemes` are the allowed `URL.protocol` values (with the colon).
 */
export function urlProblems(value: unknown, path: string, schemes: readonly string[]): string[] {
  const allowed = schemes.length === 2 ? schemes.join(' or ') : `${schemes.slice(0, -1).join(', ')} or ${schemes.at(-1) ?? ''}`;
  if (typeof value !== 'string') return [`${path}: must be a URL string (got ${show(value)})`];
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    return [`${path}: is not a parseable URL (got ${show(value)})`];
  }
  if (!schemes.includes(url.protocol)) return [`${path}: scheme must be ${allowed} (got ${show(url.protocol)})`];
  // `mqtt:foo` parses with an empty host: nothing to connect to.
  if (url.hostname === '') return [`${path}: URL has no host (got ${show(value)})`];
  return [];
}

/** Options of {@link validatePointerList}. */
export interface PointerListOptions {
  /** Path prefix of every problem, e.g. `pointers` (default) or `list`. */
  path?: string;
  /** Most entries allowed (default {@link MAX_POINTERS}). */
  max?: number;
}

/**
 * Every problem with an untrusted pointer list, as `path: what is wrong`
 * lines (empty = ok): an array of 1..max objects `{ id, broker, services }`,
 * ids valid as topic levels and unique, `broker` an `mqtt:`/`mqtts:`/`ws:`/`wss:`
 * URL, `services` an `http:`/`https:` URL, `sip` absent or a SIP registrar
 * URI (sip-uri.ts). Extra fields on an entry are tolerated (a newer sender
 * may add some).
 */
export function validatePointerList(list: unknown, options: PointerListOptions = {}): string[] {
  const path = options.path ?? 'pointers';
  const max = options.max ?? MAX_POINTERS;
  if (!Array.isArray(list)) return [`${path}: must be an array of pointers (got ${show(list)})`];
  if (list.length < 1 || list.length > max) {
    return [`${path}: must hold 1 to ${max} pointers (got ${list.length})`];
  }
  const problems: string[] = [];
  const seen = new Map<string, number>();
  list.forEach((entry: unknown, i) => {
    const at = `${path}/${i}`;
    if (!isPlainObject(entry)) {
      problems.push(`${at}: must be an object { id, broker, services } (got ${show(entry)})`);
      return;
    }
    if (!isValidId(entry.id)) {
      problems.push(`${at}/id: must be an id of 1 to 64 characters from A-Z a-z 0-9 . _ - (got ${show(entry.id)})`);
    } else {
      const first = seen.get(entry.id);
      if (first !== undefined) problems.push(`${at}/id: duplicate id ${show(entry.id)} (also at ${path}/${first})`);
      else seen.set(entry.id, i);
    }
    problems.push(...urlProblems(entry.broker, `${at}/broker`, BROKER_SCHEMES));
    problems.push(...urlProblems(entry.services, `${at}/services`, SERVICES_SCHEMES));
    if (entry.sip !== undefined) problems.push(...sipUriProblems(entry.sip, `${at}/sip`));
  });
  return problems;
}

/** One pointer's `{ id, broker, services, sip? }`, without extra fields (`sip` only when present). */
export function cleanPointer(p: Pointer): Pointer {
  return p.sip === undefined ? { id: p.id, broker: p.broker, services: p.services } : { id: p.id, broker: p.broker, services: p.services, sip: p.sip };
}

/** The `{ id, broker, services, sip? }` of a validated list, without extra fields. */
export function cleanPointerList(list: readonly Pointer[]): Pointer[] {
  return list.map(cleanPointer);
}

/** True when both lists name the same pointers, field for field, in the same order. */
export function samePointerList(a: readonly Pointer[], b: readonly Pointer[]): boolean {
  if (a.length !== b.length) return false;
  return a.every((p, i) => {
    const q = b[i];
    return q !== undefined && p.id === q.id && p.broker === q.broker && p.services === q.services && p.sip === q.sip;
  });
}

/**
 * Keys of valid URLs already seen: the machine asks for a pointer's broker
 * key several times a step, and parsing a URL each time was a visible part
 * of a keep-alive's cost. Bounded (oldest dropped); invalid URLs are never
 * stored, so they throw every time.
 */
const brokerKeys = new Map<string, string>();
const BROKER_KEYS_MAX = 256;

/**
 * A host as the URL parser of `http:` spells it, which the opaque host of an
 * `mqtt:` URL is not: lower case, percent-escapes decoded, IDN to punycode,
 * IPv4 in dotted decimal (`127.1` and `0x7f.0.0.1` are `127.0.0.1`), IPv6
 * compressed in brackets, an IPv4-mapped IPv6 address (`[::ffff:7f00:1]`) as
 * its IPv4, and one trailing dot (a fully qualified `broker.example.`) left
 * out. A host that parser refuses is only lower-cased.
 */
export function canonicalHost(hostname: string): string {
  let host: string;
  try {
    host = new URL(`http://${hostname}`).hostname;
  } catch {
    host = hostname.toLowerCase();
  }
  const mapped = /^\[::ffff:([0-9a-f]{1,4}):([0-9a-f]{1,4})\]$/.exec(host);
  if (mapped !== null) {
    const hi = parseInt(mapped[1]!, 16);
    const lo = parseInt(mapped[2]!, 16);
    return `${hi >> 8}.${hi & 255}.${lo >> 8}.${lo & 255}`;
  }
  return host.endsWith('.') && !host.endsWith('..') ? host.slice(0, -1) : host;
}

/**
 * A normalised broker URL, so pointers naming the same broker share one
 * connection: lower-case scheme, the host as {@link canonicalHost} spells it
 * (case, trailing dot, IPv4 and IPv6 forms), the scheme's default port made
 * explicit (mqtt 1883, mqtts 8883, ws 80, wss 443), no trailing slash.
 * Credentials are left out (the key may be logged). Throws CONFIG_INVALID
 * for a string that is not a broker URL.
 *
 * Names are not resolved here: `localhost` and `127.0.0.1` stay two keys. A
 * call manager resolves its brokers' names at start before it links to the
 * group's other brokers (callmanager/broker-endpoints.ts), so it never opens a
 * second session to its own broker under another spelling.
 */
export function brokerKey(url: string): string {
  const known = brokerKeys.get(url);
  if (known !== undefined) return known;
  const problems = urlProblems(url, 'broker', BROKER_SCHEMES);
  if (problems.length > 0) throw new IpphoneError(problems.join('; '), 'CONFIG_INVALID', { url });
  const u = new URL(url);
  const scheme = u.protocol.toLowerCase();
  const port = u.port === '' ? (DEFAULT_PORTS[scheme] ?? '') : u.port;
  const pathname = u.pathname.replace(/\/+$/, '');
  const key = `${scheme}//${canonicalHost(u.hostname)}:${port}${pathname}${u.search}`;
  if (brokerKeys.size >= BROKER_KEYS_MAX) brokerKeys.delete(brokerKeys.keys().next().value!);
  brokerKeys.set(url, key);
  return key;
}
