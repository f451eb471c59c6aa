/**
 * What a call manager may conclude about its peers, judged from the lists it
 * signs (shared/CONTRACT.md, "MQTT topics": phones and peers act on a state
 * only when it is signed and of the run they saw online, and "an unsigned,
 * forged, empty or replayed `state` changes nothing"; issue 16: nothing the
 * hostile phone publishes "makes a call manager push"). A call manager's
 * group list is its group in config order with every peer it holds offline
 * moved to the end (the `failover` list), so each list it signs says which
 * peers it believes offline. Two rules, from the world's ground truth:
 *
 * - `no-forged-effect` (its push part): no call manager signs a phone a
 *   `failover` list that puts a group member X behind one the group orders
 *   after it — it holds X offline — when X has served all along for the bound
 *   and the signer has been connected to X's broker, its link whole both
 *   ways, all along for the same bound. Then X's retained state and every
 *   state since were X's onlines, so only a forged or replayed offline can be
 *   behind it. Bound: the phones' `liveWindowMs` (round + 2000 ms), far more
 *   than a state takes to arrive (≤ 30 ms) and to be republished over a
 *   replay (REPUBLISH_GAP_MS, 200 ms).
 * - `no-replayed-online`: once a call manager was told a peer's will (the
 *   broker published it, and delivered it on a connection the signer held
 *   subscribed, link whole, for {@link TOLD_MS}), it signs no list with that
 *   peer first until the peer connects again: only a new connection of the
 *   peer can bring an online it may believe; a recorded one replayed must
 *   change nothing. ({@link Checkers}' `lists-live` judges the same lists by
 *   how long the member has been dead, 55 s, whoever told whom.)
 */
import { topicMatches, type Broker, type Conn, type Net } from './broker.js';
import type { CmHost } from './hosts.js';
import type { Topology } from './group.js';
import { openSigned, type InvariantName } from './invariants.js';

/** A will delivered (≤ 30 ms) and handled by its receiver well within this (ms). */
export const TOLD_MS = 1000;

export interface LivenessTruth {
  now(): number;
  net: Net;
  cms: Map<string, CmHost>;
  serving(cm: string): boolean;
}

const STATE = /^ipphone\/v1\/cm\/([^/]+)\/state$/;
const LIST = /^ipphone\/v1\/phone\/([^/]+)\/(pointers|ack)$/;

export class LivenessChecks {
  checks = 0;
  readonly #t: LivenessTruth;
  readonly #windowMs: number;
  readonly #violate: (invariant: InvariantName, detail: string) => void;
  /** Group member → its priority (config order). */
  readonly #rank = new Map<string, number>();
  /** Per cm: since when serving continuously. */
  readonly #servingSince = new Map<string, number>();
  /** `${cm} ${broker}`: since when the cm has held a connection there, its link whole, not paused. */
  readonly #linkedSince = new Map<string, number>();
  /** Wills on their way to a peer: the connection that carries it, since when it was last seen paused. */
  readonly #telling: { peer: string; of: string; conn: Conn; broker: Broker; at: number }[] = [];
  /** `${peer} ${of}` → when the peer's process (started at `started`) was surely told `of`'s will. */
  readonly #told = new Map<string, { at: number; started: number | null }>();
  #lastTick = -Infinity;

  constructor(t: LivenessTruth, topo: Topology, windowMs: number, violate: (invariant: InvariantName, detail: string) => void) {
    this.#t = t;
    this.#windowMs = windowMs;
    this.#violate = violate;
    // Members a membership change adds come last (src/sim/rebalance.ts appends them).
    [...topo.group, ...((topo as Topology & { spare?: { id: string }[] }).spare ?? [])].forEach((c, i) => this.#rank.set(c.id, i));
  }

  /** Every publish a broker accepted (a will too: its connection is already closed). */
  onPublish(broker: Broker, from: Conn | null, topic: string, payload: Buffer): void {
    if (from === null) return;
    const s = STATE.exec(topic);
    if (s !== null) {
      const of = s[1]!;
      // The will of `of`'s own session: fired by the broker (its connection is gone), or published by
      // the call manager itself as it stops cleanly. Every peer with a connection subscribed here is told.
      if (from.clientId !== `ipphone-cm-${of}` || (from.open && from.will?.payload.equals(payload) !== true)) return;
      for (const [peer, h] of this.#t.cms) {
        if (peer === of || !h.alive || this.#t.net.cut(h.host.id, broker.id).b2h) continue;
        const c = broker.conns().find((x) => x.host === h.host && x.clientOpen && [...x.subs.keys()].some((f) => topicMatches(f, topic)));
        if (c !== undefined) this.#telling.push({ peer, of, conn: c, broker, at: this.#t.now() });
      }
      return;
    }
    const m = LIST.exec(topic);
    if (m === null || !this.#t.cms.has(from.identity)) return;
    let msg: unknown;
    try {
      msg = JSON.parse(payload.toString('utf8'));
    } catch {
      return;
    }
    const o = msg as Record<string, unknown> | null;
    const env = m[2] === 'pointers' ? o : typeof o?.pointers === 'object' ? o.pointers : undefined;
    const opened = env === undefined || env === null ? null : openSigned(env);
    if (opened === null || !Array.isArray(opened.body.list)) return;
    const ids = (opened.body.list as { id?: unknown }[]).map((p) => p.id).filter((id): id is string => typeof id === 'string');
    this.#judge(from.identity, m[1]!, ids, opened.body.reason);
  }

  /** A broker accepted a connection: a call manager's own session is a new connection of it. */
  onConnect(_broker: string, clientId: string): void {
    const of = /^ipphone-cm-(.+)$/.exec(clientId)?.[1];
    if (of === undefined || !this.#t.cms.has(of)) return;
    for (const k of [...this.#told.keys()]) if (k.endsWith(` ${of}`)) this.#told.delete(k);
    for (let i = this.#telling.length - 1; i >= 0; i--) if (this.#telling[i]!.of === of) this.#telling.splice(i, 1);
  }

  #judge(signer: string, phone: string, ids: string[], reason: unknown): void {
    const now = this.#t.now();
    this.checks++;
    const first = ids[0];
    const told = first === undefined ? undefined : this.#told.get(`${signer} ${first}`);
    // A process started since knows nothing of what the last one was told.
    if (told !== undefined && told.started === this.#t.cms.get(signer)!.startedAt) {
      this.#violate('no-replayed-online', `${signer} signed ${phone} a list with ${first!} first, ${now - told.at} ms after it was told ${first!}'s will (no new connection of ${first!} since)`);
    }
    if (reason !== 'failover' || !this.#rank.has(signer)) return;
    const group = ids.filter((id) => this.#rank.has(id));
    for (let i = 0; i < group.length; i++) {
      const x = group[i]!;
      if (x === signer || !group.slice(0, i).some((y) => this.#rank.get(y)! > this.#rank.get(x)!)) continue;
      const serving = this.#servingSince.get(x);
      const h = this.#t.cms.get(x)!;
      const broker = this.#t.net.byUrl(h.spec.broker)!;
      const linked = this.#linkedSince.get(`${signer} ${broker.id}`);
      // Sampled every 50 ms: what ended since the last sample (a crash a few ms ago) counts at once.
      if (serving === undefined || linked === undefined || !this.#t.serving(x)) continue;
      const all = now - Math.max(serving, linked);
      if (all > this.#windowMs) this.#violate('no-forged-effect', `${signer} signed ${phone} a failover list [${ids.join(',')}] holding ${x} offline, though ${x} served and ${signer} was connected to its broker ${broker.id} for ${all} ms (bound ${this.#windowMs} ms)`);
    }
  }

  /** After every event; the ground truth is sampled at most every 50 ms of simulated time. */
  tick(): void {
    const t = this.#t;
    const now = t.now();
    if (now - this.#lastTick < 50) return;
    this.#lastTick = now;
    for (const [id, h] of t.cms) {
      if (t.serving(id)) {
        if (!this.#servingSince.has(id)) this.#servingSince.set(id, now);
      } else this.#servingSince.delete(id);
      for (const b of t.net.brokers.values()) {
        const k = `${id} ${b.id}`;
        const cut = t.net.cut(h.host.id, b.id);
        const linked = h.alive && !h.host.paused && b.up && !cut.h2b && !cut.b2h && b.conns().some((c) => c.host === h.host && c.clientOpen);
        if (!linked) this.#linkedSince.delete(k);
        else if (!this.#linkedSince.has(k)) this.#linkedSince.set(k, now);
      }
    }
    for (let i = this.#telling.length - 1; i >= 0; i--) {
      const w = this.#telling[i]!;
      const h = t.cms.get(w.peer)!;
      if (!w.conn.open || !w.conn.clientOpen || t.net.cut(h.host.id, w.broker.id).b2h) {
        this.#telling.splice(i, 1);
        continue;
      }
      // A paused receiver handles what it was sent when it resumes: told once it ran that long since.
      if (h.host.paused) w.at = now;
      else if (now - w.at >= TOLD_MS) {
        this.#telling.splice(i, 1);
        const k = `${w.peer} ${w.of}`;
        if (this.#told.get(k)?.started !== h.startedAt) this.#told.set(k, { at: now, started: h.startedAt });
      }
    }
  }
}
