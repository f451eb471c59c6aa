import { isUtf8 } from 'node:buffer';
import { IpphoneError } from '../lib/errors.js';
import { openEnvelope, type TrustedKeys } from './envelope.js';
import {
  AckSchema,
  compile,
  ConfigBodySchema,
  ConfigResultSchema,
  conform,
  EnvelopeSchema,
  KeepaliveSchema,
  LoadSchema,
  MAX_OWNS,
  PointersBodySchema,
  StatusSchema,
} from './payload-schemas.js';
import { cleanPointerList, show, validatePointerList } from './pointers.js';
import { isValidId } from './topics.js';
import {
  POINTER_REASONS,
  type AckPayload,
  type CmStatePayload,
  type ConfigBody,
  type ConfigResultPayload,
  type Envelope,
  type KeepalivePayload,
  type LoadPayload,
  type Pointer,
  type PointerReason,
  type PointersBody,
  type StatusPayload,
} from './types.js';

/**
 * Codecs for inbound MQTT payloads: untrusted bytes in, a typed value out, or
 * an {@link IpphoneError} (PAYLOAD_TOO_LARGE, PAYLOAD_INVALID, or for signed
 * bodies UNSIGNED / KEY_UNKNOWN / SIGNATURE_INVALID / EXPIRED / WRONG_PHONE /
 * VERSION_REPLAYED) whose message says in words what was wrong.
 *
 * Unknown fields are tolerated and ignored everywhere, so a newer sender can
 * add fields without older receivers refusing its messages. Decoders return
 * only the fields they know (except status and config results, whose types
 * keep extras).
 */

/** Default cap on a payload's size in bytes. */
export const MAX_PAYLOAD_BYTES = 65536;
/** Default cap on JSON nesting (the top-level object is depth 1). */
export const MAX_JSON_DEPTH = 16;

const OPEN_BRACE = 0x7b;
const CLOSE_BRACE = 0x7d;
const OPEN_BRACKET = 0x5b;
const CLOSE_BRACKET = 0x5d;
const QUOTE = 0x22;
const BACKSLASH = 0x5c;

/**
 * The deepest bracket nesting in JSON text, counted without recursion (so a
 * hostile 10,000-deep payload cannot overflow the stack), ignoring brackets
 * inside strings. Stops early once `limit` is passed.
 */
function jsonDepthExceeds(text: string, limit: number): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === BACKSLASH) i++;
      else if (c === QUOTE) inString = false;
    } else if (c === QUOTE) {
      inString = true;
    } else if (c === OPEN_BRACE || c === OPEN_BRACKET) {
      if (++depth > limit) return true;
    } else if (c === CLOSE_BRACE || c === CLOSE_BRACKET) {
      depth--;
    }
  }
  return false;
}

/**
 * Parse an untrusted payload as a UTF-8 JSON object.
 *
 * @param maxBytes refuse larger payloads with PAYLOAD_TOO_LARGE (default 65536)
 * @param maxDepth refuse deeper nesting with PAYLOAD_INVALID (default 16; the object itself is 1)
 * @throws IpphoneError PAYLOAD_INVALID for non-UTF-8, not JSON, not an object
 */
export function parseJsonPayload(payload: Buffer, maxBytes = MAX_PAYLOAD_BYTES, maxDepth = MAX_JSON_DEPTH): Record<string, unknown> {
  if (payload.length > maxBytes) {
    throw new IpphoneError(`payload is ${payload.length} bytes, more than ${maxBytes}`, 'PAYLOAD_TOO_LARGE', { bytes: payload.length });
  }
  if (!isUtf8(payload)) throw new IpphoneError('payload is not UTF-8', 'PAYLOAD_INVALID');
  const text = payload.toString('utf8');
  if (jsonDepthExceeds(text, maxDepth)) throw new IpphoneError(`payload nests deeper than ${maxDepth} levels`, 'PAYLOAD_INVALID');
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new IpphoneError(`payload is not JSON: ${(err as Error).message}`, 'PAYLOAD_INVALID');
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new IpphoneError(`payload must be a JSON object (got ${Array.isArray(value) ? 'an array' : show(value)})`, 'PAYLOAD_INVALID');
  }
  return value as Record<string, unknown>;
}

/** JSON → UTF-8 bytes, for publishing. */
export function encode(obj: unknown): Buffer {
  return Buffer.from(JSON.stringify(obj), 'utf8');
}

// Hand-written field checks give the words; the schemas of payload-schemas.ts,
// compiled once at load (the keep-alive decoder runs tens of thousands of times a
// second on a call manager), then decide: what a schema refuses is refused.
const KEEPALIVE = compile(KeepaliveSchema);
const ENVELOPE = compile(EnvelopeSchema);
const ACK = compile(AckSchema);
const LOAD = compile(LoadSchema);
const STATUS = compile(StatusSchema);
const CONFIG_RESULT = compile(ConfigResultSchema);
const POINTERS_BODY = compile(PointersBodySchema);
const CONFIG_BODY = compile(ConfigBodySchema);

function bad(what: string, field: string, value: unknown, expected: string): never {
  throw new IpphoneError(`${what}: ${field} must be ${expected} (got ${show(value)})`, 'PAYLOAD_INVALID', { field });
}

function count(what: string, o: Record<string, unknown>, field: string): number {
  const v = o[field];
  if (typeof v !== 'number' || !Number.isSafeInteger(v) || v < 0) bad(what, field, v, 'a non-negative integer');
  return v;
}

function id(what: string, o: Record<string, unknown>, field: string): string {
  const v = o[field];
  if (!isValidId(v)) bad(what, field, v, 'an id of 1 to 64 characters from A-Z a-z 0-9 . _ -');
  return v;
}

function bool(what: string, o: Record<string, unknown>, field: string): boolean {
  const v = o[field];
  if (typeof v !== 'boolean') bad(what, field, v, 'true or false');
  return v;
}

/** `P/cm/{cmId}/keepalive`: `{ phone, seq, pointersVersion, busy, probe?, prev?, intervalMs? }`. */
export function decodeKeepalive(buf: Buffer): KeepalivePayload & { intervalMs?: number } {
  const o = parseJsonPayload(buf);
  const out: KeepalivePayload & { intervalMs?: number } = {
    phone: id('keepalive', o, 'phone'),
    seq: count('keepalive', o, 'seq'),
    pointersVersion: count('keepalive', o, 'pointersVersion'),
    busy: bool('keepalive', o, 'busy'),
  };
  if (o.probe !== undefined) out.probe = bool('keepalive', o, 'probe');
  if (o.prev !== undefined) {
    if (o.prev !== null && typeof o.prev !== 'string') bad('keepalive', 'prev', o.prev, 'a string or null');
    out.prev = o.prev;
  }
  if (o.intervalMs !== undefined) {
    const v = o.intervalMs;
    if (typeof v !== 'number' || !Number.isSafeInteger(v) || v <= 0) bad('keepalive', 'intervalMs', v, 'a positive integer');
    out.intervalMs = v;
  }
  conform('keepalive', KEEPALIVE, o);
  return out;
}

function envelopeFrom(what: string, v: unknown): Envelope {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) bad(what, 'envelope', v, 'an object { kid, body, sig }');
  const o = v as Record<string, unknown>;
  for (const f of ['kid', 'body', 'sig'] as const) {
    if (typeof o[f] !== 'string' || o[f] === '') bad(what, f, o[f], 'a non-empty string');
  }
  conform(what, ENVELOPE, o);
  return { kid: o.kid as string, body: o.body as string, sig: o.sig as string };
}

/** A signed envelope `{ kid, body, sig }` (checks shape only; see {@link openPointers}). */
export function decodeEnvelope(buf: Buffer): Envelope {
  return envelopeFrom('envelope', parseJsonPayload(buf));
}

/** `P/phone/{phoneId}/ack`: `{ cm, seq }` plus `pointers` (envelope) and/or `pointersVersion`. */
export function decodeAck(buf: Buffer): AckPayload {
  const o = parseJsonPayload(buf);
  const out: AckPayload = { cm: id('ack', o, 'cm'), seq: count('ack', o, 'seq') };
  if (o.pointers !== undefined) out.pointers = envelopeFrom('ack pointers', o.pointers);
  if (o.pointersVersion !== undefined) out.pointersVersion = count('ack', o, 'pointersVersion');
  if (out.pointers === undefined && out.pointersVersion === undefined) {
    throw new IpphoneError('ack: needs pointers or pointersVersion', 'PAYLOAD_INVALID');
  }
  conform('ack', ACK, o);
  return out;
}

/** `P/cm/{cmId}/state`: `{ online }`. */
export function decodeCmState(buf: Buffer): CmStatePayload {
  return { online: bool('cm state', parseJsonPayload(buf), 'online') };
}

/**
 * `P/cm/{cmId}/load`: `{ phones, capacity, servicesRps, version? }` (servicesRps a finite
 * number ≥ 0; `version` the highest list version the call manager issued or saw).
 */
export function decodeLoad(buf: Buffer): LoadPayload {
  const o = parseJsonPayload(buf);
  const rps = o.servicesRps;
  if (typeof rps !== 'number' || !Number.isFinite(rps) || rps < 0) bad('load', 'servicesRps', rps, 'a number ≥ 0');
  const out: LoadPayload = { phones: count('load', o, 'phones'), capacity: count('load', o, 'capacity'), servicesRps: rps };
  if (o.version !== undefined) out.version = count('load', o, 'version');
  conform('load', LOAD, o);
  return out;
}

/** A phone's will, or a status published without its details. */
export interface OfflineStatus {
  online: false;
}

function optionalId(what: string, o: Record<string, unknown>, field: string): string | null {
  const v = o[field];
  if (v === null) return null;
  return id(what, o, field);
}

/**
 * `P/phone/{phoneId}/status`: `{ online, home, services, state, pointersVersion,
 * configVersion, rehomes }`, or the will `{ online: false }` (recognised by the
 * absence of `state`). Extra fields are kept.
 */
export function decodeStatus(buf: Buffer): StatusPayload | OfflineStatus {
  const o = parseJsonPayload(buf);
  const online = bool('status', o, 'online');
  if (!online && o.state === undefined) {
    conform('status', STATUS, o);
    return { online: false };
  }
  if (typeof o.state !== 'string') bad('status', 'state', o.state, 'a string');
  const out: StatusPayload = {
    ...o,
    online,
    home: optionalId('status', o, 'home'),
    services: optionalId('status', o, 'services'),
    state: o.state,
    pointersVersion: count('status', o, 'pointersVersion'),
    configVersion: count('status', o, 'configVersion'),
    rehomes: count('status', o, 'rehomes'),
  };
  conform('status', STATUS, o);
  return out;
}

/** `P/phone/{phoneId}/config/result`: `{ version, ok, error? }`. Extra fields are kept. */
export function decodeConfigResult(buf: Buffer): ConfigResultPayload {
  const o = parseJsonPayload(buf);
  const out: ConfigResultPayload = { ...o, version: count('config result', o, 'version'), ok: bool('config result', o, 'ok') };
  if (o.error !== undefined && typeof o.error !== 'string') bad('config result', 'error', o.error, 'a string');
  conform('config result', CONFIG_RESULT, o);
  return out;
}

/** What the receiver of a signed body knows. */
export interface OpenContext {
  /** This phone's id; a body naming another phone is refused (WRONG_PHONE). */
  phoneId: string;
  /** Version held now; a body with version ≤ this is refused (VERSION_REPLAYED). */
  heldVersion: number;
  /** Current time, ms since the epoch; a body with `expires` ≤ this is refused (EXPIRED). */
  now: number;
  /**
   * A pointers body with `rebase` may be taken (see {@link checkRebase}): only a
   * verified signature pushed on the phone's own `pointers` topic. Default false:
   * a rebase in an ack or unsigned is refused.
   */
  rebase?: boolean;
}

/** Longest a rebase body may live (`expires` − the phone's now), ms: a recorded one is soon worthless. */
export const REBASE_MAX_LIFETIME_MS = 3600_000;

type Common = { version: number; expires?: number; phone?: string };

/** Parse body bytes and check the fields every body shares. */
function readBody(what: string, bytes: Buffer): { o: Record<string, unknown>; common: Common } {
  let o: Record<string, unknown>;
  try {
    o = parseJsonPayload(bytes);
  } catch (err) {
    const e = err as IpphoneError;
    throw new IpphoneError(`${what} body: ${e.message}`, e.code, e.context);
  }
  const version = o.version;
  if (typeof version !== 'number' || !Number.isSafeInteger(version) || version < 1) bad(what, 'version', version, 'a positive integer');
  const common: Common = { version };
  if (o.expires !== undefined) {
    if (typeof o.expires !== 'number' || !Number.isFinite(o.expires)) bad(what, 'expires', o.expires, 'a time in ms since the epoch');
    common.expires = o.expires;
  }
  if (o.phone !== undefined) {
    if (typeof o.phone !== 'string') bad(what, 'phone', o.phone, 'a phone id');
    common.phone = o.phone;
  }
  return { o, common };
}

/**
 * The receiver-specific refusals, after the body is known to be well formed.
 *
 * Binding: a body naming another phone is refused; a body naming none is still
 * accepted (the contract makes `phone` optional; call managers of an older release
 * and other signing tools send unbound bodies, and a fleet upgrades its call
 * managers one at a time — refusing unbound lists would strand phones homed on
 * one not yet upgraded). Call managers now always bind theirs (list-book.ts), and
 * `ipphone-admin` always names `--phone`.
 *
 * Expiry is judged by this host's wall clock, at reception only (never for a list
 * already held). A phone booting in 1970 therefore accepts every list (the cost: a
 * replay window until NTP sets its clock); one ahead refuses lists whose `expires`
 * it has passed — call managers hand out lists with at least 12 h left, so only a
 * clock more than 12 h ahead refuses theirs, and the phone keeps working from the
 * list it holds.
 */
function checkFresh(what: string, common: Common, ctx: OpenContext): void {
  if (common.phone !== undefined && common.phone !== ctx.phoneId) {
    throw new IpphoneError(`${what} is for phone ${show(common.phone)}, not ${show(ctx.phoneId)}`, 'WRONG_PHONE');
  }
  if (common.expires !== undefined && common.expires <= ctx.now) {
    throw new IpphoneError(`${what} expired at ${common.expires} (now ${ctx.now})`, 'EXPIRED', { expires: common.expires });
  }
  if (common.version <= ctx.heldVersion) {
    throw new IpphoneError(`${what} version ${common.version} is not newer than held version ${ctx.heldVersion}`, 'VERSION_REPLAYED', {
      version: common.version,
      held: ctx.heldVersion,
    });
  }
}

/**
 * Open a signed pointer list: signature first (openEnvelope), then the body
 * `{ version, reason, list, expires?, phone? }` ({@link parsePointersBody}).
 */
export function openPointers(env: Envelope, keys: TrustedKeys, ctx: OpenContext): PointersBody {
  return parsePointersBody(openEnvelope(env, keys), ctx);
}

/**
 * Check pointer-list body bytes WITHOUT a signature: for the envelope's
 * verified bytes, or for an unsigned body when `trust.requireSigned` is
 * false. List entries come back without extra fields.
 */
export function parsePointersBody(bytes: Buffer, ctx: OpenContext): PointersBody {
  const { o, common } = readBody('pointers', bytes);
  if (typeof o.reason !== 'string' || !(POINTER_REASONS as readonly string[]).includes(o.reason)) {
    bad('pointers', 'reason', o.reason, `one of ${POINTER_REASONS.join(', ')}`);
  }
  const problems = validatePointerList(o.list, { path: 'list' });
  if (problems.length > 0) {
    throw new IpphoneError(`pointers: ${problems.join('; ')}`, 'PAYLOAD_INVALID', { problems });
  }
  const owns = o.owns === undefined ? undefined : parseOwns(o.owns);
  if (o.rebase !== undefined && (typeof o.rebase !== 'number' || !Number.isSafeInteger(o.rebase) || o.rebase < 1)) bad('pointers', 'rebase', o.rebase, 'a positive integer');
  conform('pointers', POINTERS_BODY, o);
  const rebase = o.rebase as number | undefined;
  if (rebase === undefined) checkFresh('pointers', common, ctx);
  else checkRebase(common, rebase, ctx);
  return { ...common, reason: o.reason as PointerReason, list: cleanPointerList(o.list as Pointer[]), ...(owns ? { owns } : {}), ...(rebase !== undefined ? { rebase } : {}) };
}

/**
 * A rebase (issue 15): a signed list that REPLACES a version held too far ahead
 * with a lower one — the recovery for phones that took versions from a call
 * manager dragged ahead (or with a wrong clock); no call manager may issue such
 * versions any more (version-clock.ts), so without it they refuse every list
 * for as long as the gap lasts. Made by `ipphone-admin pointers --rebase`.
 *
 * Replay-safe by three rules, each enough to stop the obvious attack:
 * - bound: `phone` is required and must be this phone (WRONG_PHONE);
 * - short-lived: `expires` is required, in the future, and at most
 *   {@link REBASE_MAX_LIFETIME_MS} from this phone's now (EXPIRED / PAYLOAD_INVALID);
 * - one-time: `rebase` must be exactly the version held, and `version` below it.
 *   Once taken the phone holds `version`, so the same body again — or any other
 *   rebase recorded for that held version — is refused (VERSION_REPLAYED): a
 *   recorded rebase can never roll a phone back later.
 */
function checkRebase(common: Common, rebase: number, ctx: OpenContext): void {
  if (ctx.rebase !== true) throw new IpphoneError('pointers: a rebase is taken only signed, pushed on the phone\'s own pointers topic', 'PAYLOAD_INVALID', { field: 'rebase' });
  if (common.phone !== ctx.phoneId) {
    throw new IpphoneError(`pointers: a rebase must name this phone (${show(ctx.phoneId)}; got ${show(common.phone)})`, 'WRONG_PHONE');
  }
  if (common.expires === undefined) bad('pointers', 'expires', undefined, 'set on a rebase');
  if (common.expires <= ctx.now) throw new IpphoneError(`pointers rebase expired at ${common.expires} (now ${ctx.now})`, 'EXPIRED', { expires: common.expires });
  if (common.expires - ctx.now > REBASE_MAX_LIFETIME_MS) {
    throw new IpphoneError(`pointers: a rebase must expire within ${REBASE_MAX_LIFETIME_MS} ms (expires ${common.expires}, now ${ctx.now})`, 'PAYLOAD_INVALID', { field: 'expires' });
  }
  if (rebase !== ctx.heldVersion) {
    throw new IpphoneError(`pointers rebase replaces version ${rebase}, but version ${ctx.heldVersion} is held`, 'VERSION_REPLAYED', { version: common.version, rebase, held: ctx.heldVersion });
  }
  if (common.version >= rebase) bad('pointers', 'version', common.version, `below the version the rebase replaces (${rebase})`);
}

export { MAX_OWNS };

/** `owns`: an array of up to {@link MAX_OWNS} ids valid as topic levels. */
function parseOwns(v: unknown): string[] {
  if (!Array.isArray(v) || v.length > MAX_OWNS || !v.every((id) => typeof id === 'string' && isValidId(id))) {
    bad('pointers', 'owns', v, `an array of at most ${MAX_OWNS} ids`);
  }
  return [...(v as string[])];
}

/**
 * Open a signed config change: signature first, then `{ version, config,
 * expires?, phone? }` ({@link parseConfigBody}).
 */
export function openConfig(env: Envelope, keys: TrustedKeys, ctx: OpenContext): ConfigBody {
  return parseConfigBody(openEnvelope(env, keys), ctx);
}

/**
 * Check config-change body bytes WITHOUT a signature (see
 * {@link parsePointersBody}). `config` must be a plain object; its deep
 * validation is the config module's job.
 */
export function parseConfigBody(bytes: Buffer, ctx: OpenContext): ConfigBody {
  const { o, common } = readBody('config', bytes);
  const config = o.config;
  if (typeof config !== 'object' || config === null || Array.isArray(config)) bad('config', 'config', config, 'an object');
  conform('config', CONFIG_BODY, o);
  checkFresh('config', common, ctx);
  return { ...common, config: config as Record<string, unknown> };
}
