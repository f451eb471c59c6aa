/**
 * The simulated group: who runs where, and their configs (through the real
 * config validators, so defaults are the product's). One signing key made
 * from fixed bytes (Ed25519 signatures are deterministic, so the trace is too).
 */
import { createPrivateKey, createPublicKey, type KeyObject } from 'node:crypto';
import { validateAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { validateCmConfig, type CmConfig } from '../config/cm-config.js';
import { signEnvelope } from '../protocol/envelope.js';
import type { PointersSigner } from '../callmanager/list-book.js';

export const PREFIX = 'ipphone/v1';
export const KEY_ID = 'ops-1';

/** PKCS#8 DER of an Ed25519 key is this prefix and the 32-byte seed. */
const PKCS8_ED25519 = Buffer.from('302e020100300506032b657004220420', 'hex');

export const signingKey: KeyObject = createPrivateKey({ key: Buffer.concat([PKCS8_ED25519, Buffer.alloc(32, 7)]), format: 'der', type: 'pkcs8' });
export const publicKeyPem = createPublicKey(signingKey).export({ type: 'spki', format: 'pem' }).toString();
export const signer: PointersSigner = (body) => signEnvelope(body, signingKey, KEY_ID);

export interface SiteBroker {
  id: string;
  url: string;
}

export interface CmSpec {
  id: string;
  broker: string;
  services: string;
  /** The group this call manager belongs to (a remote site's is its own). */
  group: string;
  /** Its SIP registrar (`sip:HOST:PORT;transport=tcp`); absent: {@link registrarOf} makes one beside its services host. */
  sip?: string;
}

export interface Topology {
  brokers: SiteBroker[];
  /** The group's call managers, in default priority order. */
  group: CmSpec[];
  /** Call managers of other groups that phones point to (remote sites). */
  remote: CmSpec[];
  phones: string[];
  /** The phones' configured pointers, by id. */
  pointers: string[];
  /** Timing the phones run with. */
  keepalive: { intervalMs: number; missLimit: number; ackTimeoutMs: number };
  holdMs: number;
  /** The MQTT keep-alive of phones, seconds. */
  phoneMqttKeepaliveSec: number;
  phoneConnectTimeoutMs: number;
  backoff: { baseMs: number; maxMs: number };
  /** The call managers' probe of their SIP registrar (`sip.probeMs`, `sip.missLimit`). */
  sip: { probeMs: number; missLimit: number };
  /** The phones' SIP user agent: REGISTER expiry and refresh (`sip.regintS`), `sip.registerTimeoutMs`. */
  phoneSip: { regintS: number; registerTimeoutMs: number; /** Digest credentials (`sip.passwordFile`) and `sip.authRetryMs` (src/sim/sip-auth.ts); absent: none. */ auth?: { passwordFile: string; authRetryMs: number } };
  /** The group's rebalancing (src/sim/rebalance.ts draws it); absent: off, capacity 100. */
  rebalance?: RebalanceSetting;
  /** Call managers installed during the run (a group membership change adds them): hosts, not yet members. */
  spare?: CmSpec[];
}

/** The `rebalance` section every group member runs with, and each member's `capacity`. */
export interface RebalanceSetting {
  enabled: boolean;
  periodMs: number;
  threshold: number;
  maxMovesPerSec: number;
  cooldownMs: number;
  capacity: number;
}

/** What one call manager's config says differently from the topology (a workload's restart, a plant). */
export interface CmOverride {
  /** `rebalance.enabled` (the rebalancing on/off workload). */
  rebalance?: boolean;
  /** `rebalance.threshold` really configured (the `wide-threshold` plant). */
  threshold?: number;
  /** The `group` member ids (a membership change), in priority order. */
  group?: string[];
  /** `retired`: the former members (a removal). */
  retired?: string[];
}

/** The default world: two sites of one group (cm-a, cm-b on broker A; cm-c on broker B) and a remote site's cm-r on broker R. */
export function defaultTopology(phones: number): Topology {
  const brokers = [
    { id: 'A', url: 'mqtt://10.0.1.1:1883' },
    { id: 'B', url: 'mqtt://10.0.2.1:1883' },
    { id: 'R', url: 'mqtt://10.0.9.1:1883' },
  ];
  const group = [
    { id: 'cm-a', broker: brokers[0]!.url, services: 'http://10.0.1.11:8080/ccmcip/menu.jsp', group: 'g' },
    { id: 'cm-b', broker: brokers[0]!.url, services: 'http://10.0.1.12:8080/ccmcip/menu.jsp', group: 'g' },
    { id: 'cm-c', broker: brokers[1]!.url, services: 'http://10.0.2.11:8080/ccmcip/menu.jsp', group: 'g' },
  ];
  const remote = [{ id: 'cm-r', broker: brokers[2]!.url, services: 'http://10.0.9.11:8080/ccmcip/menu.jsp', group: 'r' }];
  return {
    brokers,
    group,
    remote,
    phones: Array.from({ length: phones }, (_, i) => `p-${String(i + 1).padStart(4, '0')}`),
    pointers: ['cm-a', 'cm-b', 'cm-c', 'cm-r'],
    keepalive: { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 150 },
    holdMs: 10_000,
    phoneMqttKeepaliveSec: 10,
    phoneConnectTimeoutMs: 3000,
    backoff: { baseMs: 500, maxMs: 4000 },
    sip: { probeMs: 1000, missLimit: 3 },
    phoneSip: { regintS: 60, registerTimeoutMs: 4000 },
  };
}

/**
 * A user's group (`--group FILE`: a call manager config, or any JSON with its
 * `group` array) in the default world's timing: one site broker per distinct
 * broker URL, every member in the group, phones pointing to the members in
 * order. Broker host names are replaced by addresses of the simulated network
 * (the simulation resolves nothing); the mapping is returned.
 */
export function topologyFromGroup(raw: unknown, phones: number): { topo: Topology; brokers: Map<string, string> } {
  const group = (raw as { group?: unknown } | null)?.group;
  if (!Array.isArray(group) || group.length === 0) throw new Error('--group: the file has no "group" array (a call manager config has one)');
  const base = defaultTopology(phones);
  const brokers = new Map<string, string>();
  const members: CmSpec[] = group.map((g: unknown, i: number) => {
    const m = g as { id?: unknown; broker?: unknown; services?: unknown; sip?: unknown };
    if (typeof m.id !== 'string' || typeof m.broker !== 'string' || typeof m.services !== 'string') throw new Error(`--group: group[${i}] needs id, broker and services strings`);
    let url = brokers.get(m.broker);
    if (url === undefined) brokers.set(m.broker, (url = `mqtt://10.0.${brokers.size + 1}.1:1883`));
    return { id: m.id, broker: url, services: m.services, group: 'g', ...(typeof m.sip === 'string' ? { sip: m.sip } : {}) };
  });
  const topo: Topology = {
    ...base,
    brokers: [...brokers.values()].map((url, i) => ({ id: `B${i + 1}`, url })),
    group: members,
    remote: [],
    pointers: members.map((m) => m.id),
  };
  return { topo, brokers };
}

/** A call manager's SIP registrar: its own `sip`, else port 5060 on its services host (the registrar sits beside it). */
export function registrarOf(c: CmSpec): string {
  return c.sip ?? `sip:${new URL(c.services).hostname}:5060;transport=tcp`;
}

/** A phone's SIP user part (its number): `1` and the digits of its id (`p-0003` → `10003`). */
export function sipUser(phoneId: string): string {
  return `1${phoneId.replace(/\D/g, '')}`;
}

export function allCms(t: Topology): CmSpec[] {
  return [...t.group, ...t.remote, ...(t.spare ?? [])];
}

export function cmConfig(t: Topology, cm: CmSpec, over: CmOverride = {}): CmConfig {
  const known = [...t.group, ...(t.spare ?? [])];
  const members = over.group !== undefined ? over.group.map((id) => known.find((m) => m.id === id)!) : cm.group === 'g' ? t.group : [cm];
  const rb = cm.group === 'g' ? t.rebalance : undefined;
  const r = validateCmConfig({
    cmId: cm.id,
    broker: cm.broker,
    http: { host: '127.0.0.1', port: 1 },
    group: members.map((m) => ({ id: m.id, broker: m.broker, services: m.services, sip: registrarOf(m), capacity: rb?.capacity ?? 100 })),
    ...(over.retired !== undefined ? { retired: over.retired } : {}),
    rebalance:
      rb === undefined
        ? { enabled: false }
        : { enabled: over.rebalance ?? rb.enabled, periodMs: rb.periodMs, threshold: over.threshold ?? rb.threshold, maxMovesPerSec: rb.maxMovesPerSec, cooldownMs: rb.cooldownMs },
    signingKey: '/nonexistent/sim.pem',
    keyId: KEY_ID,
    topicPrefix: PREFIX,
    keepalive: { phoneIntervalMs: t.keepalive.intervalMs },
    stateDir: `/var/lib/ipphone-cm/${cm.id}`,
    trust: { keys: { [KEY_ID]: publicKeyPem } },
    console: { enabled: false },
    log: { level: 'silent' },
  });
  if (!r.ok) throw new Error(`sim: cm config ${cm.id}: ${r.problems.join('; ')}`);
  return r.config;
}

/** `over`: what the phone really runs with when it differs from the declared topology (checker self-tests plant it). */
export function agentConfig(t: Topology, phoneId: string, over: { missLimit?: number; holdMs?: number } = {}): AgentConfig {
  const cms = allCms(t);
  const r = validateAgentConfig({
    phoneId,
    pointers: t.pointers.map((id) => {
      const c = cms.find((m) => m.id === id)!;
      return { id: c.id, broker: c.broker, services: c.services, sip: registrarOf(c) };
    }),
    keepalive: { ...t.keepalive, ...(over.missLimit !== undefined ? { missLimit: over.missLimit } : {}), topic: 'per-phone' },
    fallback: { holdMs: over.holdMs ?? t.holdMs },
    services: { timeoutMs: 2000, refreshMs: 15_000 },
    topicPrefix: PREFIX,
    stateDir: `/var/lib/ipphone-agent/${phoneId}`,
    trust: { requireSigned: true, keys: { [KEY_ID]: publicKeyPem } },
    mqtt: { keepaliveSec: t.phoneMqttKeepaliveSec, connectTimeoutMs: t.phoneConnectTimeoutMs, backoff: t.backoff },
    // The user agent is the world's (src/sim/sip.ts), behind the port baresip's adapter fills in production.
    sip: { driver: 'baresip', ctrl: '127.0.0.1:4444', user: sipUser(phoneId), regintS: t.phoneSip.regintS, registerTimeoutMs: t.phoneSip.registerTimeoutMs, ...(t.phoneSip.auth ?? {}) },
    log: { level: 'silent' },
  });
  if (!r.ok) throw new Error(`sim: agent config ${phoneId}: ${r.problems.join('; ')}`);
  return r.config;
}
