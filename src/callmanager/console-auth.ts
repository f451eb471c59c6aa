/**
 * Who may see the operator console (issue 15 §4, shared/CONTRACT.md "Call
 * manager HTTP"). The console faces the same network as the services pages —
 * the phones' — so it answers only requests that carry the operators' token
 * (`Authorization: Bearer TOKEN`) or the cookie of a session that logging in
 * with the token opened (`POST /console/login`).
 *
 * Decisions only, no I/O: time is the injected monotonic clock, session ids
 * come from the injected random source, and console.ts turns the answers
 * into HTTP. Why each choice:
 *
 * - Tokens are compared as SHA-256 digests with `timingSafeEqual`: equal
 *   lengths whatever was sent, so neither the length nor a common prefix of
 *   the token leaks through the answer's timing.
 * - The cookie never holds the token: it holds a random 256-bit session id,
 *   kept here only as its digest with a monotonic expiry. A stolen cookie
 *   dies with its session (or `POST /console/logout`, or a restart); the
 *   token does not travel again after login.
 * - Guessing is rate-limited per client address (IPv6 by its /64, which one
 *   host usually holds whole): a token bucket of failed attempts — a wrong
 *   login, a wrong Bearer token. While an address's bucket is empty every
 *   credential check from it is refused (429) before any compare, the right
 *   token included: otherwise the limit would not limit guessing. A session
 *   cookie already issued keeps working (its id is not guessable, so wrong
 *   cookies are not counted). Memory is bounded: at most
 *   {@link ConsoleAuthOptions.maxAddresses} buckets and
 *   {@link ConsoleAuthOptions.maxSessions} sessions, oldest first out.
 */
import { createHash, randomBytes as nodeRandomBytes, timingSafeEqual } from 'node:crypto';
import { isIPv6 } from 'node:net';
import type { Clock } from '../lib/clock.js';

/** Name of the session cookie. */
export const SESSION_COOKIE = 'ipphone_console';

export interface ConsoleAuthOptions {
  /** The operators' token (console.tokenFile, already checked). */
  token: string;
  /** Monotonic time for sessions and buckets. */
  clock: Pick<Clock, 'elapsed'>;
  /** Random bytes for session ids (tests inject a fixed source). */
  randomBytes?: (n: number) => Buffer;
  /** Life of a login session, ms (default 12 h: one shift). */
  sessionTtlMs?: number;
  /** Sessions held at once; logging in beyond it ends the oldest (default 256). */
  maxSessions?: number;
  /** Failed attempts an address may make at once (default 10). */
  failBurst?: number;
  /** One more failed attempt allowed every this many ms (default 6000: 10 a minute). */
  failRefillMs?: number;
  /** Addresses whose buckets are held; the least recently seen goes first (default 4096). */
  maxAddresses?: number;
}

/** Where a request's credentials stand. */
export type AuthDecision =
  | { ok: true; via: 'bearer' | 'cookie'; /** Monotonic ms the credential stops being good (Infinity for the token). */ until: number }
  | { ok: false; status: 401; why: 'none' | 'wrong' | 'expired' }
  | { ok: false; status: 429; retryAfterS: number };

export type LoginDecision =
  | { ok: true; cookie: string; maxAgeS: number }
  | { ok: false; status: 401; why: 'wrong' }
  | { ok: false; status: 429; retryAfterS: number };

interface Bucket {
  tokens: number;
  at: number;
}

const digest = (s: string): Buffer => createHash('sha256').update(s, 'utf8').digest();

/** The key a client address is limited under: an IPv4 address itself, an IPv6 address by its /64. */
export function addressKey(address: string | undefined): string {
  if (address === undefined || address === '') return '?';
  const v4 = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(address);
  if (v4) return v4[1]!;
  if (!isIPv6(address)) return address;
  // Expand `::` to get the first four groups.
  const [head = '', tail] = address.split('::');
  const h = head === '' ? [] : head.split(':');
  const t = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return `${groups.slice(0, 4).map((g) => g.toLowerCase().replace(/^0+(?=.)/, '')).join(':')}::/64`;
}

/** The values of cookie `name` in a `Cookie` header (a browser may send several). */
export function cookieValues(header: string | undefined, name: string): string[] {
  if (header === undefined) return [];
  const out: string[] = [];
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() === name) out.push(part.slice(eq + 1).trim());
  }
  return out;
}

export class ConsoleAuth {
  readonly #token: Buffer;
  readonly #clock: Pick<Clock, 'elapsed'>;
  readonly #random: (n: number) => Buffer;
  readonly #ttl: number;
  readonly #maxSessions: number;
  readonly #burst: number;
  readonly #refill: number;
  readonly #maxAddresses: number;
  /** Session id digest (hex) → monotonic expiry; insertion order = oldest first. */
  readonly #sessions = new Map<string, number>();
  /** Address key → failed-attempt bucket; insertion order = least recently seen first. */
  readonly #buckets = new Map<string, Bucket>();
  /** Credential checks refused for the rate limit (for logs and tests). */
  limited = 0;
  /** Wrong tokens seen (login or Bearer). */
  failures = 0;

  constructor(o: ConsoleAuthOptions) {
    this.#token = digest(o.token);
    this.#clock = o.clock;
    this.#random = o.randomBytes ?? nodeRandomBytes;
    this.#ttl = o.sessionTtlMs ?? 12 * 3600_000;
    this.#maxSessions = o.maxSessions ?? 256;
    this.#burst = o.failBurst ?? 10;
    this.#refill = o.failRefillMs ?? 6000;
    this.#maxAddresses = o.maxAddresses ?? 4096;
  }

  /** Seconds a session cookie lives (its Max-Age). */
  get sessionMaxAgeS(): number {
    return Math.floor(this.#ttl / 1000);
  }

  /** Sessions open now (expired ones are counted until pruned). */
  get sessions(): number {
    return this.#sessions.size;
  }

  /**
   * Decide a request from its `Authorization` and `Cookie` headers and its
   * peer address. A Bearer header, when present, decides alone (a wrong one
   * is a failed attempt even with a good cookie beside it).
   */
  authorize(headers: { authorization?: string | undefined; cookie?: string | undefined }, address: string | undefined): AuthDecision {
    const now = this.#clock.elapsed();
    const auth = headers.authorization;
    if (auth !== undefined) {
      const m = /^Bearer[ \t]+(\S+)[ \t]*$/i.exec(auth);
      const limited = this.#limited(address, now);
      if (limited !== undefined) return { ok: false, status: 429, retryAfterS: limited };
      if (m !== null && this.#isToken(m[1]!)) return { ok: true, via: 'bearer', until: Infinity };
      this.#fail(address, now);
      return { ok: false, status: 401, why: 'wrong' };
    }
    let expired = false;
    for (const value of cookieValues(headers.cookie, SESSION_COOKIE)) {
      const key = digest(value).toString('hex');
      const until = this.#sessions.get(key);
      if (until === undefined) continue;
      if (until > now) return { ok: true, via: 'cookie', until };
      this.#sessions.delete(key);
      expired = true;
    }
    return { ok: false, status: 401, why: expired ? 'expired' : 'none' };
  }

  /** A login with `token` (the form field) from `address`: a new session's cookie value, or why not. */
  login(token: string, address: string | undefined): LoginDecision {
    const now = this.#clock.elapsed();
    const limited = this.#limited(address, now);
    if (limited !== undefined) return { ok: false, status: 429, retryAfterS: limited };
    if (!this.#isToken(token)) {
      this.#fail(address, now);
      return { ok: false, status: 401, why: 'wrong' };
    }
    for (const [k, until] of this.#sessions) if (until <= now) this.#sessions.delete(k);
    while (this.#sessions.size >= this.#maxSessions) this.#sessions.delete(this.#sessions.keys().next().value!);
    const id = this.#random(32).toString('base64url');
    this.#sessions.set(digest(id).toString('hex'), now + this.#ttl);
    return { ok: true, cookie: id, maxAgeS: this.sessionMaxAgeS };
  }

  /** End the sessions the `Cookie` header names. */
  logout(cookieHeader: string | undefined): void {
    for (const value of cookieValues(cookieHeader, SESSION_COOKIE)) this.#sessions.delete(digest(value).toString('hex'));
  }

  /** Constant time in the token and in `given`: both hashed to 32 bytes first. */
  #isToken(given: string): boolean {
    return timingSafeEqual(digest(given), this.#token);
  }

  /** Seconds until `address` may try again, or undefined when it may now. */
  #limited(address: string | undefined, now: number): number | undefined {
    const b = this.#bucket(addressKey(address), now, false);
    if (b === undefined || b.tokens >= 1) return undefined;
    this.limited++;
    return Math.max(1, Math.ceil(((1 - b.tokens) * this.#refill) / 1000));
  }

  #fail(address: string | undefined, now: number): void {
    this.failures++;
    const b = this.#bucket(addressKey(address), now, true)!;
    b.tokens -= 1;
  }

  /** The address's bucket refilled to `now` (made when `create`); a full one is forgotten (it is the default). */
  #bucket(key: string, now: number, create: boolean): Bucket | undefined {
    let b = this.#buckets.get(key);
    if (b !== undefined) {
      this.#buckets.delete(key);
      b.tokens = Math.min(this.#burst, b.tokens + (now - b.at) / this.#refill);
      b.at = now;
      if (b.tokens >= this.#burst && !create) return undefined;
    } else {
      if (!create) return undefined;
      b = { tokens: this.#burst, at: now };
    }
    this.#buckets.set(key, b);
    while (this.#buckets.size > this.#maxAddresses) this.#buckets.delete(this.#buckets.keys().next().value!);
    return b;
  }
}
