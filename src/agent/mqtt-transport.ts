/**
 * The agent's MQTT adapter: one mqtt.js client per distinct broker, with the
 * connection lifecycle owned by the agent. mqtt.js never reconnects on its own
 * here (`reconnectPeriod: 0`): its `servers` list rotates round-robin and never
 * returns to the primary, and its reconnect has no backoff (mqttjs/MQTT.js#561);
 * the failover machine decides when and where to connect again.
 */
import { readFileSync } from 'node:fs';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { PublishOptions, Qos, Transport, TransportDownReason, TransportEvents } from './ports.js';

import { brokerKey } from '../protocol/pointers.js';

export { brokerKey };

export interface MqttTransportOptions {
  /** MQTT client id, used on every broker connection. */
  clientId: string;
  events: TransportEvents;
  log: Logger;
  /** Drives the outer connect deadline. Default {@link systemClock}. */
  clock?: Clock;
  /** MQTT protocol level: 4 (3.1.1) or 5. Default 5. */
  protocolVersion?: 4 | 5;
  /** Deadline from starting an attempt to CONNACK, ms. Default 5000. */
  connectTimeoutMs?: number;
  /** MQTT keep-alive, seconds (0 disables). Default 30. */
  keepaliveSec?: number;
  username?: string | null;
  password?: string | null;
  /** PEM file paths for TLS (mqtts:/wss:), read once on the first connect. */
  ca?: string | null;
  cert?: string | null;
  key?: string | null;
  /** Last will, published by the broker when the socket dies without DISCONNECT. */
  will?: { topic: string; payload: string; qos: Qos; retain: boolean };
  /** Per-broker bound of QoS 1 messages held while down; oldest dropped. Default 100. */
  maxQueue?: number;
  /** How long {@link MqttTransport.close} waits for a graceful end before forcing, ms. Default 2000. */
  closeTimeoutMs?: number;
  /**
   * mqtt-packet's number cache: 65,536 two-byte Buffers to save one tiny
   * allocation per packet. Without it a homed agent's heap fell from 15.8 to
   * 9.0 MiB and its RSS from 68.9 to 60.9 MiB (bundle, default node options).
   * Default false (a phone sends a few packets a second); a process with
   * thousands of clients (the fleet simulator) may turn it on. The switch is
   * process-wide in mqtt-packet and only ever turns the cache off.
   */
  writeCache?: boolean;
}

interface Pending {
  topic: string;
  payload: string | Buffer;
  opts: PublishOptions;
}

/** One connection attempt and, after CONNACK, the connection it became. */
interface Attempt {
  client: MqttClient;
  up: boolean;
  /** Set once the attempt has ended (one `down` emitted, or ended by us). */
  done: boolean;
  lastError: string | undefined;
  /** Reason code and Server Reference of a refusing CONNACK (MQTT 5 may redirect there too). */
  refusal: { reasonCode?: number; serverReference?: string } | undefined;
  deadline: TimerHandle | undefined;
  /** QoS 1 messages sent but not yet acknowledged, in send order; requeued if the connection dies. */
  inflight: Set<Pending>;
}

interface Broker {
  key: string;
  /** The spelling first used for this broker; connected to as given (keeps any credentials in it). */
  url: string;
  attempt: Attempt | null;
  subs: Map<string, Qos>;
  queue: Pending[];
  /** Messages dropped from the queue since the last flush. */
  dropped: number;
}

/** Per-broker counters, for status and tests. */
export interface BrokerStats {
  up: boolean;
  queued: number;
  /** QoS 1 messages dropped from the queue since the last successful flush. */
  dropped: number;
  /** QoS 1 messages dropped in this transport's lifetime. */
  droppedTotal: number;
}

/**
 * {@link Transport} over mqtt.js. Every attempt ends in exactly one `up` or
 * `down`, and every `up` in exactly one `down` — except when the agent itself
 * ends the connection with {@link MqttTransport.disconnect} or
 * {@link MqttTransport.close}, which emit nothing. Events name the broker by
 * {@link brokerKey} (a `connect` to an invalid URL reports the URL as given);
 * the other methods accept any spelling and throw `CONFIG_INVALID` for an
 * invalid URL.
 */
export class MqttTransport implements Transport {
  readonly #o: MqttTransportOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #maxQueue: number;
  readonly #brokers = new Map<string, Broker>();
  #tls: { ca?: Buffer; cert?: Buffer; key?: Buffer } | undefined;
  #closed: Promise<void> | undefined;
  #droppedTotal = 0;

  constructor(opts: MqttTransportOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'mqtt-transport' });
    this.#clock = opts.clock ?? systemClock;
    this.#maxQueue = Math.max(0, opts.maxQueue ?? 100);
  }

  connect(broker: string): void {
    if (this.#closed) return;
    let b: Broker;
    try {
      b = this.#broker(broker);
    } catch (err) {
      // The outcome of connect() always arrives as an event, even for a bad URL.
      queueMicrotask(() => this.#emit('down', broker, 'connect-failed', { error: errorMessage(err) }));
      return;
    }
    if (b.attempt) return;
    let options: IClientOptions;
    let client: MqttClient;
    try {
      options = this.#clientOptions();
      client = mqttConnect(b.url, options);
    } catch (err) {
      queueMicrotask(() => this.#emit('down', b.key, 'connect-failed', { error: errorMessage(err) }));
      return;
    }
    const a: Attempt = { client, up: false, done: false, lastError: undefined, refusal: undefined, deadline: undefined, inflight: new Set() };
    b.attempt = a;
    this.#log.debug({ broker: b.key }, 'connecting');
    const timeoutMs = this.#o.connectTimeoutMs ?? 5000;
    // Our own deadline on the injected clock, over mqtt.js's connectTimeout: it covers
    // the TCP/TLS connect too and is what unit tests can advance.
    a.deadline = this.#clock.setTimeout(() => {
      if (!a.up) this.#end(b, a, 'connect-timeout', { error: `no CONNACK within ${timeoutMs} ms` });
    }, timeoutMs);

    // mqtt.js may emit error, close and end for one failure; #end lets only the first through.
    client.on('error', (err) => {
      a.lastError = errorMessage(err);
      this.#log.debug({ broker: b.key, err: a.lastError }, 'mqtt error');
    });
    client.on('packetreceive', (packet) => {
      if (packet.cmd !== 'connack') return;
      const rc = packet.reasonCode ?? packet.returnCode ?? 0;
      if (rc === 0) return;
      a.refusal = { reasonCode: rc };
      const ref = packet.properties?.serverReference;
      if (ref !== undefined) a.refusal.serverReference = ref;
    });
    client.on('connect', () => this.#onConnack(b, a));
    client.on('close', () => {
      if (a.up) this.#end(b, a, 'closed', { error: a.lastError ?? 'connection closed' });
      else if (a.lastError === 'connack timeout') this.#end(b, a, 'connect-timeout', { error: a.lastError });
      else this.#end(b, a, 'connect-failed', { error: a.lastError ?? 'connection closed before CONNACK', ...a.refusal });
    });
    client.on('disconnect', (packet) => {
      // mqtt.js reports a Server Reference but does not follow it; the agent decides.
      const detail: { error: string; reasonCode?: number; serverReference?: string } = { error: 'broker sent DISCONNECT' };
      if (packet.reasonCode !== undefined) detail.reasonCode = packet.reasonCode;
      const ref = packet.properties?.serverReference;
      if (ref !== undefined) detail.serverReference = ref;
      this.#end(b, a, 'disconnected', detail);
    });
    client.on('message', (topic, payload) => {
      if (a.done) return;
      this.#log.debug({ broker: b.key, topic, bytes: payload.length }, 'message');
      this.#emit('message', b.key, topic, payload);
    });
  }

  disconnect(broker: string): void {
    const b = this.#brokers.get(brokerKey(broker));
    const a = b?.attempt;
    if (!b || !a) return;
    this.#retire(b, a);
    this.#log.info({ broker: b.key }, 'disconnecting');
    // Graceful DISCONNECT when up, so the broker discards the will.
    void this.#endClient(a.client, !a.up);
  }

  isUp(broker: string): boolean {
    return this.#brokers.get(brokerKey(broker))?.attempt?.up === true;
  }

  subscribe(broker: string, topic: string, qos: Qos = 0): void {
    const b = this.#broker(broker);
    b.subs.set(topic, qos);
    const a = b.attempt;
    if (a?.up) this.#sendSubscribe(b, a, topic, qos);
  }

  unsubscribe(broker: string, topic: string): void {
    const b = this.#brokers.get(brokerKey(broker));
    if (!b || !b.subs.delete(topic)) return;
    const a = b.attempt;
    if (a?.up) {
      a.client.unsubscribe(topic, (err) => {
        if (err) this.#log.warn({ broker: b.key, topic, err: errorMessage(err) }, 'unsubscribe failed');
      });
    }
  }

  publish(broker: string, topic: string, payload: string | Buffer, opts: PublishOptions): void {
    const b = this.#broker(broker);
    const msg: Pending = { topic, payload, opts };
    const a = b.attempt;
    if (a?.up) {
      this.#send(b, a, msg);
    } else if (opts.qos === 1) {
      this.#enqueue(b, [msg]);
    } else {
      this.#log.debug({ broker: b.key, topic }, 'qos 0 dropped while down');
    }
  }

  /** Queue and connection counters of `broker` (any spelling). */
  stats(broker: string): BrokerStats {
    const b = this.#brokers.get(brokerKey(broker));
    return { up: b?.attempt?.up === true, queued: b?.queue.length ?? 0, dropped: b?.dropped ?? 0, droppedTotal: this.#droppedTotal };
  }

  /**
   * TEST ONLY: destroy the socket of `broker` without DISCONNECT, as a power cut
   * or a dead link would, so the broker publishes the will.
   */
  _destroySocket(broker: string): void {
    this.#brokers.get(brokerKey(broker))?.attempt?.client.stream?.destroy();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const ends: Promise<void>[] = [];
      for (const b of this.#brokers.values()) {
        const a = b.attempt;
        if (!a) continue;
        this.#retire(b, a);
        ends.push(this.#endClient(a.client, !a.up));
      }
      await Promise.all(ends);
      this.#log.info({ brokers: ends.length }, 'transport closed');
    })();
    return this.#closed;
  }

  #broker(url: string): Broker {
    const key = brokerKey(url);
    let b = this.#brokers.get(key);
    if (!b) {
      b = { key, url, attempt: null, subs: new Map(), queue: [], dropped: 0 };
      this.#brokers.set(key, b);
    }
    return b;
  }

  #clientOptions(): IClientOptions {
    const o = this.#o;
    const options: IClientOptions = {
      clientId: o.clientId,
      protocolVersion: o.protocolVersion ?? 5,
      clean: true,
      reconnectPeriod: 0,
      connectTimeout: o.connectTimeoutMs ?? 5000,
      keepalive: o.keepaliveSec ?? 30,
      queueQoSZero: false,
      resubscribe: false,
      writeCache: o.writeCache ?? false,
    };
    if (o.username != null) options.username = o.username;
    if (o.password != null) options.password = o.password;
    if (o.will) options.will = { topic: o.will.topic, payload: Buffer.from(o.will.payload), qos: o.will.qos, retain: o.will.retain };
    // TLS files are read once; a read error fails this attempt (and the next) with the reason.
    this.#tls ??= {
      ...(o.ca != null ? { ca: readFileSync(o.ca) } : {}),
      ...(o.cert != null ? { cert: readFileSync(o.cert) } : {}),
      ...(o.key != null ? { key: readFileSync(o.key) } : {}),
    };
    return { ...options, ...this.#tls };
  }

  #onConnack(b: Broker, a: Attempt): void {
    if (a.done || a.up) return;
    a.up = true;
    if (a.deadline !== undefined) this.#clock.clearTimeout(a.deadline);
    a.deadline = undefined;
    this.#log.info({ broker: b.key, subscriptions: b.subs.size, queued: b.queue.length }, 'broker up');
    // Subscriptions and queued messages go out in order on this socket before anything
    // the agent publishes from its `up` handler.
    for (const [topic, qos] of b.subs) this.#sendSubscribe(b, a, topic, qos);
    if (b.dropped > 0) this.#log.warn({ broker: b.key, dropped: b.dropped }, 'queued messages were dropped while down');
    b.dropped = 0;
    const queued = b.queue;
    b.queue = [];
    for (const msg of queued) this.#send(b, a, msg);
    this.#emit('up', b.key);
  }

  #sendSubscribe(b: Broker, a: Attempt, topic: string, qos: Qos): void {
    a.client.subscribe(topic, { qos }, (err, granted) => {
      const failed = granted?.find((g) => g.qos === 128);
      if (err || failed) this.#log.warn({ broker: b.key, topic, err: err ? errorMessage(err) : 'refused' }, 'subscribe failed');
    });
  }

  #send(b: Broker, a: Attempt, msg: Pending): void {
    if (msg.opts.qos === 1) a.inflight.add(msg);
    a.client.publish(msg.topic, msg.payload, { qos: msg.opts.qos, retain: msg.opts.retain ?? false }, (err) => {
      if (!err) a.inflight.delete(msg);
      else this.#log.debug({ broker: b.key, topic: msg.topic, err: errorMessage(err) }, 'publish failed');
    });
  }

  #enqueue(b: Broker, msgs: Pending[]): void {
    b.queue.push(...msgs);
    const over = b.queue.length - this.#maxQueue;
    if (over <= 0) return;
    b.queue.splice(0, over);
    // Warn once per burst (the first drop since the last flush); the total is logged on flush.
    if (b.dropped === 0) this.#log.warn({ broker: b.key, maxQueue: this.#maxQueue }, 'publish queue full, dropping oldest');
    b.dropped += over;
    this.#droppedTotal += over;
  }

  /** End attempt `a` with one `down` and release its client. */
  #end(b: Broker, a: Attempt, reason: TransportDownReason, detail: { error?: string; serverReference?: string; reasonCode?: number }): void {
    if (a.done) return;
    const wasUp = a.up;
    this.#retire(b, a);
    this.#log.info({ broker: b.key, reason, ...detail, wasUp }, 'broker down');
    void this.#endClient(a.client, true);
    this.#emit('down', b.key, reason, detail);
  }

  /** Detach `a` from `b`: no events from it from now on; its unacknowledged QoS 1 messages go back to the queue. */
  #retire(b: Broker, a: Attempt): void {
    a.done = true;
    if (a.deadline !== undefined) this.#clock.clearTimeout(a.deadline);
    a.deadline = undefined;
    if (b.attempt === a) b.attempt = null;
    if (a.inflight.size > 0) {
      const waiting = b.queue;
      b.queue = [];
      this.#enqueue(b, [...a.inflight, ...waiting]);
      a.inflight.clear();
    }
  }

  /** End `client` and resolve once its socket is closed (forcing after closeTimeoutMs). */
  #endClient(client: MqttClient, force: boolean): Promise<void> {
    return new Promise<void>((resolve) => {
      const stream = client.stream as (NodeJS.EventEmitter & { closed?: boolean; destroyed?: boolean; destroy?: () => void }) | undefined;
      let timer: TimerHandle | undefined;
      const finish = (): void => {
        if (timer !== undefined) this.#clock.clearTimeout(timer);
        timer = undefined;
        resolve();
      };
      const whenClosed = (): void => {
        // net.Socket has `closed`; other streams (ws) may only say `destroyed`.
        if (!stream || stream.closed === true || (stream.closed === undefined && stream.destroyed === true)) finish();
        else stream.once('close', finish);
      };
      timer = this.#clock.setTimeout(() => {
        timer = undefined;
        stream?.destroy?.();
        resolve();
      }, this.#o.closeTimeoutMs ?? 2000);
      try {
        client.end(force, () => whenClosed());
      } catch (err) {
        this.#log.debug({ err: errorMessage(err) }, 'end failed');
        stream?.destroy?.();
        finish();
      }
    });
  }

  #emit<E extends keyof TransportEvents>(event: E, ...args: Parameters<TransportEvents[E]>): void {
    try {
      (this.#o.events[event] as (...a: Parameters<TransportEvents[E]>) => void)(...args);
    } catch (err) {
      // A throwing handler must not unwind into mqtt.js's parser or socket callbacks.
      this.#log.error({ event, err: errorMessage(err) }, 'transport event handler threw');
    }
  }
}
