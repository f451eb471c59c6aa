/**
 * The signed `P/cm/{cmId}/state` payload (shared/CONTRACT.md, "MQTT topics"):
 * a signed envelope with the top-level `online` that watchers read beside it.
 *
 * ```json
 * { "online": true, "kid": "ops-1", "body": "<base64>", "sig": "<base64 Ed25519>" }
 * ```
 *
 * The body is the UTF-8 JSON `{ cm, online, bdSeq, conn, nonce, seq }`, plus
 * `will: true` in a will and `challenge` in an answer: which call manager, the
 * state, and the run it belongs to (after Sparkplug B 3.0's bdSeq): `bdSeq`
 * the call manager's boot sequence (greater at every start), `conn` the number
 * of the MQTT connection within that run (1, 2, … — a reconnect after a broker
 * loss is a newer connection of the same run), `nonce` random per connection,
 * so that a run id reused after a lost state directory still never matches an
 * old will, and `seq` the order of the message within the run: it rises on
 * every state the run signs (each connection's will and online, an offline it
 * reports while it lives, the online after it), so a receiver takes only what
 * is strictly newer than what it holds. The will a call manager sets at
 * CONNECT is the pre-signed offline of that connection, marked `will: true`
 * (final for its connection), byte for byte what it publishes itself on a
 * clean stop and never before. An answer to a liveness challenge
 * (`P/cm/{cmId}/challenge/{from}/answer`) is the current state signed again
 * with the challenger's random `challenge` in it.
 *
 * Since the group simulation's seed 600,012 a body may also carry `group` and
 * `floor`, always together: a digest of the group the call manager runs
 * (members, brokers, services, retired ids: callmanager/group-floor.ts
 * `groupDigest`) and its group list's floor. A peer running the same group
 * raises its own floor to a higher one (a removal's rolling restart then
 * reaches every phone). Both are additive: a receiver from before ignores them,
 * and a body without them announces nothing.
 *
 * What the fields mean to a receiver is cm-liveness.ts; this file is the
 * format only.
 */
import { IpphoneError } from '../lib/errors.js';
import { parseJsonPayload } from './codec.js';
import { CmChallengeSchema, CmStateBodySchema, CmStateSchema, compile, conform } from './payload-schemas.js';
import { show } from './pointers.js';
import { isValidId } from './topics.js';
import type { Envelope } from './types.js';

/** The signed body of a call manager state. */
export interface CmStateBody {
  /** The call manager's id; must be the id in the topic. */
  cm: string;
  online: boolean;
  /** Boot sequence of the call manager's run: a positive safe integer, greater at every start. */
  bdSeq: number;
  /** MQTT connection number within the run, from 1. */
  conn: number;
  /** Random per connection: 8 to 64 characters of base64url. */
  nonce: string;
  /** Order within the run: rises on every state the run signs, from 1. */
  seq: number;
  /** True only in a connection's will (its pre-signed offline): final for that connection. */
  will?: true;
  /** In an answer only: the challenger's random challenge (cm-liveness.ts). */
  challenge?: string;
  /** Digest of the group this call manager runs (group-floor.ts `groupDigest`); with `floor`. */
  group?: string;
  /** Its group list's floor (group-floor.ts); with `group`. */
  floor?: number;
}

/** A state message whose shape is right; its signature is not checked yet. */
export interface SignedCmState {
  /** The top-level `online` (must equal the body's once opened). */
  online: boolean;
  envelope: Envelope;
}

/** A state is a few hundred bytes; anything far larger is not one. */
export const MAX_STATE_BYTES = 4096;

const NONCE_RE = /^[A-Za-z0-9_-]{8,64}$/;
/** A challenge: 16 to 64 characters of base64url (the verifier sends 22: 16 random bytes). */
const CHALLENGE_RE = /^[A-Za-z0-9_-]{16,64}$/;
/** A group digest: 8 to 64 characters of base64url (group-floor.ts makes 22). */
const DIGEST_RE = /^[A-Za-z0-9_-]{8,64}$/;
/** The schemas of payload-schemas.ts decide after the hand checks (which give the words). */
const STATE = compile(CmStateSchema);
const STATE_BODY = compile(CmStateBodySchema);

/** Serialise a signed state: `online` first (for the humans reading it), then the envelope. */
export function encodeCmState(body: CmStateBody, sign: (body: unknown) => Envelope): string {
  const env = sign({
    cm: body.cm,
    online: body.online,
    bdSeq: body.bdSeq,
    conn: body.conn,
    nonce: body.nonce,
    seq: body.seq,
    ...(body.will === true ? { will: true } : {}),
    ...(body.challenge !== undefined ? { challenge: body.challenge } : {}),
    ...(body.group !== undefined && body.floor !== undefined ? { group: body.group, floor: body.floor } : {}),
  });
  return JSON.stringify({ online: body.online, kid: env.kid, body: env.body, sig: env.sig });
}

/**
 * Check a state message's shape: `online` a boolean and `kid`, `body`, `sig`
 * non-empty strings. Throws STATE_EMPTY (a zero-length message: a retained
 * state cleared), PAYLOAD_TOO_LARGE / PAYLOAD_INVALID (not a state), or
 * UNSIGNED (a state without its envelope, e.g. a bare `{"online":false}`).
 */
export function decodeSignedCmState(buf: Buffer): SignedCmState {
  if (buf.length === 0) throw new IpphoneError('state is empty (a retained state was cleared)', 'STATE_EMPTY');
  const o = parseJsonPayload(buf, MAX_STATE_BYTES);
  if (typeof o.online !== 'boolean') {
    throw new IpphoneError(`cm state: online must be true or false (got ${show(o.online)})`, 'PAYLOAD_INVALID', { field: 'online' });
  }
  for (const f of ['kid', 'body', 'sig'] as const) {
    if (typeof o[f] !== 'string' || o[f] === '') {
      throw new IpphoneError(`cm state is not signed: ${f} must be a non-empty string (got ${show(o[f])})`, 'UNSIGNED', { field: f });
    }
  }
  conform('cm state', STATE, o);
  return { online: o.online, envelope: { kid: o.kid as string, body: o.body as string, sig: o.sig as string } };
}

function field(name: string, value: unknown, expected: string): never {
  throw new IpphoneError(`cm state body: ${name} must be ${expected} (got ${show(value)})`, 'PAYLOAD_INVALID', { field: name });
}

const positive = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 1;

/**
 * Check verified body bytes: `{ cm, online, bdSeq, conn, nonce, seq }`, `will`,
 * `challenge` and `group` with `floor` when present; extra fields are ignored. A body without `seq`
 * (a call manager from before it) is refused: its states cannot be ordered
 * within a run, so any of them could be replayed. Throws PAYLOAD_INVALID.
 */
export function parseCmStateBody(bytes: Buffer): CmStateBody {
  let o: Record<string, unknown>;
  try {
    o = parseJsonPayload(bytes, MAX_STATE_BYTES);
  } catch (err) {
    const e = err as IpphoneError;
    throw new IpphoneError(`cm state body: ${e.message}`, 'PAYLOAD_INVALID');
  }
  if (!isValidId(o.cm)) field('cm', o.cm, 'a call manager id');
  if (typeof o.online !== 'boolean') field('online', o.online, 'true or false');
  if (!positive(o.bdSeq)) field('bdSeq', o.bdSeq, 'a positive integer');
  if (!positive(o.conn)) field('conn', o.conn, 'a positive integer');
  if (typeof o.nonce !== 'string' || !NONCE_RE.test(o.nonce)) field('nonce', o.nonce, '8 to 64 characters of base64url');
  if (!positive(o.seq)) field('seq', o.seq, 'a positive integer (the order of the state within its run)');
  if (o.will !== undefined && !(o.will === true && o.online === false)) field('will', o.will, 'true in an offline, or absent');
  if (o.challenge !== undefined && (typeof o.challenge !== 'string' || !CHALLENGE_RE.test(o.challenge))) field('challenge', o.challenge, '16 to 64 characters of base64url');
  if (o.will === true && o.challenge !== undefined) field('challenge', o.challenge, 'absent in a will');
  if (o.group !== undefined || o.floor !== undefined) {
    if (typeof o.group !== 'string' || !DIGEST_RE.test(o.group)) field('group', o.group, '8 to 64 characters of base64url, with floor');
    if (!positive(o.floor)) field('floor', o.floor, 'a positive integer, with group');
  }
  conform('cm state body', STATE_BODY, o);
  return {
    cm: o.cm,
    online: o.online,
    bdSeq: o.bdSeq,
    conn: o.conn,
    nonce: o.nonce,
    seq: o.seq,
    ...(o.will === true ? { will: true as const } : {}),
    ...(typeof o.challenge === 'string' ? { challenge: o.challenge } : {}),
    ...(typeof o.group === 'string' ? { group: o.group, floor: o.floor as number } : {}),
  };
}

/** The `P/cm/{cmId}/challenge/{from}` payload: `{ challenge }`, random per challenge. */
export interface CmChallenge {
  challenge: string;
}

/** A challenge is a few dozen bytes. */
const MAX_CHALLENGE_BYTES = 256;
const CHALLENGE = compile(CmChallengeSchema);

export function encodeCmChallenge(challenge: string): string {
  return JSON.stringify({ challenge });
}

/** Check a challenge message. Throws PAYLOAD_TOO_LARGE / PAYLOAD_INVALID. */
export function decodeCmChallenge(buf: Buffer): CmChallenge {
  const o = parseJsonPayload(buf, MAX_CHALLENGE_BYTES);
  if (typeof o.challenge !== 'string' || !CHALLENGE_RE.test(o.challenge)) {
    throw new IpphoneError(`cm challenge: challenge must be 16 to 64 characters of base64url (got ${show(o.challenge)})`, 'PAYLOAD_INVALID', { field: 'challenge' });
  }
  conform('cm challenge', CHALLENGE, o);
  return { challenge: o.challenge };
}
