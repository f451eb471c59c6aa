import { Type, type Static, type TSchema } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { show, validatePointerList } from '../protocol/pointers.js';
import { DEFAULT_PREFIX } from '../protocol/topics.js';
import { markDerived } from './merge.js';
import { credentialFileProblems, credentialSchema, credentialShapeProblems } from './mqtt-credentials.js';
import { sipPasswordFileProblems } from './sip-credentials.js';
import { configInvalid, ID_PATTERN, LOG_LEVELS, PREFIX_PATTERN, readJsonFile, schemaProblems, structureProblems, trustKeyProblems, type Defaulted } from './problems.js';

/**
 * The agent config (shared/CONTRACT.md, "Agent config"): one TypeBox source
 * for the TS type, the shipped JSON Schema (schema/agent-config.schema.json)
 * and validation. Defaults are production values. Unknown fields at the top
 * level and inside the sections are refused, so a typo never passes silently;
 * pointer entries tolerate extra fields (a newer sender may add some).
 */

/** An optional section whose fields all default; `{}` lets TypeBox fill them in. */
function section<T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) {
  return Type.Optional(Type.Object(props, { default: {}, additionalProperties: false, description }));
}

/**
 * Where the agent publishes its keep-alives. `shared`: the contract's
 * `P/cm/{cmId}/keepalive`, one topic for every phone of that call manager.
 * `per-phone`: `P/cm/{cmId}/keepalive/{phoneId}`, which a broker ACL can
 * restrict to the phone's own identity (mosquitto `pattern write
 * …/keepalive/%u`), and whose id the call manager trusts over the payload's.
 * `auto` (default): `per-phone` when the connection carries an identity
 * (`mqtt.cert` or `mqtt.username` set), else `shared`.
 */
export const KeepaliveTopicSchema = Type.Union([Type.Literal('auto'), Type.Literal('shared'), Type.Literal('per-phone')], {
  default: 'auto',
  description:
    'keep-alive topic: "shared" = P/cm/{cmId}/keepalive (the contract’s), "per-phone" = P/cm/{cmId}/keepalive/{phoneId} (ACL-friendly: the CM trusts the topic’s phone id), "auto" = per-phone when mqtt.cert or mqtt.username is set, else shared',
});

/** Log level names of pino, including `silent`. */
export const LogLevelSchema = Type.Union(
  LOG_LEVELS.map((l) => Type.Literal(l)),
  { default: 'info', description: 'pino log level' },
);

export const PointerSchema = Type.Object(
  {
    id: Type.String({ pattern: ID_PATTERN, description: 'call manager id' }),
    broker: Type.String({ pattern: '^(mqtt|mqtts|ws|wss)://', description: 'broker URL: mqtt:, mqtts:, ws: or wss:' }),
    services: Type.String({ pattern: '^https?://', description: 'services page URL: http: or https:' }),
    sip: Type.Optional(Type.String({ pattern: '^[Ss][Ii][Pp]:', description: 'SIP registrar of this call manager, e.g. sip:127.0.0.1:5061;transport=tcp' })),
  },
  { description: 'one call manager; extra fields are tolerated' },
);

/**
 * The phone's SIP user agent (issue 11): absent, the phone has none and behaves as without SIP.
 * `ctrl` is baresip's `ctrl_tcp_listen` address; `user` the phone's SIP user part (its number).
 */
export const SipSchema = Type.Object(
  {
    driver: Type.Literal('baresip', { description: 'the SIP user agent: "baresip" (its ctrl_tcp socket)' }),
    ctrl: Type.String({ pattern: '^(\\[[0-9A-Fa-f:.]+\\]|[A-Za-z0-9.-]+):[0-9]{1,5}$', description: 'HOST:PORT of the user agent’s control socket, e.g. 127.0.0.1:4444' }),
    user: Type.String({ pattern: '^[A-Za-z0-9._~+-]{1,64}$', description: 'the phone’s SIP user part (its number), e.g. 1001' }),
    regintS: Type.Optional(Type.Integer({ default: 120, minimum: 60, maximum: 600, description: 'seconds between REGISTER refreshes' })),
    registerTimeoutMs: Type.Optional(
      Type.Integer({ default: 4000, minimum: 100, maximum: 60000, description: 'ms a new registration may take before that pointer counts as failed' }),
    ),
    passwordFile: Type.Optional(
      Type.String({ minLength: 1, description: 'file whose first line is the SIP digest password (read at start; never logged or published); absent = no credentials' }),
    ),
    authUser: Type.Optional(Type.String({ pattern: '^[A-Za-z0-9._~+@-]{1,128}$', description: 'digest authentication user name; default the user part (`user`)' })),
    authRetryMs: Type.Optional(
      Type.Integer({ default: 30000, minimum: 1000, maximum: 3600000, description: 'ms before trying again after the registrar refused the credentials; doubles per refusal up to 10 minutes' }),
    ),
  },
  { additionalProperties: false, description: 'the phone’s SIP user agent; absent = no SIP' },
);

export const AgentConfigSchema = Type.Object(
  {
    phoneId: Type.String({ pattern: ID_PATTERN, description: 'this phone’s id (a topic level)' }),
    pointers: Type.Array(PointerSchema, {
      minItems: 1,
      maxItems: 16,
      description: 'call managers in priority order; [0] is the primary; unique ids',
    }),
    keepalive: section(
      {
        intervalMs: Type.Optional(Type.Integer({ default: 5000, minimum: 10, maximum: 600000, description: 'ms between keep-alives (10 ms is for soak tests; production uses seconds)' })),
        missLimit: Type.Optional(Type.Integer({ default: 3, minimum: 1, maximum: 100, description: 'missing acks in a row that mean the CM is lost' })),
        ackTimeoutMs: Type.Optional(
          Type.Integer({ minimum: 1, description: 'ms to wait for an ack; default max(100, round(intervalMs × 0.15)); must be < intervalMs' }),
        ),
        topic: Type.Optional(KeepaliveTopicSchema),
      },
      'keep-alives to the home call manager',
    ),
    fallback: section(
      { holdMs: Type.Optional(Type.Integer({ default: 120000, minimum: 0, maximum: 86400000, description: 'ms a higher CM must be healthy before returning to it' })) },
      'return to a higher pointer',
    ),
    services: section(
      {
        timeoutMs: Type.Optional(Type.Integer({ default: 5000, minimum: 100, maximum: 120000, description: 'ms before a services fetch counts as timed out' })),
        refreshMs: Type.Optional(Type.Integer({ default: 300000, minimum: 1000, maximum: 86400000, description: 'ms between services page refreshes' })),
      },
      'services page fetching',
    ),
    remoteConfig: section(
      {
        confirmMs: Type.Optional(
          Type.Integer({ default: 60000, minimum: 1000, maximum: 600000, description: 'ms a remote config change has to leave the phone homed; otherwise the phone rolls it back' }),
        ),
      },
      'remote reconfiguration (commit-confirmed)',
    ),
    topicPrefix: Type.Optional(Type.String({ default: DEFAULT_PREFIX, minLength: 1, pattern: PREFIX_PATTERN, description: 'MQTT topic prefix' })),
    stateDir: Type.Optional(Type.String({ default: '/var/lib/ipphone-agent', minLength: 1, description: 'directory of the flash state' })),
    board: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Null()], { default: null, description: 'board profile file; null = headless' }),
    ),
    trust: section(
      {
        requireSigned: Type.Optional(Type.Boolean({ default: true, description: 'refuse unsigned pointer lists and config changes' })),
        keys: Type.Optional(
          Type.Record(Type.String(), Type.String(), {
            default: {},
            description: 'trusted Ed25519 public keys by key id: SPKI PEM or base64 of the raw 32 bytes',
          }),
        ),
      },
      'keys trusted for signed envelopes',
    ),
    mqtt: section(
      {
        ...credentialSchema(),
        protocolVersion: Type.Optional(Type.Union([Type.Literal(4), Type.Literal(5)], { default: 5, description: 'MQTT 3.1.1 (4) or 5' })),
        connectTimeoutMs: Type.Optional(Type.Integer({ default: 5000, minimum: 100, maximum: 120000, description: 'ms to wait for CONNACK' })),
        keepaliveSec: Type.Optional(Type.Integer({ default: 10, minimum: 1, maximum: 65535, description: 'MQTT keep-alive, seconds' })),
        backoff: Type.Optional(
          Type.Object(
            {
              baseMs: Type.Optional(Type.Integer({ default: 1000, minimum: 1, maximum: 600000, description: 'first reconnect delay, ms' })),
              maxMs: Type.Optional(Type.Integer({ default: 60000, minimum: 1, maximum: 3600000, description: 'largest reconnect delay, ms; ≥ baseMs' })),
            },
            { default: {}, additionalProperties: false, description: 'reconnect backoff' },
          ),
        ),
        maxQueue: Type.Optional(Type.Integer({ default: 100, minimum: 0, maximum: 100000, description: 'messages queued while offline' })),
      },
      'MQTT connection',
    ),
    log: section({ level: Type.Optional(LogLevelSchema) }, 'logging'),
    sip: Type.Optional(SipSchema),
  },
  { additionalProperties: false },
);

/** The agent config as written (defaults not yet filled). */
export type AgentConfigInput = Static<typeof AgentConfigSchema>;
/** The agent config with every default filled in (including `keepalive.ackTimeoutMs`). */
export type AgentConfig = Defaulted<AgentConfigInput>;

/**
 * `max(100, round(intervalMs × 0.15))`: the ack timeout when none is
 * configured, kept below `intervalMs` (only `intervalMs` = 100 needs that).
 * A hung call manager is declared lost at worst `missLimit × intervalMs +
 * ackTimeoutMs` after it stopped (3.15 s at 1 s × 3); 15 % of the interval is
 * still many times a LAN round trip and a loaded call manager's answer time.
 */
export function defaultAckTimeoutMs(intervalMs: number): number {
  return Math.max(1, Math.min(Math.max(100, Math.round(intervalMs * 0.15)), intervalMs - 1));
}

const isInt = (v: unknown): v is number => Number.isSafeInteger(v);

/** Checks across fields, or that a schema cannot say (key parsing). Runs on the defaulted value. */
function crossProblems(c: Record<string, any>): string[] {
  const problems: string[] = [];
  problems.push(...trustKeyProblems(c.trust?.keys));
  const ka = c.keepalive;
  if (isInt(ka?.intervalMs) && isInt(ka?.ackTimeoutMs) && ka.ackTimeoutMs >= ka.intervalMs) {
    problems.push(`keepalive/ackTimeoutMs: must be less than keepalive/intervalMs (${ka.intervalMs}) (got ${ka.ackTimeoutMs})`);
  }
  problems.push(...credentialShapeProblems(c.mqtt));
  const ctrl = typeof c.sip?.ctrl === 'string' ? /:([0-9]+)$/.exec(c.sip.ctrl) : null;
  if (ctrl !== null && (Number(ctrl[1]) < 1 || Number(ctrl[1]) > 65535)) problems.push(`sip/ctrl: port must be 1 to 65535 (got ${show(c.sip.ctrl)})`);
  const bo = c.mqtt?.backoff;
  if (isInt(bo?.baseMs) && isInt(bo?.maxMs) && bo.maxMs < bo.baseMs) {
    problems.push(`mqtt/backoff/maxMs: must be ≥ mqtt/backoff/baseMs (${bo.baseMs}) (got ${bo.maxMs})`);
  }
  return problems;
}

/** Fill defaults into a copy of `raw`; `raw` is never changed. */
function withDefaults(schema: TSchema, raw: Record<string, unknown>): Record<string, any> {
  return Value.Default(schema, Value.Clone(raw)) as Record<string, any>;
}

/**
 * Validate an untrusted agent config and fill its defaults. Reports every
 * problem as `path: what is wrong`, e.g.
 * `pointers/1/broker: scheme must be mqtt:, mqtts:, ws: or wss: (got "http:")`.
 */
export function validateAgentConfig(raw: unknown): { ok: true; config: AgentConfig } | { ok: false; problems: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, problems: [`(root): must be a JSON object (got ${show(raw)})`] };
  }
  const structure = structureProblems(raw);
  if (structure.length > 0) return { ok: false, problems: structure };
  const c = withDefaults(AgentConfigSchema, raw as Record<string, unknown>);
  // Pointer lists have their own checker (shared with signed bodies); drop the schema's view of them.
  const problems = schemaProblems(AgentConfigSchema, c, (p) => p === '/pointers' || p.startsWith('/pointers/'));
  if (c.pointers === undefined) problems.push('pointers: is required');
  else problems.push(...validatePointerList(c.pointers, { path: 'pointers' }));
  problems.push(...crossProblems(c));
  if (problems.length > 0) return { ok: false, problems };
  if (c.keepalive.ackTimeoutMs === undefined) {
    c.keepalive.ackTimeoutMs = defaultAckTimeoutMs(c.keepalive.intervalMs as number);
    // Derived, not given: a config merged over this one (a remote change, the saved overlay at
    // boot) recomputes it from its own interval instead of keeping this one (issue #10).
    markDerived(c.keepalive, ['ackTimeoutMs']);
  }
  return { ok: true, config: c as AgentConfig };
}

/**
 * Read, validate and default an agent config file, and check the files its
 * `mqtt` section names (certificates, key, password file; see
 * {@link credentialFileProblems}). Throws CONFIG_INVALID whose message is
 * every problem, one per line (context `{ problems, path }`); an unreadable
 * file or bad JSON is a problem too.
 */
export function loadAgentConfigFile(path: string): AgentConfig {
  const read = readJsonFile(path);
  if (!read.ok) throw configInvalid(path, read.problems);
  return checkedAgentConfig(path, read.value);
}

/** {@link validateAgentConfig} plus the `mqtt` files; throws CONFIG_INVALID naming `path` (the fleet shares it). */
export function checkedAgentConfig(path: string, raw: unknown): AgentConfig {
  const result = validateAgentConfig(raw);
  const problems = result.ok ? [] : [...result.problems];
  problems.push(...credentialFileProblems((raw as { mqtt?: unknown } | null)?.mqtt));
  problems.push(...sipPasswordFileProblems((raw as { sip?: unknown } | null)?.sip));
  if (!result.ok || problems.length > 0) throw configInvalid(path, problems);
  return result.config;
}
