import { Type, type TSchema } from '@sinclair/typebox';
import { TypeCompiler, type TypeCheck } from '@sinclair/typebox/compiler';
import { IpphoneError } from '../lib/errors.js';
import { MAX_POINTERS } from './pointers.js';
import { POINTER_REASONS, REHOME_REASONS } from './types.js';

/**
 * TypeBox schemas of every MQTT payload (shared/CONTRACT.md, "MQTT topics").
 * One source for two readers: the codecs (codec.ts, cm-state.ts) refuse what
 * a schema refuses ({@link conform}), and asyncapi-gen.ts writes the same
 * schemas into asyncapi.yaml, so the document cannot drift from the code.
 *
 * Objects leave `additionalProperties` open on purpose: a newer sender may add
 * fields and older receivers ignore them. What JSON Schema cannot say (unique
 * pointer ids, parseable URLs, SIP URI grammar, "pointers or pointersVersion"
 * as a check TypeBox runs) the codecs still check by hand.
 */

const MAX_SAFE = Number.MAX_SAFE_INTEGER;

/** An id valid as one topic level (topics.ts `isValidId`). */
export const IdSchema = Type.String({ pattern: '^[A-Za-z0-9._-]{1,64}$', description: 'id of 1 to 64 characters from A-Z a-z 0-9 . _ -' });
const Count = (description: string) => Type.Integer({ minimum: 0, maximum: MAX_SAFE, description });
const Positive = (description: string) => Type.Integer({ minimum: 1, maximum: MAX_SAFE, description });
const NonEmpty = (description: string) => Type.String({ minLength: 1, description });
const IdOrNull = (description: string) => Type.Union([IdSchema, Type.Null()], { description });

/** `{ kid, body, sig }`: a signed envelope (envelope.ts). */
export const EnvelopeSchema = Type.Object(
  {
    kid: NonEmpty('id of the signing key, looked up in the receiver\'s trust.keys'),
    body: NonEmpty('base64 of the body\'s UTF-8 JSON bytes'),
    sig: NonEmpty('base64 Ed25519 signature of exactly the body bytes'),
  },
  { $id: 'Envelope', title: 'Signed envelope' },
);

/** `P/cm/{cmId}/keepalive` and `P/cm/{cmId}/keepalive/{phoneId}`. */
export const KeepaliveSchema = Type.Object(
  {
    phone: IdSchema,
    seq: Count('sequence number, echoed in the ack'),
    pointersVersion: Count('version of the pointer list the phone holds'),
    busy: Type.Boolean({ description: 'a call is in progress (the call manager does not move a busy phone)' }),
    probe: Type.Optional(Type.Boolean({ description: 'extension: a health probe from a phone homed elsewhere; answered, not counted as homed' })),
    prev: Type.Optional(Type.Union([Type.String(), Type.Null()], { description: 'extension: the call manager the phone was homed to before this one' })),
    intervalMs: Type.Optional(Positive('extension: the phone\'s keep-alive interval in ms')),
  },
  { $id: 'Keepalive', title: 'Keep-alive' },
);

/** `P/phone/{phoneId}/ack`. */
export const AckSchema = Type.Object(
  {
    cm: IdSchema,
    seq: Count('the keep-alive\'s seq'),
    pointers: Type.Optional(Type.Ref(EnvelopeSchema, { description: 'the phone\'s current list, signed (body: PointersBody)' })),
    pointersVersion: Type.Optional(Count('sent alone when the phone already holds this version')),
  },
  // The codec checks this by hand too (TypeBox does not run anyOf on an object).
  { $id: 'Ack', title: 'Keep-alive ack', anyOf: [{ required: ['pointers'] }, { required: ['pointersVersion'] }] },
);

/** One pointer of a list (pointers.ts validates URLs and uniqueness beyond this). */
export const PointerSchema = Type.Object(
  {
    id: IdSchema,
    broker: Type.String({ description: 'mqtt:, mqtts:, ws: or wss: URL of the call manager\'s broker' }),
    services: Type.String({ description: 'http: or https: URL of the call manager\'s services page' }),
    sip: Type.Optional(Type.String({ description: 'SIP registrar, sip:HOST:PORT;transport=tcp' })),
  },
  { $id: 'Pointer', title: 'Pointer' },
);

/** Most ids in a pointer body's `owns` (a call-manager group has at most 64 members). */
export const MAX_OWNS = 256;

const bodyCommon = {
  version: Positive('strictly increasing per phone; anything not newer than the held version is refused'),
  expires: Type.Optional(Type.Number({ description: 'ms since the epoch after which the body is refused' })),
  phone: Type.Optional(Type.String({ description: 'the phone the body is meant for; refused by any other' })),
};

/** Body of the signed envelope on `P/phone/{phoneId}/pointers` (and in an ack). */
export const PointersBodySchema = Type.Object(
  {
    ...bodyCommon,
    reason: Type.Union(POINTER_REASONS.map((r) => Type.Literal(r))),
    list: Type.Array(Type.Ref(PointerSchema), { minItems: 1, maxItems: MAX_POINTERS, description: 'the first is the primary; ids unique' }),
    owns: Type.Optional(Type.Array(IdSchema, { maxItems: MAX_OWNS, description: 'extension: ids of the call-manager group the list orders' })),
    rebase: Type.Optional(Type.Integer({ minimum: 1, description: 'extension: the held version this lower-versioned list replaces (a signed, phone-bound, short-lived rebase; ipphone-admin pointers --rebase)' })),
  },
  { $id: 'PointersBody', title: 'Pointer list body' },
);

/** Body of the signed envelope on `P/phone/{phoneId}/config`. */
export const ConfigBodySchema = Type.Object(
  { ...bodyCommon, config: Type.Record(Type.String(), Type.Unknown(), { description: 'a partial agent config merged over the current one' }) },
  { $id: 'ConfigBody', title: 'Config change body' },
);

/** `P/phone/{phoneId}/config/result`. */
export const ConfigResultSchema = Type.Object(
  {
    version: Count('the config body\'s version'),
    ok: Type.Boolean(),
    error: Type.Optional(Type.String({ description: 'what was wrong, in words' })),
  },
  { $id: 'ConfigResult', title: 'Config result' },
);

/** Call phases of a phone's SIP user agent (agent/call-control.ts). */
export const CALL_PHASES = ['idle', 'dialing', 'calling', 'ringing', 'connected'] as const;

/** Why a phone is not registered at its home's registrar: status `sip.reason` (agent/sip-registration.ts). */
export const SIP_UNREGISTERED_REASONS = ['registering', 'sip-auth-failed', 'ua-down', 'no-registrar'] as const;

const SipStatusSchema = Type.Object(
  {
    registrar: IdOrNull('the call manager the phone is registered at'),
    call: Type.Union(CALL_PHASES.map((p) => Type.Literal(p))),
    reason: Type.Optional(
      Type.Union([Type.Union(SIP_UNREGISTERED_REASONS.map((r) => Type.Literal(r))), Type.Null()], {
        description: 'why the phone is not registered at its home, or null when it is (sip-auth-failed: the registrar refused its credentials)',
      }),
    ),
  },
  { description: 'present when the phone has a SIP user agent' },
);

/** `P/phone/{phoneId}/status`: a live status, or the will `{ online: false }`. */
export const StatusSchema = Type.Union(
  [
    Type.Object(
      {
        online: Type.Boolean(),
        home: IdOrNull('the call manager the phone is homed to'),
        services: IdOrNull('the pointer whose services page the phone shows'),
        state: Type.String({ description: 'phase of the failover machine' }),
        pointersVersion: Count('version of the held pointer list'),
        configVersion: Count('version of the held config overlay'),
        rehomes: Count('completed rehomes since start'),
        sip: Type.Optional(SipStatusSchema),
      },
      { title: 'Live status' },
    ),
    Type.Object({ online: Type.Literal(false), state: Type.Optional(Type.Never()) }, { title: 'Will (offline)' }),
  ],
  { $id: 'Status', title: 'Phone status' },
);

/** Events a phone publishes on `P/phone/{phoneId}/event`; receivers ignore types they do not know. */
export const RehomedEventSchema = Type.Object(
  {
    type: Type.Literal('rehomed'),
    from: IdOrNull('the previous home'),
    to: IdSchema,
    reason: Type.Union(REHOME_REASONS.map((r) => Type.Literal(r))),
    detectMs: Type.Number({ minimum: 0, description: 'ms from the last sign of life of the old home to detection' }),
    rehomeMs: Type.Number({ minimum: 0, description: 'ms from detection to the new home\'s first ack' }),
    scope: Type.Optional(Type.Literal('services', { description: 'only the services page moved' })),
  },
  { $id: 'RehomedEvent', title: 'rehomed' },
);
export const RejectedEventSchema = Type.Object(
  {
    type: Type.Literal('rejected'),
    topic: Type.String({ description: 'the topic of the refused message' }),
    error: Type.String({ description: 'why, in words' }),
    code: Type.Optional(Type.String({ description: 'error code, e.g. SIGNATURE_INVALID' })),
  },
  { $id: 'RejectedEvent', title: 'rejected' },
);
export const HomedEventSchema = Type.Object(
  { type: Type.Literal('homed'), to: IdSchema, rehomeMs: Type.Number({ minimum: 0 }) },
  { $id: 'HomedEvent', title: 'homed (first home after start)' },
);
export const SipRegisteredEventSchema = Type.Object(
  { type: Type.Literal('sip-registered'), cm: IdSchema, ms: Type.Number({ minimum: 0, description: 'ms the REGISTER took' }) },
  { $id: 'SipRegisteredEvent', title: 'sip-registered' },
);
export const SipAuthFailedEventSchema = Type.Object(
  {
    type: Type.Literal('sip-auth-failed'),
    cm: IdSchema,
    reason: Type.String({ description: 'the registrar\'s answer, e.g. 401 Unauthorized' }),
    retryMs: Type.Number({ minimum: 0, description: 'ms until the phone tries again' }),
  },
  { $id: 'SipAuthFailedEvent', title: 'sip-auth-failed' },
);
export const EventSchema = Type.Union([Type.Ref(RehomedEventSchema), Type.Ref(RejectedEventSchema), Type.Ref(HomedEventSchema), Type.Ref(SipRegisteredEventSchema), Type.Ref(SipAuthFailedEventSchema)], {
  $id: 'Event',
  title: 'Phone event',
});

/** `P/cm/{cmId}/state`: a signed envelope with the top-level `online` (cm-state.ts). */
export const CmStateSchema = Type.Object(
  {
    online: Type.Boolean({ description: 'equals the signed body\'s online' }),
    kid: EnvelopeSchema.properties.kid,
    body: Type.String({ minLength: 1, description: 'base64 of the UTF-8 JSON of a CmStateBody' }),
    sig: EnvelopeSchema.properties.sig,
  },
  { $id: 'CmState', title: 'Signed call manager state' },
);

/** Nonce of a state body: random per connection. */
export const NONCE_PATTERN = '^[A-Za-z0-9_-]{8,64}$';

/** A group digest in a state body: base64url (group-floor.ts groupDigest). */
export const DIGEST_PATTERN = '^[A-Za-z0-9_-]{8,64}$';

/** A liveness challenge: random, base64url. */
export const CHALLENGE_PATTERN = '^[A-Za-z0-9_-]{16,64}$';

/** The signed body of a call manager state. */
export const CmStateBodySchema = Type.Object(
  {
    cm: IdSchema,
    online: Type.Boolean(),
    bdSeq: Positive('boot sequence of the call manager\'s run, greater at every start'),
    conn: Positive('MQTT connection number within the run, from 1'),
    nonce: Type.String({ pattern: NONCE_PATTERN, description: 'random per connection, base64url' }),
    seq: Positive('order of the state within its run: rises on every state the run signs; receivers take only what is strictly newer'),
    will: Type.Optional(Type.Literal(true, { description: 'only in a connection\'s will (its pre-signed offline): final for that connection' })),
    challenge: Type.Optional(Type.String({ pattern: CHALLENGE_PATTERN, description: 'only in an answer: the challenger\'s random challenge' })),
    group: Type.Optional(Type.String({ pattern: DIGEST_PATTERN, description: 'digest of the group the call manager runs (members, their order, brokers, services, SIP URIs, retired ids); always with floor' })),
    floor: Type.Optional(Positive('its group list\'s floor: a peer running the same group raises its own floor to a higher one; always with group')),
  },
  { $id: 'CmStateBody', title: 'Call manager state body' },
);

/** `P/cm/{cmId}/challenge/{from}`: a receiver asks the live call manager to sign its state with this random challenge. */
export const CmChallengeSchema = Type.Object(
  {
    challenge: Type.String({ pattern: CHALLENGE_PATTERN, description: 'random per challenge, base64url; the answer (P/cm/{cmId}/challenge/{from}/answer) is a signed state carrying it' }),
  },
  { $id: 'CmChallenge', title: 'Call manager liveness challenge' },
);

/** `P/cm/{cmId}/load`. */
export const LoadSchema = Type.Object(
  {
    phones: Count('phones homed'),
    capacity: Count('phones the call manager takes'),
    servicesRps: Type.Number({ minimum: 0, description: 'services requests per second' }),
    version: Type.Optional(Count('extension: highest pointer-list version issued or observed')),
  },
  { $id: 'Load', title: 'Call manager load' },
);

/** Every named schema, for `Type.Ref` resolution and for the AsyncAPI components. */
export const PAYLOAD_SCHEMAS: readonly TSchema[] = [
  EnvelopeSchema,
  KeepaliveSchema,
  AckSchema,
  PointerSchema,
  PointersBodySchema,
  ConfigBodySchema,
  ConfigResultSchema,
  StatusSchema,
  RehomedEventSchema,
  RejectedEventSchema,
  HomedEventSchema,
  SipRegisteredEventSchema,
  SipAuthFailedEventSchema,
  EventSchema,
  CmStateSchema,
  CmStateBodySchema,
  CmChallengeSchema,
  LoadSchema,
];

/** A schema compiled once (TypeBox's JIT check: no per-message compile or allocation). */
export function compile(schema: TSchema): TypeCheck<TSchema> {
  return TypeCompiler.Compile(schema, PAYLOAD_SCHEMAS.filter((s) => s !== schema));
}

/**
 * Refuse `value` with PAYLOAD_INVALID when the compiled schema does: the codecs
 * run their hand checks first (for the words), then this, so nothing a schema
 * refuses gets through even where a hand check missed it.
 */
export function conform(what: string, check: TypeCheck<TSchema>, value: unknown): void {
  if (check.Check(value)) return;
  const e = check.Errors(value).First();
  const field = e?.path.replace(/^\//, '') || '(payload)';
  throw new IpphoneError(`${what}: ${field} ${e?.message ?? 'does not match its schema'}`, 'PAYLOAD_INVALID', { field });
}
