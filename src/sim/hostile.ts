/**
 * `hostile-phone`: a phone identity (a real certificate, so the printed ACL
 * applies to it) that publishes whatever the broker lets it — garbage, forged
 * `rehomed` events, keep-alives with versions far ahead, and replays of the
 * genuine messages it could read (signed states, its own lists). On an open
 * broker (no ACL) it also writes other phones' and call managers' topics.
 */
import type { Broker, Conn, Net } from './broker.js';
import type { Host } from './clock.js';
import { PREFIX, type Topology } from './group.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

export const HOSTILE_ID = 'p-6666';

/** What the hostile phone reads in a call manager's signed state (it reads, it does not verify). */
interface StateSeen {
  online: boolean;
  bdSeq: number;
  conn: number;
  nonce: string;
  seq: number;
}

/** One step of the drag chain: a day less an hour, within a day of the step before. */
export const DRAG_STEP_MS = 23 * 3_600_000;
/** Steps of the chain sent to each call manager in one burst, in order on one connection (issue 15: "30 keep-alives"). */
export const DRAG_BURST = 3;
/**
 * Between two steps of a burst (ms): above the call manager's one advancing
 * report per phone a second (report-limiter.ts) plus the link's jitter, so a
 * clock that kept the rate limit but lost the wall-clock bound is dragged too.
 */
export const DRAG_GAP_MS = 1100;

export class HostilePhone {
  readonly #recorded: { topic: string; payload: Buffer }[] = [];
  #conns = new Map<string, Conn>();
  #until = 0;
  #seq = 0;
  /** Per call manager: the version of its drag chain's last step (#dragAll). */
  readonly #drag = new Map<string, number>();
  published = 0;

  /**
   * Draws for its aimed state replays (#aimed), a fork of its own so the
   * other attacks' draws stay as they were; null: none are made.
   */
  aim: Rng | null = null;
  /** Per call manager: the signed states it published (or its broker fired as its will), as read, oldest first. */
  readonly #states = new Map<string, { payload: Buffer; body: StateSeen }[]>();
  /** Per call manager: the broker (URL) its states were read on. */
  readonly #brokerOf = new Map<string, string>();

  constructor(
    readonly world: World,
    readonly net: Net,
    readonly host: Host,
    readonly topo: Topology,
    readonly rng: Rng,
  ) {
    // A phone of the fleet before it turned: it has read the call managers' states (the printed ACL
    // lets every phone read them) since the run began, not only once it connects to attack.
    net.observers.push((b, from, topic, payload) => this.#tapState(b, from, topic, payload));
  }

  /** Until when it acts (sim ms). */
  get until(): number {
    return this.#until;
  }

  /** The genuine messages it recorded (what its subscriptions let it read). */
  get recorded(): readonly { topic: string; payload: Buffer }[] {
    return this.#recorded;
  }

  /**
   * Another attack's message (src/sim/operator.ts), over one of its connections
   * picked with the caller's `rng` (its own draws stay as they were).
   */
  send(rng: Rng, topic: string, payload: Buffer, retain: boolean): void {
    const conns = [...this.#conns.values()];
    if (conns.length === 0 || this.world.now >= this.#until) return;
    const c = rng.pick(conns);
    this.published++;
    this.world.trace(`hostile ${topic} ${payload.length}B${retain ? ' retained' : ''}`);
    this.net.send(c, (b) => b.publish(c, topic, payload, retain));
  }

  /**
   * A replay of re-provisioning (replay.ts) over every connection it holds (a
   * phone is reached only on a broker it is connected to): no draws.
   */
  sendAll(topic: string, payload: Buffer, retain: boolean): void {
    if (this.world.now >= this.#until) return;
    for (const c of this.#conns.values()) {
      this.published++;
      this.world.trace(`hostile ${topic} ${payload.length}B${retain ? ' retained' : ''} via ${c.broker.id}`);
      this.net.send(c, (b) => b.publish(c, topic, payload, retain));
    }
  }

  /** Connect to every broker (recording from the start) and act until `until`. */
  activate(until: number): void {
    this.#until = Math.max(this.#until, until);
    for (const b of this.topo.brokers) this.#connect(b.url);
    this.world.after(this.rng.int(100, 1000), () => this.#act());
  }

  #connect(url: string): void {
    if (this.#conns.has(url)) return;
    this.net.connect(
      this.host,
      url,
      {
        identity: HOSTILE_ID,
        clientId: `ipphone-${HOSTILE_ID}`,
        keepaliveMs: 10_000,
        connectTimeoutMs: 3000,
        alive: () => true,
        sink: {
          message: (topic, payload) => {
            if (this.#recorded.length < 300) this.#recorded.push({ topic, payload });
            else this.#recorded[this.rng.int(0, 299)] = { topic, payload };
          },
          closed: () => {
            this.#conns.delete(url);
            for (const spec of [...this.topo.group, ...this.topo.remote]) if (spec.broker === url) this.#drag.delete(spec.id);
          },
        },
      },
      (r) => {
        if (!r.ok) return;
        this.#conns.set(url, r.conn);
        this.net.send(r.conn, (b) => b.subscribe(r.conn, ['#'], 1));
      },
    );
  }

  #act(): void {
    if (this.world.now >= this.#until) return;
    const conns = [...this.#conns.values()];
    for (const b of this.topo.brokers) if (!this.#conns.has(b.url)) this.#connect(b.url);
    if (conns.length > 0) {
      const c = this.rng.pick(conns);
      const aimed = this.#aimed();
      const m = aimed ?? this.#message();
      if (m !== null) {
        const { topic, payload, retain } = m;
        this.published++;
        this.world.trace(`hostile ${topic} ${payload.length}B${retain ? ' retained' : ''}`);
        const via = aimed?.via ?? c;
        this.net.send(via, (b) => b.publish(via, topic, payload, retain));
      }
    }
    this.world.after(this.rng.int(50, 1500), () => this.#act());
  }

  /**
   * Issue 15 §1's attack, as a confined phone can make it: {@link DRAG_BURST}
   * keep-alives, {@link DRAG_GAP_MS} apart, to every call manager (the later
   * ones only while it is active and holds the same connection), on the call
   * manager's own broker (a call manager hears keep-alives there only) and on
   * the per-phone topic the ACL gives this identity, each version
   * {@link DRAG_STEP_MS} above the last one sent to that call manager. A clock
   * bounded from its last version (before issue 15's fix) takes every step —
   * each is less than a day above what it took — and is dragged almost three
   * days per burst; a bound from the wall clock takes none (a phone's report is
   * taken up to 12 h ahead). (A chain of steps from the wall clock, each a day
   * further, is refused by either rule from its second step: it is a day plus
   * the time between two steps above the last.) A call manager whose broker it
   * holds no connection to is skipped; a chain whose connection closed starts
   * again from the wall clock (a lost step would stall it). Already sent:
   * returns null.
   */
  #dragAll(wall: number, probe: boolean): null {
    for (const spec of [...this.topo.group, ...this.topo.remote]) {
      const c = this.#conns.get(spec.broker);
      if (c === undefined) continue;
      for (let i = 0; i < DRAG_BURST; i++) {
        const step = (): void => {
          if (this.world.now >= this.#until || this.#conns.get(spec.broker) !== c) return;
          const version = Math.max(this.#drag.get(spec.id) ?? 0, wall + i * DRAG_GAP_MS) + DRAG_STEP_MS;
          this.#drag.set(spec.id, version);
          const topic = `${PREFIX}/cm/${spec.id}/keepalive/${HOSTILE_ID}`;
          const payload = Buffer.from(JSON.stringify({ phone: HOSTILE_ID, seq: ++this.#seq, pointersVersion: version, busy: false, ...(probe ? { probe: true } : {}) }));
          this.published++;
          this.world.trace(`hostile ${topic} ${payload.length}B`);
          this.net.send(c, (b) => b.publish(c, topic, payload, false));
        };
        if (i === 0) step();
        else this.world.after(i * DRAG_GAP_MS, step);
      }
    }
    return null;
  }

  #tapState(b: Broker, from: Conn | null, topic: string, payload: Buffer): void {
    const cm = /^ipphone\/v1\/cm\/([^/]+)\/state$/.exec(topic)?.[1];
    if (cm === undefined || from?.identity !== cm || !b.acl.canRead(HOSTILE_ID, topic)) return;
    this.#brokerOf.set(cm, b.url);
    let body: StateSeen;
    try {
      const o = JSON.parse(payload.toString('utf8')) as { body?: unknown };
      body = JSON.parse(Buffer.from(String(o.body), 'base64').toString('utf8')) as StateSeen;
    } catch {
      return;
    }
    if (typeof body.online !== 'boolean' || typeof body.seq !== 'number') return;
    const seen = this.#states.get(cm) ?? [];
    this.#states.set(cm, [...seen.filter((x) => !x.payload.equals(payload)), { payload, body }].slice(-12));
  }

  /**
   * Issue 15 §2's attack, timed to matter (a third of its acts while there is
   * one to make): a genuine offline of a call manager replayed while it is live
   * — one of the connection it is now online on, signed earlier (its silent
   * registrar) — and a genuine online replayed once it went offline or died
   * (its will read). On its state topic, retained or not; the printed ACL
   * denies a phone that topic, an open broker does not. Only what it read of
   * the call managers themselves counts.
   */
  #aimed(): { topic: string; payload: Buffer; retain: boolean; via: Conn } | null {
    const r = this.aim;
    if (r === null || !r.chance(0.35)) return null;
    const shots: { cm: string; payload: Buffer; via: Conn }[] = [];
    for (const [cm, seen] of this.#states) {
      // On the broker where that call manager's state lives, over its own connection there.
      const via = this.#conns.get(this.#brokerOf.get(cm) ?? '');
      if (via === undefined) continue;
      const last = seen.at(-1)!.body;
      for (const { payload, body } of seen) {
        const liveNow = last.online && !body.online && body.bdSeq === last.bdSeq && body.conn === last.conn && body.nonce === last.nonce && body.seq < last.seq;
        if (liveNow || (!last.online && body.online)) shots.push({ cm, payload, via });
      }
    }
    if (shots.length === 0) return null;
    const shot = r.pick(shots);
    return { topic: `${PREFIX}/cm/${shot.cm}/state`, payload: shot.payload, retain: r.chance(0.5), via: shot.via };
  }

  #message(): { topic: string; payload: Buffer; retain: boolean } | null {
    const r = this.rng;
    const cms = [...this.topo.group, ...this.topo.remote].map((c) => c.id);
    const cm = r.pick(cms);
    const victim = r.pick(this.topo.phones);
    const me = r.chance(0.7) ? HOSTILE_ID : victim;
    const wall = 1_780_000_000_000 + this.world.now;
    switch (r.int(0, 5)) {
      case 0: {
        // Replay something genuine it recorded, where it was published or somewhere else.
        const rec = this.#recorded.length > 0 ? r.pick(this.#recorded) : undefined;
        if (rec !== undefined) {
          const topic = r.chance(0.7) ? rec.topic : r.pick([`${PREFIX}/cm/${cm}/state`, `${PREFIX}/phone/${victim}/pointers`, `${PREFIX}/phone/${me}/ack`]);
          return { topic, payload: rec.payload, retain: r.chance(0.5) };
        }
        return { topic: `${PREFIX}/cm/${cm}/state`, payload: Buffer.from('{"online":false}'), retain: true };
      }
      case 1: {
        // A keep-alive whose list version is far ahead (drags version clocks if believed).
        const own = r.chance(0.7);
        // Half of them ratchet every call manager (issue 15 §1's attack, #dragAll), the rest 1..40 days at random.
        if (r.chance(0.5)) return this.#dragAll(wall, r.chance(0.5));
        return {
          topic: own ? `${PREFIX}/cm/${cm}/keepalive/${me}` : `${PREFIX}/cm/${cm}/keepalive`,
          payload: Buffer.from(JSON.stringify({ phone: me, seq: ++this.#seq, pointersVersion: wall + r.int(1, 40) * 86_400_000 - 60_000, busy: false, ...(r.chance(0.5) ? { probe: true } : {}) })),
          retain: false,
        };
      }
      case 2:
        // A forged rehomed event.
        return { topic: `${PREFIX}/phone/${me}/event`, payload: Buffer.from(JSON.stringify({ type: 'rehomed', from: cm, to: r.pick(cms), reason: r.pick(['cm-offline', 'rebalance', 'fallback']), detectMs: 1, rehomeMs: 1 })), retain: false };
      case 3:
        // A forged, unsigned or badly signed state or list.
        return r.chance(0.5)
          ? { topic: `${PREFIX}/cm/${cm}/state`, payload: Buffer.from(JSON.stringify({ online: r.chance(0.5), kid: 'ops-1', body: Buffer.from('{"online":false}').toString('base64'), sig: 'AAAA' })), retain: true }
          : { topic: `${PREFIX}/phone/${victim}/pointers`, payload: Buffer.from(JSON.stringify({ kid: 'ops-1', body: Buffer.from(JSON.stringify({ version: wall + 1e9, reason: 'admin', list: [{ id: 'cm-x', broker: 'mqtt://10.6.6.6:1883', services: 'http://10.6.6.6/' }] })).toString('base64'), sig: 'AAAA' })), retain: false };
      case 4:
        // A liveness challenge flood of a call manager.
        return { topic: `${PREFIX}/cm/${cm}/challenge/${me}`, payload: Buffer.from(JSON.stringify({ challenge: r.bytes(16).toString('base64') })), retain: false };
      default: {
        // Garbage on a topic it may write.
        const topic = r.pick([`${PREFIX}/phone/${me}/status`, `${PREFIX}/phone/${me}/config/result`, `${PREFIX}/cm/${cm}/keepalive/${me}`, `${PREFIX}/cm/${cm}/load`]);
        return { topic, payload: r.chance(0.5) ? r.bytes(r.int(0, 64)) : Buffer.from(JSON.stringify({ online: true, phones: 1e9, seq: -1 })), retain: r.chance(0.3) };
      }
    }
  }
}
