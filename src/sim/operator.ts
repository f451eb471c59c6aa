/**
 * Remote configuration changes and operator lists during a run (issue 16's
 * workloads), and the hostile phone's attacks on them.
 *
 * The operator is an identity of its own (`op-1`, an `--operator` of the
 * printed ACL) doing what `ipphone-admin config` and `ipphone-admin pointers`
 * do (src/admin/sign-send.ts): connect to one of the group's brokers with a
 * fresh client id, read the phone's retained status for the version it holds,
 * build the body with the admin's own builders (src/admin/bodies.ts
 * `configBody`, `pointersBody`: phone-bound, version max(now, held + 1)), sign
 * it with the trusted key, publish it QoS 1 and end the session cleanly. The
 * MQTT exchange is modelled here (sign-send.ts opens a real mqtt.js client and
 * reads key files); the bodies, the signature and everything the phone does
 * with them are the product's. Re-provisioning ({@link Operator.scheduleReprovision},
 * a fork of its own): configs that set `pointers` (one that cannot be confirmed
 * is rolled back) and `--rebase`, the documented ways a held version goes down.
 *
 * Config patches change only what the world's bounds do not depend on
 * (services deadline up to {@link SERVICES_TIMEOUT_MAX_MS} and refresh, the
 * confirmation window, a restart-only field) or are refused by the phone (a
 * fixed field, an invalid value); `pointers` only in re-provisioning; never
 * keep-alive or hold timing.
 * Operator lists are orders of the configured pointers, sometimes without the
 * remote site's.
 *
 * The hostile phone (hostile.ts) also replays the genuine config messages it
 * recorded — on their own phone's topic (an older version), another phone's
 * (bound to someone else) or its own — and forges badly signed and unsigned
 * ones. Under the printed ACL no phone may write a config topic, so these
 * reach phones only on an open broker.
 */
import { configBody, pointersBody, rebaseBody } from '../admin/bodies.js';
import { errorMessage } from '../lib/errors.js';
import { signEnvelope } from '../protocol/envelope.js';
import { topics } from '../protocol/topics.js';
import type { Pointer } from '../protocol/types.js';
import type { Conn, Net } from './broker.js';
import { Host } from './clock.js';
import { allCms, KEY_ID, PREFIX, signingKey, type Topology } from './group.js';
import type { HostilePhone } from './hostile.js';
import { SERVICES_TIMEOUT_MAX_MS } from './invariants.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';
import { WhileHostile } from './while-hostile.js';

export const OPERATOR_ID = 'op-1';

/** A pointer no broker of the world answers for: a config setting only it cannot be confirmed (a rollback). */
export const UNREACHABLE: Pointer = { id: 'cm-x', broker: 'mqtt://10.0.7.1:1883', services: 'http://10.0.7.1:8080/ccmcip/menu.jsp' };

/** `below`: `--version` set to the held version less this (ms); absent: the default, the operator's wall clock. */
export type Action = { kind: 'config'; patch: Record<string, unknown> } | { kind: 'pointers'; list: Pointer[] } | { kind: 'rebase'; list: Pointer[]; below?: number };

/** How long the operator waits for a phone's retained status after subscribing (sign-send.ts RETAINED_GRACE_MS). */
const RETAINED_GRACE_MS = 300;

const t = topics(PREFIX);

/** The config patches an operator sends: most apply live, two are refused by the phone. */
function drawPatch(r: Rng): Record<string, unknown> {
  switch (r.int(0, 5)) {
    case 0:
      return { services: { timeoutMs: r.int(1000, SERVICES_TIMEOUT_MAX_MS) } };
    case 1:
      return { services: { refreshMs: r.int(20_000, 120_000) } };
    case 2:
      return { remoteConfig: { confirmMs: r.int(20_000, 60_000) } };
    case 3:
      // A field that takes effect at the next start: persisted now, `restartRequired` in the result.
      return { mqtt: { maxQueue: r.int(50, 500) } };
    case 4:
      // A fixed field: refused (`cannot be changed remotely`), its version consumed.
      return { phoneId: 'p-9999' };
    default:
      // Invalid: refused by the schema.
      return { services: { timeoutMs: 'soon' } };
  }
}

export class Operator {
  readonly host: Host;
  #n = 0;
  /** Messages the operator sent (figures, tests). */
  sent = 0;
  /** Re-provisioning acts (figures, tests): `config-pointers`, `config-unreachable`, `rebase`, `rebase-refused`. */
  readonly reprovisioned: Record<string, number> = {};
  /** Members the operator removed from the group: its lists leave them out from then on (no draw changes). */
  readonly removed = new Set<string>();

  constructor(
    readonly world: World,
    readonly net: Net,
    readonly topo: Topology,
    readonly rng: Rng,
    /** The broker of the phone's home now, when it has one (what the operator's console shows). */
    readonly homeBroker: (phone: string) => string | undefined = () => undefined,
  ) {
    this.host = new Host(world, OPERATOR_ID);
  }

  /**
   * Draw the run's operator actions: 0..4 of them between 8 s and 110 s, each to one phone through one broker.
   * Returns when the last operator list is sent (0 without one): the quiet period runs from it, as from a fault.
   */
  schedule(): { lastPointersAt: number } {
    const r = this.rng;
    const n = r.int(0, 4);
    let lastPointersAt = 0;
    for (let i = 0; i < n; i++) {
      const at = r.int(8_000, 110_000);
      const phone = r.pick(this.topo.phones);
      // Mostly the broker the console shows the phone on (a clean session reaches only a phone connected there), else any of the group's.
      const anyBroker = r.pick(this.topo.brokers.filter((b) => this.topo.group.some((c) => c.broker === b.url))).url;
      const viaHome = r.chance(0.7);
      const action = r.chance(0.5) ? { kind: 'config' as const, patch: drawPatch(r) } : { kind: 'pointers' as const, list: this.#drawList(r) };
      if (action.kind === 'pointers') lastPointersAt = Math.max(lastPointersAt, at);
      this.world.at(at, () => this.#send((viaHome ? this.homeBroker(phone) : undefined) ?? anyBroker, phone, action));
    }
    return { lastPointersAt };
  }

  /**
   * Re-provisioning (fork `reprovision`, drawn apart so the actions above keep their draws): 0..2
   * actions per run between 8 s and 50 s, each to one phone through the broker of its home (else
   * any group broker). Either a signed `config` that sets `pointers` — two in three a new order of
   * the configured pointers (applied as an admin list at the held version + 1, confirmed once the
   * phone is homed on one), one in three a list of only `cm-x`, a member no broker answers for (the
   * phone cannot home: it rolls the change back after `remoteConfig.confirmMs` and restores the list
   * it held at its own version) — or `ipphone-admin pointers --rebase` of the configured pointers
   * (`rebase` = the version the phone's status shows, expiring in 10 minutes; version = the
   * operator's wall clock, the default, which the command refuses when the phone holds no version
   * beyond it — or, half of the time, `--version` 1..600,000 ms below the held version, so the
   * phone takes one in most runs that draw it). Returns when the last one's effects are over: a rollback window of the
   * longest `confirmMs` (60 s) and 5 s after it.
   */
  scheduleReprovision(r: Rng): { disturbedUntil: number } {
    const n = r.int(0, 2);
    let disturbedUntil = 0;
    for (let i = 0; i < n; i++) {
      const at = r.int(8_000, 50_000);
      const phone = r.pick(this.topo.phones);
      const anyBroker = r.pick(this.topo.brokers.filter((b) => this.topo.group.some((c) => c.broker === b.url))).url;
      const kind = r.int(0, 2);
      const list = this.#drawList(r);
      const action =
        kind === 2
          ? { kind: 'rebase' as const, list, ...(r.chance(0.5) ? { below: r.int(1, 600_000) } : {}) }
          : { kind: 'config' as const, patch: { pointers: r.chance(2 / 3) ? list : [UNREACHABLE] } };
      disturbedUntil = Math.max(disturbedUntil, at + (action.kind === 'config' && action.patch.pointers[0] === UNREACHABLE ? 65_000 : 5_000));
      this.world.at(at, () => this.#send(this.homeBroker(phone) ?? anyBroker, phone, action));
    }
    return { disturbedUntil };
  }

  /**
   * A rebase and then a config (fork `reprovision-again`, drawn apart so every other draw stays): in a third
   * of the runs, at 8..50 s, `ipphone-admin pointers --rebase --version <held − 1>` to one phone and 1..4 s
   * later a config that sets its pointers — taken at the held version + 1, the very version the rebase
   * named: a recorded rebase replayed then must change nothing (replay.ts; agent-messages.ts remembers the
   * rebases it took). Returns when its effects are over (5 s after the config).
   */
  scheduleRebaseThenConfig(r: Rng): { disturbedUntil: number } {
    if (!r.chance(1 / 3)) return { disturbedUntil: 0 };
    const at = r.int(8_000, 50_000);
    const gap = r.int(1_000, 4_000);
    const phone = r.pick(this.topo.phones);
    const anyBroker = r.pick(this.topo.brokers.filter((b) => this.topo.group.some((c) => c.broker === b.url))).url;
    const rebased = this.#drawList(r);
    const pointers = this.#drawList(r);
    this.world.at(at, () => this.#send(this.homeBroker(phone) ?? anyBroker, phone, { kind: 'rebase', list: rebased, below: 1 }));
    this.world.at(at + gap, () => this.#send(this.homeBroker(phone) ?? anyBroker, phone, { kind: 'config', patch: { pointers } }));
    return { disturbedUntil: at + gap + 5_000 };
  }

  /** One action now, to `phone` through the broker of its home (else the first group broker): a plant's (run.ts). */
  sendNow(phone: string, action: Action): void {
    const anyBroker = this.topo.brokers.find((b) => this.topo.group.some((c) => c.broker === b.url))!.url;
    this.#send(this.homeBroker(phone) ?? anyBroker, phone, action);
  }

  #count(k: string): void {
    this.reprovisioned[k] = (this.reprovisioned[k] ?? 0) + 1;
  }

  #drawList(r: Rng): Pointer[] {
    const cms = allCms(this.topo);
    const ids = [...this.topo.pointers];
    for (let i = ids.length - 1; i > 0; i--) {
      const j = r.int(0, i);
      [ids[i], ids[j]] = [ids[j]!, ids[i]!];
    }
    const kept = r.chance(0.2) ? ids.filter((id) => !this.topo.remote.some((c) => c.id === id)) : ids;
    return kept.map((id) => {
      const c = cms.find((m) => m.id === id)!;
      return { id: c.id, broker: c.broker, services: c.services };
    });
  }

  /** One `ipphone-admin config|pointers` run against `url`; gives up (as the command exits 1) when it cannot connect. */
  #send(url: string, phone: string, action: Action): void {
    const statusTopic = t.phoneStatus(phone);
    let held: number | undefined;
    const field = action.kind === 'config' ? 'configVersion' : 'pointersVersion';
    this.net.connect(
      this.host,
      url,
      {
        identity: OPERATOR_ID,
        clientId: `ipphone-admin-${OPERATOR_ID}-${++this.#n}`,
        keepaliveMs: 30_000,
        connectTimeoutMs: 10_000,
        alive: () => true,
        sink: {
          message: (topic, payload, retain) => {
            if (topic !== statusTopic || !retain) return;
            try {
              const v = (JSON.parse(payload.toString('utf8')) as Record<string, unknown>)[field];
              if (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0) held = v;
            } catch {
              // Not JSON: no version to go by.
            }
          },
          closed: () => undefined,
        },
      },
      (res) => {
        if (!res.ok) {
          this.world.trace(`operator ${action.kind} ${phone} via ${url}: ${res.reason}`);
          return;
        }
        const c = res.conn;
        this.net.send(c, (b) => b.subscribe(c, [statusTopic], 1));
        this.world.after(RETAINED_GRACE_MS, () => this.#publish(c, phone, action, held));
      },
    );
  }

  #publish(c: Conn, phone: string, action: Action, held: number | undefined): void {
    if (!c.clientOpen) return;
    const o = { phone, now: this.host.wall(), ...(held !== undefined ? { held } : {}) };
    if (action.kind !== 'config' && this.removed.size > 0) action = { ...action, list: action.list.filter((p) => !this.removed.has(p.id)) };
    if (action.kind === 'config' && Array.isArray(action.patch.pointers) && this.removed.size > 0) action = { ...action, patch: { pointers: (action.patch.pointers as Pointer[]).filter((p) => !this.removed.has(p.id)) } };
    let body;
    try {
      body = action.kind === 'config' ? configBody(action.patch, o) : action.kind === 'rebase' ? rebaseBody(action.list, 'admin', { ...o, held, expiresInMs: 600_000, ...(action.below !== undefined && held !== undefined ? { version: Math.max(1, held - action.below) } : {}) }) : pointersBody(action.list, 'admin', o);
    } catch (err) {
      // The command refuses (exit 1): nothing to rebase from, or nothing above the operator's clock.
      this.world.trace(`operator ${action.kind} ${phone}: ${errorMessage(err)}`);
      this.#count('rebase-refused');
      this.net.close(c, true);
      return;
    }
    const topic = action.kind === 'config' ? t.phoneConfig(phone) : t.phonePointers(phone);
    const payload = Buffer.from(JSON.stringify(signEnvelope(body, signingKey, KEY_ID)));
    this.sent++;
    if (action.kind === 'rebase') this.#count('rebase');
    else if (action.kind === 'config' && Array.isArray(action.patch.pointers)) this.#count(action.patch.pointers[0] === UNREACHABLE ? 'config-unreachable' : 'config-pointers');
    this.world.trace(`operator ${action.kind} ${phone} v${body.version}${action.kind !== 'config' ? ` [${action.list.map((p) => p.id).join(',')}]` : ` ${JSON.stringify(action.patch)}`}`);
    this.net.send(c, (b) => {
      b.unsubscribe(c, [t.phoneStatus(phone)]);
      b.publish(c, topic, payload, false);
    });
    // The command waits for the phone's answer, then ends its session cleanly.
    this.world.after(5_000, () => this.net.close(c, true));
  }
}

/** The hostile phone's attacks on remote configuration, on a fork of their own. */
export class HostileConfig extends WhileHostile {
  constructor(
    world: World,
    hostile: HostilePhone,
    readonly topo: Topology,
    rng: Rng,
  ) {
    super(world, hostile, rng);
  }

  /** One forged or replayed config, while the hostile phone is active (WhileHostile). */
  protected act(): number {
    const r = this.rng;
    const victim = r.pick(this.topo.phones);
    const genuine = this.hostile.recorded.filter((m) => /\/phone\/[^/]+\/config$/.test(m.topic));
    const wall = this.hostile.host.wall();
    let topic = t.phoneConfig(victim);
    let payload: Buffer;
    const kind = r.int(0, 2);
    if (kind === 0 && genuine.length > 0) {
      // A genuine change again: on its own topic (older than what the phone holds by now), or another phone's.
      const m = r.pick(genuine);
      if (r.chance(0.5)) topic = m.topic;
      payload = m.payload;
    } else if (kind === 1) {
      const body = Buffer.from(JSON.stringify({ version: wall + 1e9, config: { services: { timeoutMs: 100 } }, phone: victim })).toString('base64');
      payload = Buffer.from(JSON.stringify({ kid: KEY_ID, body, sig: 'AAAA' }));
    } else {
      payload = Buffer.from(JSON.stringify({ version: wall + 1e9, config: { services: { timeoutMs: 100 } }, phone: victim }));
    }
    this.hostile.send(r, topic, payload, r.chance(0.2));
    return r.int(200, 2000);
  }
}
