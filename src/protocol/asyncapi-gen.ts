import { writeFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { TSchema } from '@sinclair/typebox';
import * as P from './payload-schemas.js';
import { DEFAULT_PREFIX, topics, type Topics } from './topics.js';

/**
 * Writes `asyncapi.yaml` (AsyncAPI 3.0.0) at the repository root from the
 * code: channel addresses from the Topics builders (topics.ts), payload
 * schemas from payload-schemas.ts (what the codecs validate with). Run by
 * `npm run schemas`; a unit test compares {@link asyncapiText} with the file.
 *
 * The roles' QoS and retain flags are written here, next to the channel they
 * belong to; the coverage test (test/unit/protocol/asyncapi.test.ts) checks the
 * topics real programs use against the channel addresses.
 */

export const ASYNCAPI_PATH = fileURLToPath(new URL('../../asyncapi.yaml', import.meta.url));

/** Placeholders the builders accept as ids (valid topic levels), replaced by `{cmId}` / `{phoneId}`. */
const CM = '__cmId__';
const PHONE = '__phoneId__';

type Role = 'phone' | 'cm' | 'operator';
type Qos = 0 | 1;
interface Op {
  role: Role;
  action: 'send' | 'receive';
  qos: Qos;
  retain: boolean;
  summary: string;
}
interface MessageSpec {
  title: string;
  schema: TSchema;
  description?: string;
  /** For signed envelopes: the schema of the base64 body. */
  signedBody?: TSchema;
}
interface ChannelSpec {
  address: (t: Topics) => string;
  description: string;
  messages: Record<string, MessageSpec>;
  ops: Op[];
  /** Topics builders that are subscription filters over this channel. */
  filters?: Array<keyof Topics>;
}

const KEEPALIVE: MessageSpec = { title: 'Keep-alive', schema: P.KeepaliveSchema };

/** One entry per topic builder of topics.ts (the generator refuses an unmapped one). */
const CHANNELS: Record<string, ChannelSpec> = {
  cmKeepalive: {
    address: (t) => t.cmKeepalive(CM),
    description: 'The contract\'s keep-alive topic, shared by every phone homed to (or probing) the call manager.',
    messages: { keepalive: KEEPALIVE },
    ops: [
      { role: 'phone', action: 'send', qos: 0, retain: false, summary: 'A phone keeps itself homed.' },
      { role: 'cm', action: 'receive', qos: 0, retain: false, summary: 'The call manager answers each keep-alive with an ack.' },
    ],
  },
  cmPhoneKeepalive: {
    address: (t) => t.cmPhoneKeepalive(CM, PHONE),
    description:
      'Extension: the keep-alive topic that names its phone, so a broker ACL lets each identity write only its own; the call manager trusts this phoneId over the payload\'s phone.',
    messages: { keepalive: KEEPALIVE },
    ops: [
      { role: 'phone', action: 'send', qos: 0, retain: false, summary: 'A phone keeps itself homed (per-phone topic).' },
      { role: 'cm', action: 'receive', qos: 0, retain: false, summary: 'The call manager subscribes with P/cm/{cmId}/keepalive/+.' },
    ],
    filters: ['cmPhoneKeepaliveFilter'],
  },
  cmState: {
    address: (t) => t.cmState(CM),
    description:
      'Signed liveness of a call manager, retained. Phones and peers take a state only when signed by a trusted key and strictly newer than the one they hold (bdSeq, then seq within the run); the will (will: true) is the pre-signed offline of its connection, final for it, and published by no one while the process lives. An online they cannot order (an older run, or one not above every run they believed) is challenged (P/cm/{cmId}/challenge/{phoneId}). Unsigned, forged, empty or replayed states change nothing.',
    messages: {
      state: { title: 'Signed state', schema: P.CmStateSchema, signedBody: P.CmStateBodySchema },
      will: { title: 'Will: pre-signed offline', schema: P.CmStateSchema, signedBody: P.CmStateBodySchema, description: 'Set at CONNECT; online is false.' },
    },
    ops: [
      { role: 'cm', action: 'send', qos: 1, retain: true, summary: 'A call manager says it is online or offline.' },
      { role: 'phone', action: 'receive', qos: 1, retain: true, summary: 'Phones watch the state of every pointer.' },
      { role: 'cm', action: 'receive', qos: 1, retain: true, summary: 'Peers of the group watch each other.' },
    ],
    filters: ['allCmState'],
  },
  cmChallenge: {
    address: (t) => t.cmChallenge(CM, PHONE),
    description:
      'Extension: a liveness challenge of the call manager by a receiver that cannot order its online (a reinstalled call manager with a lower boot sequence, or a replay). The last level is the challenger (a phone id, or a peer call manager\'s id), so an ACL lets each identity write only its own. The call manager answers at a bounded rate, one pending challenge per challenger.',
    messages: { challenge: { title: 'Challenge', schema: P.CmChallengeSchema } },
    ops: [
      { role: 'phone', action: 'send', qos: 1, retain: false, summary: 'A phone asks the live call manager to sign its state with a random challenge.' },
      { role: 'cm', action: 'send', qos: 1, retain: false, summary: 'A peer call manager does the same.' },
      { role: 'cm', action: 'receive', qos: 1, retain: false, summary: 'The call manager subscribes with P/cm/{cmId}/challenge/+.' },
    ],
    filters: ['cmChallengeFilter'],
  },
  cmChallengeAnswer: {
    address: (t) => t.cmChallengeAnswer(CM, PHONE),
    description: 'Extension: the answer to a challenge: the call manager\'s current state signed again with the challenge in its body. Only the challenger\'s answer to its own unexpired challenge is believed, once; the run it names is then believed whatever its boot sequence.',
    messages: { answer: { title: 'Signed state with the challenge', schema: P.CmStateSchema, signedBody: P.CmStateBodySchema } },
    ops: [
      { role: 'cm', action: 'send', qos: 1, retain: false, summary: 'The live call manager answers.' },
      { role: 'phone', action: 'receive', qos: 1, retain: false, summary: 'The challenging phone.' },
      { role: 'cm', action: 'receive', qos: 1, retain: false, summary: 'The challenging peer.' },
    ],
  },
  cmLoad: {
    address: (t) => t.cmLoad(CM),
    description: 'Load of a call manager, retained, for its group\'s rebalancing.',
    messages: { load: { title: 'Load', schema: P.LoadSchema } },
    ops: [
      { role: 'cm', action: 'send', qos: 1, retain: true, summary: 'A call manager publishes its load.' },
      { role: 'cm', action: 'receive', qos: 1, retain: true, summary: 'Peers read each other\'s load.' },
    ],
    filters: ['allCmLoad'],
  },
  phoneAck: {
    address: (t) => t.phoneAck(PHONE),
    description: 'The call manager\'s answer to a keep-alive.',
    messages: { ack: { title: 'Ack', schema: P.AckSchema, signedBody: P.PointersBodySchema } },
    ops: [
      { role: 'cm', action: 'send', qos: 0, retain: false, summary: 'Answer a keep-alive.' },
      { role: 'phone', action: 'receive', qos: 1, retain: false, summary: 'The phone reads acks (subscribed at QoS 1; delivered at 0).' },
    ],
  },
  phonePointers: {
    address: (t) => t.phonePointers(PHONE),
    description: 'A signed pointer list pushed to the phone (reason failover, rebalance or admin).',
    messages: { pointers: { title: 'Signed pointer list', schema: P.EnvelopeSchema, signedBody: P.PointersBodySchema } },
    ops: [
      { role: 'cm', action: 'send', qos: 1, retain: false, summary: 'A call manager moves a phone.' },
      { role: 'operator', action: 'send', qos: 1, retain: false, summary: 'ipphone-admin push.' },
      { role: 'phone', action: 'receive', qos: 1, retain: false, summary: 'The phone verifies and applies the list.' },
    ],
  },
  phoneConfig: {
    address: (t) => t.phoneConfig(PHONE),
    description: 'A signed partial agent config, merged over the current one.',
    messages: { config: { title: 'Signed config change', schema: P.EnvelopeSchema, signedBody: P.ConfigBodySchema } },
    ops: [
      { role: 'operator', action: 'send', qos: 1, retain: false, summary: 'ipphone-admin config.' },
      { role: 'phone', action: 'receive', qos: 1, retain: false, summary: 'The phone verifies, validates and applies it.' },
    ],
  },
  phoneConfigResult: {
    address: (t) => t.phoneConfigResult(PHONE),
    description: 'The outcome of a config change.',
    messages: { configResult: { title: 'Config result', schema: P.ConfigResultSchema } },
    ops: [
      { role: 'phone', action: 'send', qos: 1, retain: false, summary: 'Say whether a config change applied.' },
      { role: 'operator', action: 'receive', qos: 1, retain: false, summary: 'ipphone-admin waits for it.' },
    ],
  },
  phoneStatus: {
    address: (t) => t.phoneStatus(PHONE),
    description: 'The phone\'s status, retained; its will is { "online": false }.',
    messages: {
      status: { title: 'Status', schema: P.StatusSchema },
      will: { title: 'Will', schema: P.StatusSchema, description: '{ "online": false }, set at CONNECT.' },
    },
    ops: [
      { role: 'phone', action: 'send', qos: 1, retain: true, summary: 'Publish status on every change.' },
      { role: 'phone', action: 'receive', qos: 1, retain: true, summary: 'The phone watches its own status (to restore it over its own will).' },
      { role: 'operator', action: 'receive', qos: 1, retain: true, summary: 'ipphone-admin status.' },
      { role: 'cm', action: 'receive', qos: 0, retain: true, summary: 'A call manager may watch statuses (its `watch` topics).' },
    ],
    filters: ['allPhoneStatus'],
  },
  phoneEvent: {
    address: (t) => t.phoneEvent(PHONE),
    description: 'What happened to the phone: rehomed (with reason), rejected (a refused message), homed, sip-registered. Receivers ignore types they do not know.',
    messages: { event: { title: 'Event', schema: P.EventSchema } },
    ops: [
      { role: 'phone', action: 'send', qos: 0, retain: false, summary: 'Report an event.' },
      { role: 'operator', action: 'receive', qos: 1, retain: false, summary: 'ipphone-admin watches outcomes.' },
    ],
  },
};

/** Each channel's address (with `{cmId}`/`{phoneId}`) and the payload schemas its messages may carry, for tests. */
export function channelSchemas(): Array<{ name: string; address: string; schemas: TSchema[] }> {
  const t = topics(DEFAULT_PREFIX);
  return Object.entries(CHANNELS).map(([name, c]) => ({
    name,
    address: c.address(t).replaceAll(CM, '{cmId}').replaceAll(PHONE, '{phoneId}'),
    schemas: Object.values(c.messages).map((m) => m.schema),
  }));
}

/** Topics keys that are not builders of one channel. */
const NOT_TOPICS = new Set<string>(['idOf']);

const PARAMS: Record<string, { description: string }> = {
  cmId: { description: 'a call manager id: 1 to 64 characters from A-Z a-z 0-9 . _ -' },
  phoneId: { description: 'a phone id: 1 to 64 characters from A-Z a-z 0-9 . _ -' },
};

/** TypeBox → plain JSON Schema: symbols dropped, `$id` removed, `Type.Ref` ids pointed at components. */
function plain(schema: TSchema): unknown {
  const walk = (v: unknown): unknown => {
    if (Array.isArray(v)) return v.map(walk);
    if (typeof v !== 'object' || v === null) return v;
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) {
      if (k === '$id') continue;
      out[k] = k === '$ref' && typeof x === 'string' ? `#/components/schemas/${x}` : walk(x);
    }
    return out;
  };
  return walk(JSON.parse(JSON.stringify(schema)));
}

const idOf = (s: TSchema): string => {
  if (typeof s.$id !== 'string') throw new Error('payload schema without $id');
  return s.$id;
};
const ref = (s: TSchema) => ({ $ref: `#/components/schemas/${idOf(s)}` });
const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1);

/** The document as a plain object. */
export function asyncapiDocument(): Record<string, unknown> {
  const t = topics(DEFAULT_PREFIX);
  const builders = Object.keys(t).filter((k) => !NOT_TOPICS.has(k));
  const mapped = new Set<string>(Object.keys(CHANNELS));
  for (const c of Object.values(CHANNELS)) for (const f of c.filters ?? []) mapped.add(f);
  const missing = builders.filter((k) => !mapped.has(k));
  if (missing.length > 0) throw new Error(`asyncapi-gen: topics.ts builders without a channel: ${missing.join(', ')}`);

  const channels: Record<string, unknown> = {};
  const operations: Record<string, unknown> = {};
  for (const [name, c] of Object.entries(CHANNELS)) {
    const address = c.address(t).replaceAll(CM, '{cmId}').replaceAll(PHONE, '{phoneId}');
    const used = Object.keys(PARAMS).filter((p) => address.includes(`{${p}}`));
    const messages: Record<string, unknown> = {};
    for (const [mName, m] of Object.entries(c.messages)) {
      messages[mName] = {
        name: mName,
        title: m.title,
        contentType: 'application/json',
        ...(m.description !== undefined || m.signedBody !== undefined
          ? {
              description: [m.description, m.signedBody ? `Signed: body is base64 of the UTF-8 JSON of components/schemas/${idOf(m.signedBody)} (see x-signed-body).` : undefined]
                .filter(Boolean)
                .join(' '),
            }
          : {}),
        payload: ref(m.schema),
        ...(m.signedBody ? { 'x-signed-body': ref(m.signedBody) } : {}),
      };
    }
    const filters = (c.filters ?? []).map((f) => {
      const v = t[f];
      return typeof v === 'function' ? (v as (id: string) => string)(CM).replaceAll(CM, '{cmId}') : (v as string);
    });
    channels[name] = {
      address,
      title: name,
      description: c.description,
      messages,
      ...(used.length > 0 ? { parameters: Object.fromEntries(used.map((p) => [p, PARAMS[p]])) } : {}),
      ...(filters.length > 0 ? { 'x-subscription-filters': filters } : {}),
    };
    for (const op of c.ops) {
      const id = `${op.role}${cap(op.action)}s${cap(name)}`;
      operations[id] = {
        action: op.action,
        channel: { $ref: `#/channels/${name}` },
        summary: op.summary,
        tags: [{ name: op.role }],
        messages: Object.keys(c.messages).map((m) => ({ $ref: `#/channels/${name}/messages/${m}` })),
        bindings: { mqtt: { qos: op.qos, retain: op.retain, bindingVersion: '0.2.0' } },
      };
    }
  }
  return {
    asyncapi: '3.0.0',
    info: {
      title: 'ipphone MQTT interface',
      version: '1',
      description:
        'Topics between ipphone-agent (phones), ipphone-cm (call managers) and operators (ipphone-admin). All payloads are UTF-8 JSON objects; times are ms. ' +
        `Addresses use the default topicPrefix ${DEFAULT_PREFIX}. Generated by src/protocol/asyncapi-gen.ts (npm run schemas) from topics.ts and payload-schemas.ts; do not edit by hand.`,
      license: { name: 'MIT' },
      tags: [{ name: 'phone' }, { name: 'cm' }, { name: 'operator' }],
    },
    defaultContentType: 'application/json',
    servers: {
      mqtt: { host: 'localhost:1883', protocol: 'mqtt', protocolVersion: '5', description: 'Example: a local broker for development.' },
      'secure-mqtt': {
        host: 'localhost:8883',
        protocol: 'secure-mqtt',
        protocolVersion: '5',
        description: 'Example of the supported production set-up: TLS only, client certificates required, the certificate CN as user name and client id.',
        security: [{ $ref: '#/components/securitySchemes/clientCertificate' }],
      },
    },
    channels,
    operations,
    components: {
      schemas: Object.fromEntries(P.PAYLOAD_SCHEMAS.map((s) => [idOf(s), plain(s)])),
      securitySchemes: {
        clientCertificate: { type: 'X509', description: 'The CN is a phoneId, a cmId or an operator name; ipphone-admin acl prints the ACL.' },
      },
    },
  };
}

/** The YAML text of asyncapi.yaml. */
export async function asyncapiText(): Promise<string> {
  const { stringify } = await import('yaml');
  return `# Generated by src/protocol/asyncapi-gen.ts (npm run schemas). Do not edit.\n${stringify(asyncapiDocument(), { lineWidth: 0, aliasDuplicateObjects: false })}`;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  writeFileSync(ASYNCAPI_PATH, await asyncapiText());
  process.stdout.write(`wrote ${ASYNCAPI_PATH}\n`);
}
