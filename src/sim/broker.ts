/**
 * A broker per site with the MQTT rules the product relies on, and the links
 * between hosts and brokers:
 *
 * - retained messages (an empty payload clears one), kept across a broker
 *   restart (mosquitto `persistence true`);
 * - wills on unclean loss only: a DISCONNECT discards the will; a dropped
 *   socket, a keep-alive timeout (1.5 × keep-alive) or a client-id takeover
 *   publishes it (its topic checked against the ACL when it fires);
 * - per-connection FIFO in each direction, so per-publisher per-topic order;
 * - client-id takeover: a second CONNECT with a live client id closes the old
 *   connection and fires its will;
 * - the ACL `ipphone-admin acl` prints (src/admin/acl.ts `aclRules`), enforced
 *   per identity on publish and on delivery (retained included), as mosquitto
 *   does; or an open broker, where anyone may do anything;
 * - clean sessions only (what the product uses): QoS 0 and QoS 1 in flight are
 *   lost with the connection; nothing is redelivered to a new one.
 *
 * Links drop nothing while up, delay each message 1..maxDelayMs (in order),
 * and may be cut host→broker, broker→host or both (a blackhole: no RST, both
 * ends find out by keep-alive). What a live connection sends over a cut link
 * is held, as TCP retransmits it, and arrives in order when the link heals —
 * unless the connection has ended by then (seed 9270: a call manager's online
 * published during a 15 s cut shorter than its keep-alive was dropped, and its
 * peers held it offline for good).
 */
import { aclRules, type AclRule } from '../admin/acl.js';
import type { Host } from './clock.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

/** Per filter: null for one without wildcards (it matches itself alone), else its answers by topic. */
const matchCache = new Map<string, Map<string, boolean> | null>();

/**
 * Whether `topic` matches the MQTT filter `filter` (`+`, `#`); memoised per
 * filter (filters are few, topics repeat; the hottest path of a run: every
 * publish asks it for every subscription of every connection).
 */
export function topicMatches(filter: string, topic: string): boolean {
  let byTopic = matchCache.get(filter);
  if (byTopic === undefined) {
    if (matchCache.size > 10_000) matchCache.clear();
    matchCache.set(filter, (byTopic = filter.includes('+') || filter.includes('#') ? new Map() : null));
  }
  if (byTopic === null) return filter === topic;
  let m = byTopic.get(topic);
  if (m === undefined) {
    if (byTopic.size > 20_000) byTopic.clear();
    byTopic.set(topic, (m = matchUncached(filter, topic)));
  }
  return m;
}

function matchUncached(filter: string, topic: string): boolean {
  const f = filter.split('/');
  const t = topic.split('/');
  for (let i = 0; i < f.length; i++) {
    const p = f[i]!;
    if (p === '#') return true;
    if (i >= t.length) return false;
    if (p !== '+' && p !== t[i]) return false;
  }
  return f.length === t.length;
}

/** Access control by identity (a certificate CN). */
export interface Acl {
  canWrite(identity: string, topic: string): boolean;
  canRead(identity: string, topic: string): boolean;
}

/** Anyone may publish and read anything (a broker without the printed ACL). */
export const openAcl: Acl = { canWrite: () => true, canRead: () => true };

/** The printed ACL of a group, evaluated as mosquitto does: the identity's `user` lines plus every `pattern` line with `%u` = the identity. */
export function printedAcl(prefix: string, callManagers: readonly string[], operators: readonly string[] = []): Acl {
  const r = aclRules({ prefix, callManagers, operators });
  const users = new Map<string, AclRule[]>();
  for (const u of [...r.callManagers, ...r.operators]) users.set(u.id, u.rules);
  const cache = new Map<string, boolean>();
  const allowed = (identity: string, access: 'read' | 'write', topic: string): boolean => {
    const key = `${identity}\u0000${access}\u0000${topic}`;
    const hit = cache.get(key);
    if (hit !== undefined) return hit;
    const rules = [...(users.get(identity) ?? []), ...r.phone.map((p) => ({ access: p.access, topic: p.topic.replaceAll('%u', identity) }))];
    const ok = rules.some((rule) => rule.access === access && topicMatches(rule.topic, topic));
    if (cache.size > 50_000) cache.clear();
    cache.set(key, ok);
    return ok;
  };
  return { canWrite: (id, t) => allowed(id, 'write', t), canRead: (id, t) => allowed(id, 'read', t) };
}

export interface Will {
  topic: string;
  payload: Buffer;
  qos: 0 | 1;
  retain: boolean;
}

/** The client end of one connection: how the broker reaches it. */
export interface ClientSink {
  message(topic: string, payload: Buffer, retain: boolean): void;
  /** The connection is gone as the client sees it. */
  closed(): void;
}

export type ConnectOutcome = { ok: true; conn: Conn } | { ok: false; reason: 'connect-failed' | 'connect-timeout' };

/** One connection, from CONNECT to its end. */
export class Conn {
  open = true;
  /** The client still believes it is connected. */
  clientOpen = true;
  readonly subs = new Map<string, 0 | 1>();
  upFree = 0;
  downFree = 0;
  /** Sent over a cut link while the connection lives: retransmitted, in order, when the link heals (TCP). */
  heldUp: (() => void)[] = [];
  heldDown: (() => void)[] = [];
  constructor(
    readonly id: number,
    readonly broker: Broker,
    readonly host: Host,
    readonly identity: string,
    readonly clientId: string,
    public will: Will | undefined,
    readonly keepaliveMs: number,
    readonly sink: ClientSink,
  ) {}
}

/** Something that watches every accepted publish (the checkers, the hostile phone's recorder). */
export type PublishObserver = (broker: Broker, from: Conn | null, topic: string, payload: Buffer, retain: boolean) => void;

export class Net {
  readonly brokers = new Map<string, Broker>();
  /** Cut directions by `${hostId} ${brokerId}`. */
  readonly #cuts = new Map<string, { h2b: boolean; b2h: boolean }>();
  readonly observers: PublishObserver[] = [];
  /** Called for every connection a broker accepts. */
  readonly onAccept: ((broker: string, clientId: string) => void)[] = [];
  #connId = 0;

  constructor(
    readonly world: World,
    readonly rng: Rng,
    readonly maxDelayMs: number,
  ) {}

  addBroker(id: string, url: string, acl: Acl): Broker {
    const b = new Broker(this, id, url, acl);
    this.brokers.set(url, b);
    return b;
  }

  byUrl(url: string): Broker | undefined {
    return this.brokers.get(url);
  }

  delay(): number {
    return this.rng.int(1, this.maxDelayMs);
  }

  cut(host: string, broker: string): { h2b: boolean; b2h: boolean } {
    return this.#cuts.get(`${host} ${broker}`) ?? { h2b: false, b2h: false };
  }

  /** Cut or heal a link; open connections over a cut link end by keep-alive on each side that misses the other. */
  setCut(host: Host, broker: Broker, h2b: boolean, b2h: boolean): void {
    this.#cuts.set(`${host.id} ${broker.id}`, { h2b, b2h });
    this.world.trace(`link ${host.id}~${broker.id} h2b=${h2b ? 'cut' : 'up'} b2h=${b2h ? 'cut' : 'up'}`);
    for (const c of broker.conns()) {
      if (c.host !== host) continue;
      // The link heals: TCP retransmits what each live connection sent meanwhile, in order.
      if (!h2b) for (const f of c.heldUp.splice(0)) f();
      if (!b2h) for (const f of c.heldDown.splice(0)) f();
    }
    if (!h2b && !b2h) return;
    for (const c of broker.conns()) {
      if (c.host !== host) continue;
      const jitter = 0.6 + 0.4 * this.rng.next();
      // The broker misses the client's pings (h2b) or the client's pings still arrive: only h2b times the broker out.
      if (h2b) this.world.after(Math.round(c.keepaliveMs * 1.5 * jitter), () => { if (this.cut(host.id, broker.id).h2b) broker.drop(c, 'keepalive-timeout'); });
      // The client misses the broker's PINGRESP either way.
      this.world.after(Math.round(c.keepaliveMs * (1 + 0.5 * jitter)), () => {
        const k = this.cut(host.id, broker.id);
        if (k.h2b || k.b2h) this.clientLost(c);
      });
    }
  }

  nextConnId(): number {
    return ++this.#connId;
  }

  /** The client side ends (it noticed the loss); the broker side is left as it is. */
  clientLost(c: Conn): void {
    if (!c.clientOpen) return;
    c.clientOpen = false;
    c.host.run(() => c.sink.closed());
  }

  /**
   * One connection attempt from `host`. The outcome arrives later as a call
   * of `done` (on the host, so held while it is paused).
   */
  connect(
    host: Host,
    url: string,
    o: { identity: string; clientId: string; will?: Will; keepaliveMs: number; connectTimeoutMs: number; sink: ClientSink; alive: () => boolean },
    done: (r: ConnectOutcome) => void,
  ): void {
    const b = this.byUrl(url);
    const finish = (r: ConnectOutcome, after: number): void => {
      this.world.after(after, () => host.run(() => (o.alive() ? done(r) : r.ok && b?.drop(r.conn, 'gone'))));
    };
    if (b === undefined) return finish({ ok: false, reason: 'connect-failed' }, this.delay());
    const k = this.cut(host.id, b.id);
    if (k.h2b || k.b2h) return finish({ ok: false, reason: 'connect-timeout' }, o.connectTimeoutMs);
    if (!b.up) return finish({ ok: false, reason: 'connect-failed' }, 2 * this.delay());
    this.world.after(this.delay(), () => {
      const k2 = this.cut(host.id, b.id);
      if (!b.up || k2.h2b) return finish({ ok: false, reason: b.up ? 'connect-timeout' : 'connect-failed' }, b.up ? o.connectTimeoutMs : this.delay());
      const conn = b.accept(host, o.identity, o.clientId, o.will, o.keepaliveMs, o.sink);
      conn.downFree = this.world.now;
      const at = this.world.now + this.delay();
      conn.downFree = at;
      this.world.at(at, () => {
        if (!conn.open) return host.run(() => (o.alive() ? done({ ok: false, reason: 'connect-failed' }) : undefined));
        if (this.cut(host.id, b.id).b2h) {
          // CONNACK lost: the client times out; the broker keeps the half-open connection until its keep-alive says otherwise.
          this.world.after(Math.round(conn.keepaliveMs * 1.5), () => b.drop(conn, 'keepalive-timeout'));
          conn.clientOpen = false;
          return finish({ ok: false, reason: 'connect-timeout' }, o.connectTimeoutMs);
        }
        host.run(() => {
          if (o.alive()) done({ ok: true, conn });
          else b.drop(conn, 'gone');
        });
      });
    });
  }

  /** Client → broker, in order on the connection; held while the link is cut (lost if the connection ends first). */
  send(c: Conn, fn: (b: Broker) => void): void {
    if (!c.clientOpen) return;
    const b = c.broker;
    if (this.cut(c.host.id, b.id).h2b) {
      c.heldUp.push(() => {
        if (c.open) this.send(c, fn);
      });
      return;
    }
    const at = Math.max(this.world.now + this.delay(), c.upFree);
    c.upFree = at;
    this.world.at(at, () => {
      if (c.open && b.up) fn(b);
    });
  }

  /** Broker → client, in order on the connection; held while the link is cut (lost if the connection ends first). */
  deliver(c: Conn, topic: string, payload: Buffer, retain: boolean): void {
    if (this.cut(c.host.id, c.broker.id).b2h) {
      c.heldDown.push(() => {
        if (c.open) this.deliver(c, topic, payload, retain);
      });
      return;
    }
    const at = Math.max(this.world.now + this.delay(), c.downFree);
    c.downFree = at;
    this.world.at(at, () => {
      if (!c.clientOpen) return;
      c.host.run(() => {
        if (c.clientOpen) c.sink.message(topic, payload, retain);
      });
    });
  }

  /** A PUBACK (or any reply) back to the client, in order; held while the link is cut (lost if the connection ends first). */
  deliverAck(c: Conn, fn: () => void): void {
    if (this.cut(c.host.id, c.broker.id).b2h) {
      c.heldDown.push(() => {
        if (c.open) this.deliverAck(c, fn);
      });
      return;
    }
    const at = Math.max(this.world.now + this.delay(), c.downFree);
    c.downFree = at;
    this.world.at(at, () => {
      if (c.clientOpen) c.host.run(fn);
    });
  }

  /** The client's socket closes: with `clean` a DISCONNECT goes first (no will). The broker learns it in order, if the link lets it. */
  close(c: Conn, clean: boolean): void {
    if (!c.clientOpen) return;
    c.clientOpen = false;
    const b = c.broker;
    if (this.cut(c.host.id, b.id).h2b) {
      // No FIN reaches the broker: it times the connection out (and fires the will).
      this.world.after(Math.round(c.keepaliveMs * 1.5), () => b.drop(c, 'keepalive-timeout'));
      return;
    }
    const at = Math.max(this.world.now + this.delay(), c.upFree);
    c.upFree = at;
    this.world.at(at, () => (clean ? b.disconnect(c) : b.drop(c, 'socket-closed')));
  }

  /** The host lost power or its NIC: nothing more leaves it; brokers time its connections out. */
  vanish(c: Conn): void {
    if (!c.clientOpen) return;
    c.clientOpen = false;
    this.world.after(Math.round(c.keepaliveMs * 1.5), () => c.broker.drop(c, 'keepalive-timeout'));
  }
}

export class Broker {
  up = true;
  readonly retained = new Map<string, Buffer>();
  readonly #conns = new Map<number, Conn>();
  readonly #byClientId = new Map<string, Conn>();
  /** Connections accepted, in total (for no-storm style figures). */
  accepted = 0;

  constructor(
    readonly net: Net,
    readonly id: string,
    readonly url: string,
    public acl: Acl,
  ) {}

  conns(): Conn[] {
    return [...this.#conns.values()];
  }

  accept(host: Host, identity: string, clientId: string, will: Will | undefined, keepaliveMs: number, sink: ClientSink): Conn {
    const old = this.#byClientId.get(clientId);
    if (old !== undefined) this.drop(old, 'takeover');
    const c = new Conn(this.net.nextConnId(), this, host, identity, clientId, will, keepaliveMs, sink);
    this.#conns.set(c.id, c);
    this.#byClientId.set(clientId, c);
    this.accepted++;
    this.net.world.trace(`${this.id} connect ${clientId} #${c.id}`);
    for (const fn of this.net.onAccept) fn(this.id, clientId);
    return c;
  }

  /** A clean DISCONNECT: the will is discarded. */
  disconnect(c: Conn): void {
    if (!c.open) return;
    this.#remove(c);
    this.net.world.trace(`${this.id} disconnect ${c.clientId} #${c.id}`);
  }

  /** The connection ends without DISCONNECT: the will fires (when the broker is up to send it). */
  drop(c: Conn, why: string): void {
    if (!c.open) return;
    this.#remove(c);
    this.net.world.trace(`${this.id} drop ${c.clientId} #${c.id} ${why}`);
    this.net.clientLost(c);
    if (c.will !== undefined && this.up) this.publish(c, c.will.topic, c.will.payload, c.will.retain, true);
  }

  #remove(c: Conn): void {
    c.open = false;
    this.#conns.delete(c.id);
    if (this.#byClientId.get(c.clientId) === c) this.#byClientId.delete(c.clientId);
  }

  /** The broker process stops: every connection ends at once (RST), no wills; retained messages persist. */
  stop(): void {
    this.up = false;
    this.net.world.trace(`${this.id} down`);
    for (const c of this.conns()) {
      this.#remove(c);
      this.net.world.after(this.net.delay(), () => this.net.clientLost(c));
    }
  }

  start(): void {
    this.up = true;
    this.net.world.trace(`${this.id} up`);
  }

  subscribe(c: Conn, filters: readonly string[], qos: 0 | 1): void {
    for (const f of filters) {
      c.subs.set(f, qos);
      for (const [topic, payload] of this.retained) {
        if (topicMatches(f, topic) && this.acl.canRead(c.identity, topic)) this.net.deliver(c, topic, payload, true);
      }
    }
  }

  unsubscribe(c: Conn, filters: readonly string[]): void {
    for (const f of filters) c.subs.delete(f);
  }

  /** A PUBLISH from `from` (null: the broker itself). Denied by the ACL: dropped silently, as mosquitto does. */
  publish(from: Conn | null, topic: string, payload: Buffer, retain: boolean, isWill = false): void {
    if (from !== null && !this.acl.canWrite(from.identity, topic)) {
      this.net.world.trace(`${this.id} denied ${from.identity} ${isWill ? 'will ' : ''}${topic}`);
      return;
    }
    this.net.world.note(`${this.id} pub ${from?.clientId ?? '-'} ${topic} ${retain ? 'r ' : ''}${payload.toString('base64')}`);
    for (const o of this.net.observers) o(this, from, topic, payload, retain);
    if (retain) {
      if (payload.length === 0) this.retained.delete(topic);
      else this.retained.set(topic, payload);
    }
    for (const c of this.#conns.values()) {
      let match = false;
      for (const f of c.subs.keys()) {
        if (topicMatches(f, topic)) {
          match = true;
          break;
        }
      }
      if (match && this.acl.canRead(c.identity, topic)) this.net.deliver(c, topic, payload, false);
    }
  }
}
