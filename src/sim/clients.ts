/**
 * The two client ports the real code talks through, over the broker model:
 * {@link SimMqttClient}, what the call manager uses of an mqtt.js MqttClient
 * (cm-session.ts, peer-links.ts), and {@link SimTransport}, the agent's
 * Transport port (src/agent/ports.ts) as mqtt-transport.ts keeps it.
 */
import { EventEmitter } from 'node:events';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { Transport, TransportEvents, PublishOptions, Qos } from '../agent/ports.js';
import { brokerKey } from '../protocol/pointers.js';
import type { Conn, Net, Will } from './broker.js';
import type { Host, ProcessClock } from './clock.js';

/** Split a buffer of whole QoS 0 PUBLISH frames (ack-frames.ts) into topic and payload. */
export function parseFrames(buf: Buffer, protocolVersion: number): { topic: string; payload: Buffer }[] {
  const out: { topic: string; payload: Buffer }[] = [];
  let at = 0;
  while (at < buf.length) {
    at++; // 0x30
    let len = 0;
    let mul = 1;
    for (;;) {
      const byte = buf[at++]!;
      len += (byte & 0x7f) * mul;
      mul *= 128;
      if ((byte & 0x80) === 0) break;
    }
    const end = at + len;
    const tl = buf.readUInt16BE(at);
    const topic = buf.toString('utf8', at + 2, at + 2 + tl);
    let p = at + 2 + tl;
    if (protocolVersion === 5) p += 1;
    out.push({ topic, payload: buf.subarray(p, end) });
    at = end;
  }
  return out;
}

function toWill(w: IClientOptions['will']): Will | undefined {
  if (w === undefined || w === null) return undefined;
  return { topic: w.topic, payload: Buffer.from(w.payload as Buffer | string), qos: (w.qos ?? 0) > 0 ? 1 : 0, retain: w.retain === true };
}

/**
 * The part of an mqtt.js MqttClient the call manager uses: `connect`,
 * `close`, `error`, `message`, `reconnect` events; `options.will` read at each
 * attempt (so a `reconnect` handler may change it); publish queued while
 * down for QoS 1 (mqtt.js's offline queue), dropped for QoS 0
 * (`queueQoSZero: false`); QoS 1 sent but not acknowledged when a connection
 * ends kept and sent again, first, on the next one (mqtt.js's outgoing store:
 * resent on every CONNACK whatever `clean` says; the broker takes the copy as a
 * new message, at least once); `stream.write` of ready-made ack frames; `end`.
 */
export class SimMqttClient extends EventEmitter {
  connected = false;
  disconnecting = false;
  readonly options: IClientOptions;
  #conn: Conn | undefined;
  #ended = false;
  #connecting = false;
  #queue: { topic: string; payload: Buffer; retain: boolean; cb?: (err?: Error) => void }[] = [];
  /** QoS 1 sent and not acknowledged yet, in the order sent (mqtt.js's outgoing store). */
  readonly #inflight = new Set<{ topic: string; payload: Buffer; retain: boolean; cb?: (err?: Error) => void }>();
  readonly stream: { write: (b: Buffer) => boolean; destroyed: boolean; writable: boolean; writableLength: number; setNoDelay: () => void };

  constructor(
    readonly net: Net,
    readonly host: Host,
    readonly clock: ProcessClock,
    readonly url: string,
    opts: IClientOptions,
    readonly identity: string,
  ) {
    super();
    // The broker model keeps no sessions (broker.ts): a client asking for one would be simulated wrongly.
    if (opts.clean === false) throw new Error(`sim: ${String(opts.clientId)} asks for a persistent session (clean: false); the broker model has clean sessions only (docs/simulation.md)`);
    this.options = { ...opts };
    this.stream = {
      write: (b) => {
        for (const f of parseFrames(b, opts.protocolVersion ?? 4)) this.#send(f.topic, f.payload, false, 0);
        return true;
      },
      destroyed: false,
      writable: true,
      writableLength: 0,
      setNoDelay: () => undefined,
    };
    this.#attempt();
  }

  #alive = (): boolean => !this.clock.dead && !this.#ended;

  #attempt(): void {
    if (!this.#alive() || this.#connecting || this.#conn !== undefined) return;
    this.#connecting = true;
    let mine: Conn | undefined;
    this.net.connect(
      this.host,
      this.url,
      {
        identity: this.identity,
        clientId: String(this.options.clientId),
        ...(toWill(this.options.will) ? { will: toWill(this.options.will)! } : {}),
        keepaliveMs: (this.options.keepalive ?? 60) * 1000,
        connectTimeoutMs: this.options.connectTimeout ?? 30_000,
        alive: this.#alive,
        sink: {
          // Only the connection of this attempt, while it is the client's current one: mqtt.js has one socket.
          message: (topic, payload) => {
            if (this.#alive() && mine !== undefined && this.#conn === mine) this.emit('message', topic, payload, {});
          },
          closed: () => {
            if (mine !== undefined && this.#conn === mine) this.#lost();
          },
        },
      },
      (r) => {
        this.#connecting = false;
        if (!r.ok) {
          this.emit('error', new Error(r.reason));
          this.emit('close');
          this.#scheduleReconnect();
          return;
        }
        this.#conn = mine = r.conn;
        this.connected = true;
        // The outgoing store goes first (mqtt.js resends it before it emits `connect`), then the offline queue.
        const stored = [...this.#inflight];
        this.#inflight.clear();
        if (stored.length > 0) this.net.world.trace(`${String(this.options.clientId)} resends ${stored.length} unacknowledged`);
        for (const m of stored) this.#send(m.topic, m.payload, m.retain, 1, m.cb);
        this.emit('connect', { cmd: 'connack' });
        for (const m of this.#queue.splice(0)) this.#send(m.topic, m.payload, m.retain, 1, m.cb);
      },
    );
  }

  #lost(): void {
    if (!this.#alive()) return;
    const was = this.#conn !== undefined;
    this.#conn = undefined;
    this.connected = false;
    if (was) this.emit('close');
    this.#scheduleReconnect();
  }

  #scheduleReconnect(): void {
    const period = this.options.reconnectPeriod ?? 1000;
    if (period <= 0 || !this.#alive()) return;
    this.clock.setTimeout(() => {
      if (!this.#alive() || this.#conn !== undefined || this.#connecting) return;
      this.emit('reconnect');
      this.#attempt();
    }, period);
  }

  #send(topic: string, payload: Buffer, retain: boolean, qos: 0 | 1, cb?: (err?: Error) => void): void {
    const c = this.#conn;
    if (c === undefined) return;
    if (qos === 0) {
      this.net.send(c, (b) => {
        b.publish(c, topic, payload, retain);
        if (cb) this.net.deliverAck(c, () => cb());
      });
      return;
    }
    const m = { topic, payload, retain, ...(cb ? { cb } : {}) };
    this.#inflight.add(m);
    this.net.send(c, (b) => {
      b.publish(c, topic, payload, retain);
      // The PUBACK: only over this connection (a lost one leaves the message stored).
      this.net.deliverAck(c, () => {
        if (!this.#inflight.delete(m)) return;
        m.cb?.();
      });
    });
  }

  publish(topic: string, payload: string | Buffer, opts: { qos?: number; retain?: boolean } = {}, cb?: (err?: Error) => void): this {
    const p = Buffer.from(payload);
    if (this.#conn === undefined) {
      if ((opts.qos ?? 0) > 0 && !this.#ended) this.#queue.push({ topic, payload: p, retain: opts.retain === true, ...(cb ? { cb } : {}) });
      return this;
    }
    this.#send(topic, p, opts.retain === true, (opts.qos ?? 0) > 0 ? 1 : 0, cb);
    return this;
  }

  subscribe(topics: string | string[], opts: { qos?: number } = {}, cb?: () => void): this {
    const c = this.#conn;
    const list = Array.isArray(topics) ? topics : [topics];
    if (c !== undefined) this.net.send(c, (b) => b.subscribe(c, list, (opts.qos ?? 0) > 0 ? 1 : 0));
    cb?.();
    return this;
  }

  unsubscribe(topics: string | string[]): this {
    const c = this.#conn;
    if (c !== undefined) this.net.send(c, (b) => b.unsubscribe(c, Array.isArray(topics) ? topics : [topics]));
    return this;
  }

  /** mqtt.js `end(force)`: force closes the socket without DISCONNECT (the will fires). */
  end(force?: boolean, _opts?: object, cb?: () => void): this {
    this.#ended = true;
    this.disconnecting = true;
    const c = this.#conn;
    this.#conn = undefined;
    this.connected = false;
    if (c !== undefined) this.net.close(c, force !== true);
    this.#queue.length = 0;
    this.#inflight.clear();
    if (cb) this.clock.setTimeout(cb, 1);
    return this;
  }

  /** kill -9 of the process: the socket closes under it (FIN/RST reach the broker if the link lets them). */
  kill(): void {
    this.#ended = true;
    const c = this.#conn;
    this.#conn = undefined;
    if (c !== undefined) this.net.close(c, false);
  }

  /** The host's power went: nothing leaves it. */
  vanish(): void {
    this.#ended = true;
    const c = this.#conn;
    this.#conn = undefined;
    if (c !== undefined) this.net.vanish(c);
  }
}

/** As mqtt.js `connect` typed for the product (the cast is the port's boundary). */
export function asMqttClient(c: SimMqttClient): MqttClient {
  return c as unknown as MqttClient;
}

interface TBroker {
  conn: Conn | undefined;
  connecting: boolean;
  subs: Map<string, Qos>;
  queue: { topic: string; payload: Buffer; retain: boolean }[];
  /** QoS 1 sent on the current connection and not acknowledged yet, in the order sent. */
  inflight: Set<{ topic: string; payload: Buffer; retain: boolean }>;
}

/**
 * The agent's Transport: one connection per broker key, no reconnect of its
 * own, QoS 1 queued while down (bounded, oldest dropped), and QoS 1 sent but
 * not acknowledged when a connection ends — lost or left — put back at the
 * head of that queue, to go first on the next connection (mqtt-brokers.ts
 * `retire`): at least once, so a broker may get a message twice, and late.
 */
export class SimTransport implements Transport {
  readonly #b = new Map<string, TBroker>();
  #closed = false;
  #dead = false;

  constructor(
    readonly net: Net,
    readonly host: Host,
    readonly clock: ProcessClock,
    readonly identity: string,
    readonly clientId: string,
    readonly events: TransportEvents,
    readonly will: Will,
    readonly keepaliveMs: number,
    readonly connectTimeoutMs: number,
    readonly maxQueue: number,
  ) {}

  #get(broker: string): TBroker {
    const k = brokerKey(broker);
    let b = this.#b.get(k);
    if (b === undefined) this.#b.set(k, (b = { conn: undefined, connecting: false, subs: new Map(), queue: [], inflight: new Set() }));
    return b;
  }

  #alive = (): boolean => !this.#closed && !this.#dead && !this.clock.dead;

  connect(broker: string): void {
    if (!this.#alive()) return;
    const key = brokerKey(broker);
    const b = this.#get(key);
    if (b.conn !== undefined || b.connecting) return;
    b.connecting = true;
    let mine: Conn | undefined;
    this.net.connect(
      this.host,
      key,
      {
        identity: this.identity,
        clientId: this.clientId,
        will: this.will,
        keepaliveMs: this.keepaliveMs,
        connectTimeoutMs: this.connectTimeoutMs,
        alive: this.#alive,
        sink: {
          message: (topic, payload) => {
            if (this.#alive() && b.conn === mine) this.events.message(key, topic, payload);
          },
          closed: () => {
            if (!this.#alive() || b.conn !== mine || mine === undefined) return;
            b.conn = undefined;
            this.#retire(b);
            this.events.down(key, 'closed', {});
          },
        },
      },
      (r) => {
        b.connecting = false;
        if (!r.ok) {
          this.events.down(key, r.reason, { error: r.reason });
          return;
        }
        b.conn = mine = r.conn;
        const c = r.conn;
        const subs = [...b.subs.entries()];
        if (subs.length > 0) this.net.send(c, (br) => { for (const [t, q] of subs) br.subscribe(c, [t], q); });
        const q = b.queue.splice(0);
        for (const m of q) this.#sendQos1(b, c, m);
        this.events.up(key);
      },
    );
  }

  disconnect(broker: string): void {
    const b = this.#b.get(brokerKey(broker));
    if (b?.conn === undefined) return;
    const c = b.conn;
    b.conn = undefined;
    this.#retire(b);
    this.net.close(c, true);
  }

  /** The connection ended: what it left unacknowledged goes back to the head of the queue (bounded, oldest dropped). */
  #retire(b: TBroker): void {
    if (b.inflight.size === 0) return;
    b.queue = [...b.inflight, ...b.queue];
    b.inflight.clear();
    if (b.queue.length > this.maxQueue) b.queue.splice(0, b.queue.length - this.maxQueue);
  }

  #sendQos1(b: TBroker, c: Conn, m: { topic: string; payload: Buffer; retain: boolean }): void {
    b.inflight.add(m);
    this.net.send(c, (br) => {
      br.publish(c, m.topic, m.payload, m.retain);
      this.net.deliverAck(c, () => {
        if (b.conn === c) b.inflight.delete(m);
      });
    });
  }

  isUp(broker: string): boolean {
    return this.#b.get(brokerKey(broker))?.conn !== undefined;
  }

  subscribe(broker: string, topic: string, qos: Qos = 1): void {
    const b = this.#get(broker);
    b.subs.set(topic, qos);
    const c = b.conn;
    if (c !== undefined) this.net.send(c, (br) => br.subscribe(c, [topic], qos));
  }

  unsubscribe(broker: string, topic: string): void {
    const b = this.#get(broker);
    b.subs.delete(topic);
    const c = b.conn;
    if (c !== undefined) this.net.send(c, (br) => br.unsubscribe(c, [topic]));
  }

  publish(broker: string, topic: string, payload: string | Buffer, opts: PublishOptions): void {
    if (!this.#alive()) return;
    const b = this.#get(broker);
    const p = Buffer.from(payload);
    const c = b.conn;
    if (c === undefined) {
      if (opts.qos === 1) {
        b.queue.push({ topic, payload: p, retain: opts.retain === true });
        if (b.queue.length > this.maxQueue) b.queue.shift();
      }
      return;
    }
    if (opts.qos === 1) this.#sendQos1(b, c, { topic, payload: p, retain: opts.retain === true });
    else this.net.send(c, (br) => br.publish(c, topic, p, opts.retain === true));
  }

  async close(): Promise<void> {
    this.#closed = true;
    for (const b of this.#b.values()) {
      if (b.conn !== undefined) this.net.close(b.conn, true);
      b.conn = undefined;
    }
  }

  /** Power cut: nothing more leaves the phone; brokers time its connections out (its will fires). */
  vanish(): void {
    this.#dead = true;
    for (const b of this.#b.values()) {
      if (b.conn !== undefined) this.net.vanish(b.conn);
      b.conn = undefined;
    }
  }
}
