/**
 * What `ipphone-admin config` and `pointers` sign: the operator's files read
 * and checked, and the bodies of shared/CONTRACT.md built from them.
 */
import { readFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { parsePrivateKey } from '../protocol/envelope.js';
import { cleanPointerList, show, validatePointerList } from '../protocol/pointers.js';
import type { ConfigBody, Pointer, PointerReason, PointersBody } from '../protocol/types.js';

function readText(path: string, what: string): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (err) {
    throw new IpphoneError(`cannot read ${what} ${path}: ${errorMessage(err)}`, 'CONFIG_INVALID', { path });
  }
}

function readJson(path: string, what: string): unknown {
  const text = readText(path, what);
  try {
    return JSON.parse(text) as unknown;
  } catch (err) {
    throw new IpphoneError(`${what} ${path} is not JSON: ${errorMessage(err)}`, 'CONFIG_INVALID', { path });
  }
}

/** The signing key (PKCS#8 PEM Ed25519). The error names the file, never its contents. */
export function loadSigningKey(path: string): KeyObject {
  const pem = readText(path, 'key file');
  try {
    return parsePrivateKey(pem);
  } catch (err) {
    throw new IpphoneError(`key file ${path}: ${errorMessage(err)}`, 'CONFIG_INVALID', { path });
  }
}

/** A config patch: a JSON object (its deep validation is the phone's job). */
export function loadConfigPatch(path: string): Record<string, unknown> {
  const v = readJson(path, 'config patch');
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new IpphoneError(`config patch ${path} must be a JSON object (got ${show(v)})`, 'CONFIG_INVALID', { path });
  }
  return v as Record<string, unknown>;
}

/**
 * A pointer list, checked as the phone checks it ({@link validatePointerList});
 * throws CONFIG_INVALID with every problem in `context.problems`. Accepts a
 * bare array or `{ "list": [...] }` / `{ "pointers": [...] }` (a body or an
 * agent config), so an existing file can be reused.
 */
export function loadPointerList(path: string): Pointer[] {
  const v = readJson(path, 'pointer list');
  let list: unknown = v;
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    list = o.list ?? o.pointers;
  }
  const problems = validatePointerList(list, { path: 'list' });
  if (problems.length > 0) {
    throw new IpphoneError(`pointer list ${path} has ${problems.length} problem${problems.length === 1 ? '' : 's'}`, 'CONFIG_INVALID', { path, problems });
  }
  return cleanPointerList(list as Pointer[]);
}

/** Common body fields as the operator asked for them. */
export interface BodyOptions {
  phone: string;
  /** Default: `now`, or `held + 1` when that is greater. */
  version?: number;
  /**
   * The version the phone holds (from its retained status), when known: the
   * default version is above it even when this host's clock is behind the
   * signer of the phone's list (issue #10: ordering must not need hosts to
   * agree on the time).
   */
  held?: number;
  /** `expires` = now + this, ms. */
  expiresInMs?: number;
  /** Time of sending, ms since the epoch. */
  now: number;
}

function common(o: BodyOptions): { version: number; expires?: number } {
  const out: { version: number; expires?: number } = { version: o.version ?? Math.max(o.now, (o.held ?? -1) + 1) };
  if (o.expiresInMs !== undefined) out.expires = o.now + o.expiresInMs;
  return out;
}

/** `{ version, config, expires?, phone }`. */
export function configBody(config: Record<string, unknown>, o: BodyOptions): ConfigBody {
  const { version, expires } = common(o);
  return { version, config, ...(expires !== undefined ? { expires } : {}), phone: o.phone };
}

/** `{ version, reason, list, expires?, phone }`. */
export function pointersBody(list: Pointer[], reason: PointerReason, o: BodyOptions): PointersBody {
  const { version, expires } = common(o);
  return { version, reason, list, ...(expires !== undefined ? { expires } : {}), phone: o.phone };
}

/**
 * A rebase (`pointers --rebase`, protocol/codec.ts checkRebase): `{ version,
 * reason, list, expires, phone, rebase: held }` — the list at `version` (default:
 * now, this host's clock) replacing the version `held` the phone shows, which
 * must be above it. Throws CONFIG_INVALID when there is nothing to rebase.
 */
export function rebaseBody(list: Pointer[], reason: PointerReason, o: BodyOptions & { held: number | undefined; expiresInMs: number }): PointersBody {
  if (o.held === undefined) {
    throw new IpphoneError(`--rebase: phone ${o.phone} has no retained status with a pointersVersion: nothing to rebase from`, 'CONFIG_INVALID', { phone: o.phone });
  }
  const version = o.version ?? Math.floor(o.now);
  if (version >= o.held) {
    throw new IpphoneError(`--rebase: phone ${o.phone} holds version ${o.held}, not above ${version}: a plain pointers push (without --rebase) reaches it`, 'CONFIG_INVALID', { phone: o.phone, held: o.held });
  }
  return { version, reason, list, expires: Math.floor(o.now) + o.expiresInMs, phone: o.phone, rebase: o.held };
}
