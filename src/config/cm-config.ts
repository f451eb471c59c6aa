import { readFileSync } from 'node:fs';
import { Type, type Static } from '@sinclair/typebox';
import { Value } from '@sinclair/typebox/value';
import { errorMessage } from '../lib/errors.js';
import { createPublicKey } from 'node:crypto';
import { parsePrivateKey, parsePublicKey } from '../protocol/envelope.js';
import { BROKER_SCHEMES, show, urlProblems, validatePointerList } from '../protocol/pointers.js';
import { parseSipUri } from '../protocol/sip-uri.js';
import { DEFAULT_PREFIX } from '../protocol/topics.js';
import { LogLevelSchema } from './agent-config.js';
import { credentialFileProblems, credentialSchema, credentialShapeProblems } from './mqtt-credentials.js';
import { expandCmCredentialPaths } from './credentials-dir.js';
import { configInvalid, ID_PATTERN, PREFIX_PATTERN, readJsonFile, schemaProblems, structureProblems, trustKeyProblems, type Defaulted } from './problems.js';

/**
 * The call manager config (shared/CONTRACT.md, "Call manager config"): one
 * TypeBox source for the TS type, the shipped JSON Schema
 * (schema/cm-config.schema.json) and validation. Unknown fields at the top
 * level and inside sections are refused; group entries tolerate extras.
 */

/** Where a call manager keeps its boot sequence unless `stateDir` says otherwise (systemd `StateDirectory=ipphone-cm`). */
export const DEFAULT_CM_STATE_DIR = '/var/lib/ipphone-cm';

/** Shortest console token accepted (characters): 16 random characters are beyond guessing at the login's rate limit. */
export const CONSOLE_TOKEN_MIN = 16;
/** Longest console token accepted (characters). */
export const CONSOLE_TOKEN_MAX = 512;

/**
 * Read the operators' console token from `path` (`console.tokenFile`): the
 * file's text without surrounding whitespace, which must be
 * {@link CONSOLE_TOKEN_MIN}–{@link CONSOLE_TOKEN_MAX} printable ASCII
 * characters without spaces (it travels in an `Authorization` header and a
 * form). Returns the token or one line saying what is wrong; never the token
 * in that line.
 */
export function readConsoleToken(path: string): { ok: true; token: string } | { ok: false; problem: string } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, problem: `console/tokenFile: cannot read ${show(path)}: ${errorMessage(err)}` };
  }
  const token = text.trim();
  if (token === '') return { ok: false, problem: `console/tokenFile: ${show(path)} is empty (put a random token in it, e.g. openssl rand -hex 32)` };
  if (!/^[\x21-\x7e]+$/.test(token)) return { ok: false, problem: `console/tokenFile: ${show(path)} must hold one token of printable ASCII characters without spaces` };
  if (token.length < CONSOLE_TOKEN_MIN) return { ok: false, problem: `console/tokenFile: the token in ${show(path)} is too short (${token.length} characters; at least ${CONSOLE_TOKEN_MIN}, e.g. openssl rand -hex 32)` };
  if (token.length > CONSOLE_TOKEN_MAX) return { ok: false, problem: `console/tokenFile: the token in ${show(path)} is too long (at most ${CONSOLE_TOKEN_MAX} characters)` };
  return { ok: true, token };
}

/** Most call managers in one group. */
export const MAX_GROUP = 64;

function section<T extends Parameters<typeof Type.Object>[0]>(props: T, description: string) {
  return Type.Optional(Type.Object(props, { default: {}, additionalProperties: false, description }));
}

export const GroupMemberSchema = Type.Object(
  {
    id: Type.String({ pattern: ID_PATTERN, description: 'call manager id' }),
    broker: Type.String({ pattern: '^(mqtt|mqtts|ws|wss)://', description: 'broker URL the phones use for this CM' }),
    services: Type.String({ pattern: '^https?://', description: 'services page URL: http: or https:' }),
    capacity: Type.Integer({ minimum: 1, description: 'phones this call manager is sized for' }),
    sip: Type.Optional(
      Type.String({ pattern: '^[Ss][Ii][Pp]:', description: 'SIP registrar of this call manager (sip:HOST:PORT;transport=tcp), carried in the pointer lists' }),
    ),
  },
  { description: 'one call manager of the group; extra fields are tolerated' },
);

export const CmConfigSchema = Type.Object(
  {
    cmId: Type.String({ pattern: ID_PATTERN, description: 'this call manager’s id; must be in group' }),
    broker: Type.String({ pattern: '^(mqtt|mqtts|ws|wss)://', description: 'broker URL this call manager connects to' }),
    http: section(
      {
        host: Type.Optional(Type.String({ default: '127.0.0.1', minLength: 1, description: 'address the services/health server listens on' })),
        port: Type.Optional(Type.Integer({ default: 8080, minimum: 0, maximum: 65535, description: 'TCP port; 0 = any free port' })),
      },
      'services, health and metrics HTTP server',
    ),
    console: section(
      {
        enabled: Type.Optional(
          Type.Boolean({ default: true, description: 'follow phones’ status and event topics for the read-only operator console (GET /, /console/events, /console/phone) and ipphone_cm_rehomes_total; false = no subscription, and the console paths answer 404' }),
        ),
        tokenFile: Type.Optional(
          Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
            default: null,
            description: `file holding the operators’ console token (read at start; surrounding whitespace ignored; ${CONSOLE_TOKEN_MIN}-${CONSOLE_TOKEN_MAX} printable ASCII characters, no spaces); null = the console serves no group data (404). Requests need Authorization: Bearer TOKEN or the session cookie of POST /console/login`,
          }),
        ),
      },
      'operator console',
    ),
    group: Type.Array(GroupMemberSchema, {
      minItems: 1,
      maxItems: MAX_GROUP,
      description: 'every call manager of the group, this one included, in default priority order; unique ids',
    }),
    retired: Type.Optional(
      Type.Array(Type.String({ pattern: ID_PATTERN }), {
        default: [],
        maxItems: MAX_GROUP,
        description:
          'ids of call managers removed from this group (not in group): the lists this call manager signs name them in owns, so every phone drops their pointers at its next ack. Name only former members: a remote site named here would be dropped too',
      }),
    ),
    rebalance: section(
      {
        enabled: Type.Optional(Type.Boolean({ default: true, description: 'move idle phones to even out load' })),
        periodMs: Type.Optional(Type.Integer({ default: 5000, minimum: 100, maximum: 3600000, description: 'ms between load checks' })),
        threshold: Type.Optional(Type.Number({ default: 0.1, minimum: 0, maximum: 1, description: 'largest tolerated load difference (phones ÷ capacity)' })),
        maxMovesPerSec: Type.Optional(Type.Integer({ default: 100, minimum: 1, maximum: 100000, description: 'most phones moved per second' })),
        cooldownMs: Type.Optional(Type.Integer({ minimum: 0, maximum: 86400000, description: 'ms a moved phone is left alone; default 2 × periodMs' })),
      },
      'load rebalancing',
    ),
    signingKey: Type.String({ minLength: 1, description: 'PKCS#8 PEM Ed25519 private key file that signs pointer lists' }),
    keyId: Type.String({ pattern: ID_PATTERN, description: 'key id (kid) phones know the signing key by' }),
    topicPrefix: Type.Optional(Type.String({ default: DEFAULT_PREFIX, minLength: 1, pattern: PREFIX_PATTERN, description: 'MQTT topic prefix' })),
    mqtt: section(
      {
        ...credentialSchema(),
        protocolVersion: Type.Optional(Type.Union([Type.Literal(4), Type.Literal(5)], { default: 5, description: 'MQTT 3.1.1 (4) or 5' })),
      },
      'MQTT connection: the credentials this call manager and its links to the group’s other brokers give brokers',
    ),
    keepalive: section(
      {
        phoneIntervalMs: Type.Optional(
          Type.Integer({ default: 5000, minimum: 10, maximum: 600000, description: 'phones’ keep-alive interval when a keep-alive does not carry intervalMs' }),
        ),
      },
      'keep-alive responder',
    ),
    stateDir: Type.Optional(
      Type.Union([Type.String({ minLength: 1 }), Type.Null()], {
        default: null,
        description: `directory for the boot sequence (bdSeq) of the signed state; null = ${DEFAULT_CM_STATE_DIR}, and when that is not usable the sequence is taken from the clock alone (a warning); a directory given here must be usable or the call manager does not start`,
      }),
    ),
    trust: section(
      {
        keys: Type.Optional(
          Type.Record(Type.String(), Type.String(), {
            default: {},
            description: 'Ed25519 public keys (SPKI PEM or base64 of the raw 32 bytes) by key id, trusted for peers’ signed state; this call manager’s own key is always trusted under keyId',
          }),
        ),
      },
      'keys trusted for peer call managers’ signed state',
    ),
    pointersVersion: Type.Optional(Type.Integer({ default: 1, minimum: 1, description: 'version of the all-healthy group pointer list' })),
    log: section({ level: Type.Optional(LogLevelSchema) }, 'logging'),
    sip: Type.Optional(
      Type.Object(
        {
          registrar: Type.String({ pattern: '^[Ss][Ii][Pp]:', description: 'this call manager’s SIP server, probed with OPTIONS over TCP: sip:HOST:PORT;transport=tcp' }),
          probeMs: Type.Optional(Type.Integer({ default: 1000, minimum: 50, maximum: 600000, description: 'ms between OPTIONS probes; a probe unanswered within probeMs is a miss' })),
          missLimit: Type.Optional(Type.Integer({ default: 3, minimum: 1, maximum: 100, description: 'misses in a row after which this call manager reports itself offline' })),
        },
        { additionalProperties: false, description: 'the SIP server paired with this call manager: while it does not answer, the call manager reports itself offline' },
      ),
    ),
  },
  { additionalProperties: false },
);

/** The call manager config as written (defaults not yet filled). */
export type CmConfigInput = Static<typeof CmConfigSchema>;
/** The call manager config with every default filled in (including `rebalance.cooldownMs`). */
export type CmConfig = Defaulted<CmConfigInput>;

/** Group entry errors the shared pointer-list checker reports itself. */
const GROUP_POINTER = /^\/group(\/\d+(\/(id|broker|services|sip))?)?$/;

/**
 * Problems of the `sip` section beyond its schema: `registrar` must be a SIP
 * URI with `transport=tcp` (the OPTIONS probe speaks TCP only: a dead UDP
 * server is silence, not an error, and takes far longer to notice).
 */
function sipSectionProblems(sip: unknown): string[] {
  if (typeof sip !== 'object' || sip === null) return [];
  const registrar = (sip as { registrar?: unknown }).registrar;
  if (registrar === undefined) return ['sip/registrar: is required (the SIP server to probe, e.g. "sip:127.0.0.1:5061;transport=tcp")'];
  const r = parseSipUri(registrar, 'sip/registrar');
  if (!r.ok) return [r.problem];
  if (r.uri.transport !== 'tcp') return [`sip/registrar: must say ;transport=tcp — the OPTIONS probe speaks TCP only (got ${show(registrar)})`];
  return [];
}

/**
 * Validate an untrusted call manager config and fill its defaults. Reports
 * every problem as `path: what is wrong`. Does not read `signingKey`
 * ({@link loadCmConfigFile} does).
 */
export function validateCmConfig(raw: unknown): { ok: true; config: CmConfig } | { ok: false; problems: string[] } {
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    return { ok: false, problems: [`(root): must be a JSON object (got ${show(raw)})`] };
  }
  const structure = structureProblems(raw);
  if (structure.length > 0) return { ok: false, problems: structure };
  const c = Value.Default(CmConfigSchema, Value.Clone(raw)) as Record<string, any>;
  const problems = schemaProblems(CmConfigSchema, c, (p) => p === '/broker' || p === '/sip/registrar' || GROUP_POINTER.test(p));
  if (c.broker === undefined) problems.push('broker: is required');
  else problems.push(...urlProblems(c.broker, 'broker', BROKER_SCHEMES));
  if (c.group === undefined) {
    problems.push('group: is required');
  } else {
    const groupProblems = validatePointerList(c.group, { path: 'group', max: MAX_GROUP });
    problems.push(...groupProblems);
    if (groupProblems.length === 0 && typeof c.cmId === 'string' && !(c.group as { id: string }[]).some((m) => m.id === c.cmId)) {
      problems.push(`group: must include this call manager's cmId ${show(c.cmId)}`);
    }
    problems.push(...retiredProblems(c.retired, c.group));
  }
  problems.push(...credentialShapeProblems(c.mqtt));
  problems.push(...trustKeyProblems(c.trust?.keys));
  problems.push(...sipSectionProblems(c.sip));
  if (problems.length > 0) return { ok: false, problems };
  c.rebalance.cooldownMs ??= 2 * (c.rebalance.periodMs as number);
  return { ok: true, config: c as CmConfig };
}

/**
 * Read, validate and default a call manager config file, and check that
 * `signingKey` (resolved against the working directory) is a readable
 * Ed25519 PKCS#8 PEM key, that the files `mqtt` names are usable
 * (`credentialFileProblems`) and that `console.tokenFile` holds a usable
 * token ({@link readConsoleToken}). Paths written `${CREDENTIALS_DIRECTORY}/NAME`
 * are read from `env.CREDENTIALS_DIRECTORY` (credentials-dir.ts: the unit's
 * `LoadCredential=`). Throws CONFIG_INVALID whose message is every
 * problem, one per line (context `{ problems, path }`).
 */
export function loadCmConfigFile(path: string, env: NodeJS.ProcessEnv = process.env): CmConfig {
  const file = readJsonFile(path);
  if (!file.ok) throw configInvalid(path, file.problems);
  // `${CREDENTIALS_DIRECTORY}/NAME` paths (the unit's LoadCredential=) become real paths first.
  const expanded = expandCmCredentialPaths(file.value, env);
  const read = { ok: true as const, value: expanded.value };
  const result = validateCmConfig(read.value);
  const problems = [...expanded.problems, ...(result.ok ? [] : result.problems)];
  const keyPath: unknown = (read.value as { signingKey?: unknown } | null)?.signingKey;
  if (typeof keyPath === 'string' && keyPath !== '') {
    try {
      const own = createPublicKey(parsePrivateKey(readFileSync(keyPath, 'utf8')));
      const kid = result.ok ? result.config.keyId : undefined;
      const listed = kid !== undefined ? result.ok && result.config.trust.keys[kid] : undefined;
      if (typeof listed === 'string' && !parsePublicKey(listed).equals(own)) {
        problems.push(`trust/keys/${kid}: is not the public key of signingKey, which this call manager trusts under its keyId ${show(kid)}`);
      }
    } catch (err) {
      problems.push(`signingKey: cannot use ${show(keyPath)}: ${errorMessage(err)}`);
    }
  }
  problems.push(...credentialFileProblems((read.value as { mqtt?: unknown } | null)?.mqtt));
  if (result.ok && result.config.console.enabled && result.config.console.tokenFile !== null) {
    const token = readConsoleToken(result.config.console.tokenFile);
    if (!token.ok) problems.push(token.problem);
  }
  if (!result.ok || problems.length > 0) throw configInvalid(path, problems);
  return result.config;
}

/**
 * `retired` names former members only: none of the group (a member named there
 * would be dropped from every phone by its own lists), no id twice.
 */
function retiredProblems(retired: unknown, group: unknown): string[] {
  if (!Array.isArray(retired) || !Array.isArray(group)) return []; // the schema reported it
  const members = new Set(group.map((m: { id?: unknown }) => m?.id));
  const problems: string[] = [];
  const seen = new Set<unknown>();
  retired.forEach((id: unknown, i) => {
    if (members.has(id)) problems.push(`retired/${i}: ${show(id)} is a member of group: only former members may be retired`);
    else if (seen.has(id)) problems.push(`retired/${i}: ${show(id)} is named twice`);
    seen.add(id);
  });
  return problems;
}
