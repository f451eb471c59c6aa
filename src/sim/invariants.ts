/**
 * The group's invariants, each a named checker written from the contract
 * (shared/CONTRACT.md: "Behaviour that tests observe", "Signed envelope",
 * "Simulation") and the world's ground truth — never from the code under
 * test. They read what a phone holds and says (its home, its held list and
 * version, its published status and events), what call managers publish, and
 * the world's own state (which processes live, which links are cut). Every
 * bound is derived from the configs; docs/simulation.md writes each down.
 */
import { createPublicKey, verify } from 'node:crypto';
import type { Conn } from './broker.js';
import type { CmHost, PhoneHost } from './hosts.js';
import { publicKeyPem, type Topology } from './group.js';

export const INVARIANTS = ['home-is-live', 'service-when-possible', 'fallback', 'lists-signed', 'versions-bounded', 'no-forged-effect', 'lists-live', 'durable', 'no-storm', 'converge', 'no-replayed-online', 'config-signed', 'sip-at-home', 'removed-gone', 'services-relative', 'auth-no-rehome', 'auth-shown', 'auth-no-storm', 'auth-recovers'] as const;
export type InvariantName = (typeof INVARIANTS)[number];

export interface Violation {
  invariant: InvariantName;
  at: number;
  detail: string;
}

/** What the checkers may ask of the world. */
export interface Truth {
  now(): number;
  cms: Map<string, CmHost>;
  phones: Map<string, PhoneHost>;
  /** The call manager's process runs, is not paused, and holds a live connection to its own broker. */
  serving(cm: string): boolean;
  /** `serving` and the phone's link to that call manager's broker is whole and the broker up. */
  reachable(phone: string, cm: string): boolean;
  /** The broker of this call manager is up. */
  brokerUp(cm: string): boolean;
  /** Wall clock of a call manager's host now. */
  wallOf(cm: string): number;
  /** The call manager's services server answers now (src/sim/services.ts `servicesAnswer`); absent: not judged. */
  servicesAnswer?(cm: string): boolean;
  /** Since when the phone's path to that server has been whole (services.ts `wholeSince`); absent: never cut. */
  servicesWholeSince?(phone: string, cm: string): number;
  /** Identities of operators (`ipphone-admin` certificates): their signed lists and configs are genuine. */
  operators?: readonly string[];
}

/** The bounds every checker uses, from the configs (docs/simulation.md). */
export interface Bounds {
  /** A phone leaves a home it cannot use within this (ms). */
  detectMs: number;
  /** A phone with a usable pointer for this long is homed (ms). */
  serviceMs: number;
  /** After faults stop: healthy for holdMs + this, the idle phone is back on its highest pointer (ms). */
  fallbackMs: number;
  /** A call manager serving this long cannot have been the subject of a genuine offline or keep-alive loss (ms). */
  liveWindowMs: number;
  /** A call manager dead this long (with its broker up to send its will) is known dead by its peers (ms). */
  peerDeadMs: number;
  /** Most connections one client id may make to one broker in {@link STORM_WINDOW_MS}. */
  stormMax: number;
  /**
   * A phone whose home's services server answered this long before it chose another pointer's
   * page for `services-timeout` left a server that answers (ms): every pointer's fetch deadline
   * (the chain tried home first) and 1000 ms for links and the checker's 50 ms sampling.
   */
  servicesWindowMs: number;
}

/** Longest services fetch deadline a phone runs with (the config file's 2000 ms; remote configs stay at or under it). */
export const SERVICES_TIMEOUT_MAX_MS = 3000;

/** The window of the no-storm bound (ms). */
export const STORM_WINDOW_MS = 60_000;

export const MAX_AHEAD_MS = 24 * 3600 * 1000;

export function bounds(t: Topology, maxDelayMs: number): Bounds {
  const ka = t.keepalive;
  const round = ka.intervalMs * (ka.missLimit + 1) + ka.ackTimeoutMs;
  // A call manager whose registrar went silent reports itself offline after missLimit probes (then keeps silent).
  const sipDetect = t.sip.probeMs * (t.sip.missLimit + 1);
  return {
    detectMs: sipDetect + round + 4 * maxDelayMs + 1000,
    serviceMs: t.pointers.length * (t.phoneConnectTimeoutMs + round) + t.backoff.maxMs + t.sip.probeMs + 2000,
    fallbackMs: round + t.phoneConnectTimeoutMs + t.backoff.maxMs + t.sip.probeMs + 2000,
    liveWindowMs: round + 2000,
    // The peer learns from the will at once; 1.5 × the call manager's MQTT keep-alive (30 s) when the socket vanished, plus its reconnect.
    peerDeadMs: 45_000 + 10_000,
    // A call manager's client reconnects at most once a second (mqtt.js reconnectPeriod 1000); a phone waits
    // its backoff (base..max with full jitter) after each failure: neither comes near one a second for a minute.
    stormMax: STORM_WINDOW_MS / 1000,
    servicesWindowMs: t.pointers.length * SERVICES_TIMEOUT_MAX_MS + 1000,
  };
}

const key = createPublicKey(publicKeyPem);

interface Signed {
  version: number;
  list: { id: string; broker: string }[];
  phone?: string;
  issuer: string;
  /** Signed by an operator (`ipphone-admin pointers`): it replaces the whole list, owns nothing. */
  operator?: true;
}

/** Open a signed envelope as the contract defines it: Ed25519 over exactly the body bytes, by a trusted key id. */
export function openSigned(payload: unknown): { body: Record<string, unknown> } | null {
  if (typeof payload !== 'object' || payload === null) return null;
  const e = payload as { kid?: unknown; body?: unknown; sig?: unknown };
  if (e.kid !== 'ops-1' || typeof e.body !== 'string' || typeof e.sig !== 'string') return null;
  const bytes = Buffer.from(e.body, 'base64');
  if (!verify(null, bytes, key, Buffer.from(e.sig, 'base64'))) return null;
  try {
    const body = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    return typeof body === 'object' && body !== null ? { body } : null;
  } catch {
    return null;
  }
}

function parse(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}

/** A rebase an operator signed for a phone, as its own publish showed it (versions-bounded). */
interface RebaseSent {
  phone: string;
  rebase: number;
  version: number;
  expires: number;
  /** When the operator published it (sim ms). */
  sentAt: number;
  /** When the phone took it (last), and whether it took another list within that run since. */
  takenAt?: number;
  movedOn?: boolean;
}

/** Runs every checker; `violate` collects. */
export class Checkers {
  readonly violations: Violation[] = [];
  checks = 0;
  /** Held versions that went down the documented ways (a rebase, a rollback of a config that set pointers): figures, tests. */
  wentDown = 0;
  readonly #t: Truth;
  readonly #b: Bounds;
  readonly #topo: Topology;
  readonly #groupOf = new Map<string, Set<string>>();
  /** Genuine signed lists for each phone, by version (from call managers' publishes). */
  readonly #signed = new Map<string, Map<number, Signed[]>>();
  /** Per call manager: its process run (its clock) and the highest wall clock of that run so far. */
  readonly #wallMax = new Map<string, { clock: unknown; max: number }>();
  /** `issuer version` of every version already judged by versions-bounded (at its first publication, for any phone: the same version re-signed bound to another phone was issued then). */
  readonly #judgedVersions = new Set<string>();
  /** Per phone: the list and version it held at the last check, and since when its home was unusable. */
  readonly #held = new Map<string, { version: number; ids: string[]; boot: number | null }>();
  readonly #badHome = new Map<string, { home: string; since: number }>();
  /** Per phone × cm: since when reachable continuously (or absent). */
  readonly #reachSince = new Map<string, number>();
  /** Per cm: since when serving continuously; since when dead with its broker up. */
  readonly #servingSince = new Map<string, number>();
  readonly #deadSince = new Map<string, number>();
  /** Per phone: highest pointersVersion it reported acting on (its status), and the boots checked. */
  readonly #acted = new Map<string, number>();
  readonly #bootsChecked = new Map<string, number>();
  /** Per phone: since when it has had no home. */
  readonly #homeless = new Map<string, number>();
  #lastTick = -Infinity;
  /** Accepted connections by `${broker} ${clientId}`: their times in the last window. */
  readonly #connects = new Map<string, number[]>();
  /** Per cm: since when its services server has answered continuously. */
  readonly #servicesSince = new Map<string, number>();
  /** Per phone: its home and since when (while its process runs). */
  readonly #homeSince = new Map<string, { home: string | null; since: number }>();
  /** Per phone: config versions an operator signed for it (or for no phone in particular). */
  readonly #configs = new Map<string, Set<number>>();
  /** Per phone: when the ids of its held list last changed (service-when-possible counts a pointer from when it is in the list). */
  readonly #listSince = new Map<string, number>();
  /** Per phone, after its held version went down a documented way: the versions it has held since (durable). */
  readonly #sinceDown = new Map<string, Set<number>>();
  /** `phone rebase version` of every rebase an operator signed (versions-bounded's documented way down). */
  readonly #rebases = new Map<string, RebaseSent>();
  /** `phone ids` of every pointer list an operator's config set (lists-signed: taken at the held version + 1). */
  readonly #configLists = new Set<string>();
  /**
   * Per phone: what a rollback of the pending config chain may restore (`version ids`): the list it held when
   * an operator's config reached the brokers for it, or just before it took a config's pointers (reconfig.ts:
   * the list held before the chain's first change). Cleared when the phone reports the chain confirmed:
   * a list held before, taken again later, is no rollback (a replayed rebase back to the list held before
   * a confirmed config once passed as one).
   */
  readonly #rollbackTo = new Map<string, Set<string>>();
  /** Per phone: the config version it held at the last check, in which boot. */
  readonly #configHeld = new Map<string, { boot: number | null; version: number }>();

  constructor(truth: Truth, b: Bounds, topo: Topology) {
    this.#t = truth;
    this.#b = b;
    this.#topo = topo;
    const g = new Set(topo.group.map((c) => c.id));
    for (const c of topo.group) this.#groupOf.set(c.id, g);
    for (const c of topo.remote) this.#groupOf.set(c.id, new Set([c.id]));
  }

  /** A call manager restarted with a new group (a membership change): its lists are judged by that group from now on. */
  setGroup(cm: string, ids: readonly string[], retired: readonly string[] = []): void {
    // Its lists own the ids its config retires too (src/callmanager/retired.ts): it may drop those.
    this.#groupOf.set(cm, new Set([...ids, ...retired]));
  }

  get bounds(): Bounds {
    return this.#b;
  }

  violate(invariant: InvariantName, detail: string): void {
    if (this.violations.some((v) => v.invariant === invariant && v.detail === detail)) return;
    this.violations.push({ invariant, at: this.#t.now(), detail });
  }

  /** no-storm: a broker accepted a connection. */
  onConnect(broker: string, clientId: string): void {
    const now = this.#t.now();
    const k = `${broker} ${clientId}`;
    const times = (this.#connects.get(k) ?? []).filter((x) => now - x < STORM_WINDOW_MS);
    times.push(now);
    this.#connects.set(k, times);
    this.checks++;
    if (times.length > this.#b.stormMax) this.violate('no-storm', `${clientId} connected to ${broker} ${times.length} times in ${STORM_WINDOW_MS} ms (bound ${this.#b.stormMax})`);
  }

  /** Every publish a broker accepted. */
  onPublish(from: Conn | null, topic: string, payload: Buffer): void {
    if (from === null) return;
    const cm = this.#t.cms.get(from.identity);
    const m = /^ipphone\/v1\/phone\/([^/]+)\/(pointers|ack|status|event|config|config\/result)$/.exec(topic);
    if (m === null) return;
    const phone = m[1]!;
    const kind = m[2]!;
    if (this.#t.operators?.includes(from.identity) === true) {
      this.#onOperator(phone, kind, payload);
      return;
    }
    if (this.#t.phones.has(phone) && from.identity === phone && (kind === 'config/result' || kind === 'status')) this.#onConfigReport(phone, kind, parse(payload));
    if (cm !== undefined && (kind === 'pointers' || kind === 'ack')) {
      const msg = parse(payload) as Record<string, unknown> | undefined;
      const env = kind === 'pointers' ? msg : typeof msg?.pointers === 'object' ? msg.pointers : undefined;
      if (env === undefined) return;
      const opened = openSigned(env);
      if (opened === null) {
        this.violate('lists-signed', `${from.identity} published on ${topic} a list that does not verify`);
        return;
      }
      this.#onGenuine(phone, from.identity, opened.body);
      return;
    }
    if (this.#t.phones.has(phone) && from.identity === phone && kind === 'status') {
      const st = parse(payload) as { online?: unknown; pointersVersion?: unknown } | undefined;
      // After a documented way down, a status may still arrive late (QoS 1 resent on a new connection) with a version
      // from before it: only versions the phone held since count (seed 133).
      const sd = this.#sinceDown.get(phone);
      if (st?.online === true && typeof st.pointersVersion === 'number' && (sd === undefined || sd.has(st.pointersVersion))) this.#acted.set(phone, Math.max(this.#acted.get(phone) ?? 0, st.pointersVersion));
      return;
    }
    if (this.#t.phones.has(phone) && from.identity === phone && kind === 'event') this.#onEvent(phone, parse(payload));
  }

  /** What an operator signs (`ipphone-admin pointers` and `config`) is genuine; it must verify. */
  #onOperator(phone: string, kind: string, payload: Buffer): void {
    if (kind !== 'pointers' && kind !== 'config') return;
    const opened = openSigned(parse(payload));
    if (opened === null) {
      this.violate(kind === 'config' ? 'config-signed' : 'lists-signed', `an operator published on ${phone}'s ${kind} topic something that does not verify`);
      return;
    }
    const b = opened.body;
    if (kind === 'pointers') {
      if (typeof b.version !== 'number' || !Array.isArray(b.list)) return;
      // A rebase (`pointers --rebase`): the documented way down, from exactly the version it names.
      // Recorded from the operator's own publish, with its time: a replay by anyone else adds nothing (replay.ts).
      if (typeof b.rebase === 'number' && b.phone === phone) this.#rebases.set(`${phone} ${b.rebase} ${b.version}`, { phone, rebase: b.rebase, version: b.version, expires: typeof b.expires === 'number' ? b.expires : -Infinity, sentAt: this.#t.now() });
      this.#record(phone, { version: b.version, list: b.list as Signed['list'], issuer: 'operator', operator: true, ...(typeof b.phone === 'string' ? { phone: b.phone } : {}) });
      return;
    }
    if (typeof b.version !== 'number') return;
    // A config bound to another phone is not this one's to take.
    if (b.phone !== undefined && b.phone !== phone) return;
    const target = typeof b.phone === 'string' ? b.phone : phone;
    // A config that sets pointers: the phone takes them as an admin list at its held version + 1 (agent.ts).
    const ptrs = (b.config as { pointers?: unknown } | undefined)?.pointers;
    if (Array.isArray(ptrs)) this.#configLists.add(`${target} ${ptrs.map((x) => (x as { id?: unknown }).id).join(',')}`);
    let set = this.#configs.get(target);
    if (set === undefined) this.#configs.set(target, (set = new Set()));
    set.add(b.version);
    // The list it holds now is what a rollback of the chain this config starts (or joins) may restore.
    const a = this.#t.phones.get(target)?.agent;
    if (a !== null && a !== undefined && (a.state as unknown) !== undefined) this.#rollbackTarget(target, `${a.state.listVersion} ${a.state.list.map((p) => p.id).join()}`);
  }

  #rollbackTarget(pid: string, key: string): void {
    let set = this.#rollbackTo.get(pid);
    if (set === undefined) this.#rollbackTo.set(pid, (set = new Set()));
    set.add(key);
  }

  /**
   * config-signed: the config version a phone reports (its status) or confirms
   * (`config/result` ok) is one an operator signed for it. (Whether it ever goes
   * down is judged on the version the phone holds, in {@link tick}: a status may
   * reach a broker late — a QoS 1 message unacknowledged when a connection ended
   * is sent again on the next one, by design — and say what was true then.)
   */
  #onConfigReport(phone: string, kind: string, msg: unknown): void {
    const o = msg as { version?: unknown; ok?: unknown; configVersion?: unknown; online?: unknown; storage?: unknown } | undefined;
    const version = kind === 'status' ? (o?.online === true ? o.configVersion : undefined) : o?.ok === true ? o.version : undefined;
    // The chain is confirmed: nothing more to restore. (Not when rolled back: a power cut may tear the
    // rollback's save, and the boot arms the window again and rolls back once more — seed 2.)
    if (kind === 'config/result' && o?.ok === true) this.#rollbackTo.delete(phone);
    if (typeof version !== 'number') return;
    this.checks++;
    if (version !== 0 && this.#configs.get(phone)?.has(version) !== true) {
      this.violate('config-signed', `${phone} ${kind === 'status' ? 'reports' : 'confirmed'} config version ${version} that no operator signed for it`);
      return;
    }
  }

  /** config-signed on what the phone holds: a version an operator signed for it, never going down within one run. */
  #checkConfigHeld(pid: string, boot: number | null, held: number): void {
    const prev = this.#configHeld.get(pid);
    if (prev !== undefined && prev.boot === boot && prev.version === held) return;
    this.#configHeld.set(pid, { boot, version: held });
    this.checks++;
    if (held !== 0 && this.#configs.get(pid)?.has(held) !== true) this.violate('config-signed', `${pid} holds config version ${held} that no operator signed for it`);
    if (prev !== undefined && prev.boot === boot && held < prev.version) this.violate('config-signed', `${pid}'s config version went down from ${prev.version} to ${held} (an older change taken after a newer one)`);
  }

  #onGenuine(phone: string, issuer: string, body: Record<string, unknown>): void {
    const version = body.version;
    const list = body.list;
    if (typeof version !== 'number' || !Array.isArray(list)) return;
    this.#record(phone, { version, list: list as Signed['list'], issuer, ...(typeof body.phone === 'string' ? { phone: body.phone } : {}) });
    this.checks++;
    // versions-bounded: nothing a call manager issues is more than 24 h ahead of its own wall clock.
    // Judged when the version is first published, against the highest wall clock the issuer's process
    // has had since it started: versions are allocated when the list changes and signed when a phone
    // first needs them, so the clock may have stepped back in between (seeds 7112, 5137); a list
    // re-sent later (an ack carrying the list the phone holds) was judged when it was new.
    const wall = this.#issuerWall(issuer);
    const key = `${issuer} ${version}`;
    const fresh = !this.#judgedVersions.has(key);
    if (fresh) this.#judgedVersions.add(key);
    if (fresh && version > wall + MAX_AHEAD_MS) this.violate('versions-bounded', `${issuer} issued version ${version} for ${phone}, ${Math.round((version - wall) / 3_600_000)} h ahead of its wall clock`);
    // lists-live: a call manager does not put first a member its broker told it is dead.
    const first = (list[0] as { id?: unknown } | undefined)?.id;
    if (typeof first === 'string' && first !== issuer) {
      const dead = this.#deadSince.get(first);
      if (dead !== undefined && this.#t.now() - dead > this.#b.peerDeadMs) this.violate('lists-live', `${issuer} pushed ${phone} a list with ${first} first, dead for ${this.#t.now() - dead} ms`);
    }
  }

  #record(phone: string, entry: Signed): void {
    let byVersion = this.#signed.get(phone);
    if (byVersion === undefined) this.#signed.set(phone, (byVersion = new Map()));
    const at = byVersion.get(entry.version);
    if (at === undefined) byVersion.set(entry.version, [entry]);
    else if (at.length < 8) at.push(entry);
  }

  #onEvent(phone: string, e: unknown): void {
    const ev = e as { type?: unknown; from?: unknown; to?: unknown; reason?: unknown; rehomeMs?: unknown } | undefined;
    if (ev?.type === 'rehomed' && ev.reason === 'services-timeout') return this.#onServicesTimeout(phone, ev.to, typeof ev.rehomeMs === 'number' ? ev.rehomeMs : 0);
    if (ev?.type !== 'rehomed' || typeof ev.from !== 'string') return;
    if (ev.reason !== 'cm-offline' && ev.reason !== 'keepalive-loss' && ev.reason !== 'broker-lost') return;
    this.checks++;
    // no-forged-effect: a phone does not leave, for a failure, a call manager it could use all along.
    const rehomeMs = typeof ev.rehomeMs === 'number' ? ev.rehomeMs : 0;
    const since = this.#reachSince.get(`${phone} ${ev.from}`);
    const decided = this.#t.now() - rehomeMs;
    // reachSince is sampled every 50 ms: a broker that went down since the last sample ends the phone's
    // connection at once (broker-lost), before the sample notices. Unusable now, the failure is real.
    if (since !== undefined && decided - since > this.#b.liveWindowMs && this.#t.reachable(phone, ev.from)) {
      this.violate('no-forged-effect', `${phone} left ${ev.from} (${String(ev.reason)}) though ${ev.from} served and was reachable for ${decided - since} ms before`);
    }
  }

  /**
   * no-forged-effect for services: a phone shows another pointer's services page for
   * `services-timeout` only when its home's server failed. Its home (tried first) having been
   * its home, and that server having answered, all through the window before the decision
   * is a phone leaving a services server that answers. (Services moves change what the phone
   * shows, not its home: home-is-live does not judge them.)
   */
  #onServicesTimeout(phone: string, to: unknown, rehomeMs: number): void {
    if (this.#t.servicesAnswer === undefined) return;
    this.checks++;
    const h = this.#homeSince.get(phone);
    if (h === undefined || h.home === null || h.home === to) return;
    const decided = this.#t.now() - rehomeMs;
    const from = decided - this.#b.servicesWindowMs;
    const up = this.#servicesSince.get(h.home);
    const whole = this.#t.servicesWholeSince?.(phone, h.home) ?? -Infinity;
    if (h.since <= from && up !== undefined && up <= from && whole <= from) {
      this.violate('no-forged-effect', `${phone} showed ${String(to)}'s services (services-timeout) though its home ${h.home} had been its home for ${decided - h.since} ms and its services answered for ${decided - up} ms before (window ${this.#b.servicesWindowMs} ms)`);
    }
  }

  /** After every event; the costly part runs at most every 50 ms of simulated time. */
  /** The highest wall clock `cm`'s running process has had since it started (its wall now when not running). */
  #issuerWall(cm: string): number {
    const wall = this.#t.wallOf(cm);
    const clock = this.#t.cms.get(cm)?.clock ?? null;
    const e = this.#wallMax.get(cm);
    if (e === undefined || e.clock !== clock) {
      this.#wallMax.set(cm, { clock, max: wall });
      return wall;
    }
    e.max = Math.max(e.max, wall);
    return e.max;
  }

  tick(): void {
    const t = this.#t;
    const now = t.now();
    this.#checkLists();
    for (const id of t.cms.keys()) this.#issuerWall(id);
    if (now - this.#lastTick < 50) return;
    this.#lastTick = now;
    for (const id of t.cms.keys()) {
      const s = t.serving(id);
      if (s && !this.#servingSince.has(id)) this.#servingSince.set(id, now);
      if (!s) this.#servingSince.delete(id);
      const h = t.cms.get(id)!;
      if (!h.alive && t.brokerUp(id) && !this.#deadSince.has(id)) this.#deadSince.set(id, now);
      if (h.alive) this.#deadSince.delete(id);
      const sa = t.servicesAnswer?.(id) === true;
      if (sa && !this.#servicesSince.has(id)) this.#servicesSince.set(id, now);
      if (!sa) this.#servicesSince.delete(id);
    }
    for (const [pid, ph] of t.phones) {
      for (const id of t.cms.keys()) {
        const k = `${pid} ${id}`;
        const r = ph.agent !== null && t.reachable(pid, id);
        if (r && !this.#reachSince.has(k)) this.#reachSince.set(k, now);
        if (!r) this.#reachSince.delete(k);
      }
      const agent = ph.agent;
      if (agent === null) {
        this.#badHome.delete(pid);
        this.#homeless.delete(pid);
        this.#homeSince.delete(pid);
        continue;
      }
      if ((agent.state as unknown) === undefined) continue; // still reading its flash
      this.checks++;
      const home = agent.home;
      if (this.#homeSince.get(pid)?.home !== home) this.#homeSince.set(pid, { home, since: now });
      // The version the agent holds (AgentCore.configVersion: what it stores and reports; not in its public face).
      this.#checkConfigHeld(pid, ph.bootedAt, (agent as unknown as { configVersion: number }).configVersion);
      // home-is-live: homed only on a call manager it can use, but for the detection bound.
      if (home !== null && !t.reachable(pid, home)) {
        const b = this.#badHome.get(pid);
        if (b === undefined || b.home !== home) this.#badHome.set(pid, { home, since: now });
        else if (now - b.since > this.#b.detectMs) this.violate('home-is-live', `${pid} homed on ${home} for ${now - b.since} ms while it could not be used (bound ${this.#b.detectMs} ms)`);
      } else this.#badHome.delete(pid);
      // service-when-possible: a phone with a pointer it can use for serviceMs is homed.
      if (home !== null) this.#homeless.delete(pid);
      else if (!this.#homeless.has(pid)) this.#homeless.set(pid, now);
      if (home === null) {
        const booted = this.#homeless.get(pid)!;
        const usable = agent.state.list.map((p) => this.#reachSince.get(`${pid} ${p.id}`)).filter((s): s is number => s !== undefined);
        // Usable all along *in its list*: a list that changed (a rolled-back config's restored list) counts from then.
        const from = Math.max(booted, this.#listSince.get(pid) ?? -Infinity, Math.min(...usable));
        if (usable.length > 0 && now - from > this.#b.serviceMs) this.violate('service-when-possible', `${pid} has had no home for ${now - from} ms though ${agent.state.list.filter((p) => this.#reachSince.has(`${pid} ${p.id}`)).map((p) => p.id).join(',')} could be used (bound ${this.#b.serviceMs} ms)`);
      }
      // durable: every boot finds on flash a list not older than the last one the phone reported acting on.
      const boots = ph.boots.length;
      if ((this.#bootsChecked.get(pid) ?? 0) < boots) {
        const rec = ph.boots[boots - 1]!;
        const acted = this.#acted.get(pid) ?? 0;
        const found = rec.loaded?.pointersVersion ?? 0;
        if (boots > 1 && found < acted) this.violate('durable', `${pid} booted with version ${found} from flash after reporting ${acted}`);
        this.#bootsChecked.set(pid, boots);
      }
    }
  }

  /** lists-signed and versions-bounded, on every change of a phone's held list. */
  #checkLists(): void {
    for (const [pid, ph] of this.#t.phones) {
      const agent = ph.agent;
      if (agent === null) continue;
      const s = agent.state;
      if ((s as unknown) === undefined) continue;
      const version = s.listVersion;
      const ids = s.list.map((p) => p.id);
      const prev = this.#held.get(pid);
      const boot = ph.bootedAt;
      if (prev !== undefined && prev.version === version && prev.boot === boot && prev.ids.join() === ids.join()) continue;
      this.#held.set(pid, { version, ids, boot });
      this.#sinceDown.get(pid)?.add(version);
      if (prev !== undefined && prev.ids.join() !== ids.join()) this.#listSince.set(pid, this.#t.now());
      if (prev === undefined || prev.boot !== boot) continue; // a boot: the durable checker judges what it found
      this.checks++;
      // A rollback of a config that set pointers restores the list held before the chain, at its own version (reconfig.ts).
      // (Kept after a rollback: the boot after a power cut that tore its save rolls back once more, seed 2.)
      const restored = this.#rollbackTo.get(pid)?.has(`${version} ${ids.join()}`) === true;
      // Any other list taken within this run moves the phone on from the rebases it took (replay.ts).
      for (const r of this.#rebases.values()) if (r.phone === pid && r.takenAt !== undefined && r.version !== version) r.movedOn = true;
      const rebase = version < prev.version && !restored ? this.#rebaseTaken(pid, ph, prev.version, version) : false;
      if (version < prev.version) {
        if (restored || rebase) {
          // The documented ways down: durable judges the next boot against the version taken now.
          this.#acted.set(pid, version);
          this.#sinceDown.set(pid, new Set([version]));
          this.wentDown++;
        } else this.violate('versions-bounded', `${pid}'s held list version went down from ${prev.version} to ${version}`);
      }
      if (version === 0 || restored) continue; // the config file's list; a restored one was judged when first taken
      // A config's pointers: taken as an admin list at the version held + 1.
      if (version === prev.version + 1 && this.#configLists.has(`${pid} ${ids.join()}`)) {
        this.#rollbackTarget(pid, `${prev.version} ${prev.ids.join()}`);
        continue;
      }
      const candidates = this.#signed.get(pid)?.get(version) ?? [];
      const ok = candidates.filter((c) => (c.phone === undefined || c.phone === pid) && c.list.every((p) => ids.includes(p.id)));
      if (ok.length === 0) {
        this.violate('lists-signed', `${pid} holds version ${version} [${ids.join(',')}] that no call manager signed for it`);
        continue;
      }
      // An operator's list replaces the whole list (list-merge.ts: it owns nothing, drops what it leaves out).
      if (ok.some((c) => c.operator === true)) continue;
      // Pointers the issuing group does not own stay in the list (a remote site's).
      const issuerGroup = this.#groupOf.get(ok[0]!.issuer) ?? new Set<string>();
      const lost = prev.ids.filter((id) => !issuerGroup.has(id) && !ids.includes(id));
      if (lost.length > 0) this.violate('lists-signed', `${pid} lost ${lost.join(',')} (not owned by ${ok[0]!.issuer}'s group) taking version ${version} [${ids.join(',')}]`);
    }
  }

  /**
   * versions-bounded's documented way down by a rebase: the operator signed for
   * `pid` a rebase from exactly `from` to `to` (recorded from its own publish)
   * that is taken before its `expires` by the phone's wall clock (+ 1000 ms: the
   * phone decided at delivery, this runs after the event) and at most once —
   * not again once the phone took another list since, within a run of its
   * process (a power cut that lost the rebase from flash does not move it on:
   * the same rebase taken again is still the operator's). A replay the phone
   * took is a violation here; false: no such rebase.
   */
  #rebaseTaken(pid: string, ph: PhoneHost, from: number, to: number): boolean {
    const r = this.#rebases.get(`${pid} ${from} ${to}`);
    const again = [...this.#rebases.values()].find((x) => x.phone === pid && x.version === to && x.takenAt !== undefined);
    if (r === undefined) {
      if (again !== undefined) this.violate('versions-bounded', `${pid}'s held list version went down from ${from} to ${to}: the operator's rebase from ${again.rebase} to ${to}, taken at ${again.takenAt} ms, taken again (a replay)`);
      return false;
    }
    this.checks++;
    const wall = ph.host.wall();
    if (r.takenAt !== undefined && r.movedOn === true) {
      this.violate('versions-bounded', `${pid}'s held list version went down from ${from} to ${to} a second time: the operator's rebase sent at ${r.sentAt} ms was taken at ${r.takenAt} ms and the phone had moved on since (a replay)`);
    } else if (wall > r.expires + 1000) {
      this.violate('versions-bounded', `${pid} took the operator's rebase from ${from} to ${to} ${wall - r.expires} ms after its expires (by its wall clock)`);
    }
    r.takenAt = this.#t.now();
    r.movedOn = false;
    return true;
  }

  /** At the end, after the quiet period: fallback. */
  finish(faultsEnd: number): void {
    const t = this.#t;
    const now = t.now();
    if (now - faultsEnd < this.#topo.holdMs + this.#b.fallbackMs) return;
    for (const [pid, ph] of t.phones) {
      const agent = ph.agent;
      if (agent === null || ph.busy) continue;
      this.checks++;
      const want = agent.state.list.find((p) => {
        const since = this.#reachSince.get(`${pid} ${p.id}`);
        return since !== undefined;
      });
      if (want === undefined) continue;
      const since = this.#reachSince.get(`${pid} ${want.id}`)!;
      if (now - since < this.#topo.holdMs + this.#b.fallbackMs) continue;
      if (agent.home !== want.id) this.violate('fallback', `${pid} is on ${agent.home ?? 'nothing'}, not on ${want.id}, its highest pointer usable for ${now - since} ms (bound hold ${this.#topo.holdMs} + ${this.#b.fallbackMs} ms); list [${agent.state.list.map((p) => p.id).join(',')}]`);
    }
  }
}
