/**
 * The agent's MQTT adapter: one mqtt.js client per distinct broker, with the
 * connection lifecycle owned by the agent. mqtt.js never reconnects on its own
 * here (`reconnectPeriod: 0`): its `servers` list rotates round-robin and never
 * returns to the primary, and its reconnect has no backoff (mqttjs/MQTT.js#561);
 * the failover machine decides when and where to connect again.
 *
 * This file is the public {@link Transport} facade; the per-broker attempts,
 * subscriptions and queues live in `mqtt-brokers.ts`.
 */
import { readFileSync } from 'node:fs';
import { connect as mqttConnect, type IClientOptions, type MqttClient } from 'mqtt';
import type { Clock } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { keepNoDelay } from '../lib/mqtt-nodelay.js';
import type { PublishOptions, Qos, Transport, TransportEvents } from './ports.js';
import { MqttBrokers, type Broker, type Pending } from './mqtt-brokers.js';
import { brokerKey } from '../protocol/pointers.js';
import { passwordOf } from '../config/mqtt-credentials.js';

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
  /** File whose first line is the password (when `password` is null); read with the TLS files. */
  passwordFile?: string | null;
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
  readonly #b: MqttBrokers;
  #tls: { ca?: Buffer; cert?: Buffer; key?: Buffer; password?: string } | undefined;
  #closed: Promise<void> | undefined;

  constructor(opts: MqttTransportOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'mqtt-transport' });
    this.#b = new MqttBrokers({
      events: opts.events,
      log: this.#log,
      clock: opts.clock ?? systemClock,
      maxQueue: Math.max(0, opts.maxQueue ?? 100),
      connectTimeoutMs: opts.connectTimeoutMs ?? 5000,
      closeTimeoutMs: opts.closeTimeoutMs ?? 2000,
    });
  }

  connect(broker: string): void {
    if (this.#closed) return;
    let b: Broker;
    try {
      b = this.#b.broker(broker);
    } catch (err) {
      // The outcome of connect() always arrives as an event, even for a bad URL.
      queueMicrotask(() => this.#b.emit('down', broker, 'connect-failed', { error: errorMessage(err) }));
      return;
    }
    if (b.attempt) return;
    let client: MqttClient;
    try {
      client = keepNoDelay(mqttConnect(b.url, this.#clientOptions()));
    } catch (err) {
      queueMicrotask(() => this.#b.emit('down', b.key, 'connect-failed', { error: errorMessage(err) }));
      return;
    }
    this.#b.attach(b, client);
  }

  disconnect(broker: string): void {
    const b = this.#b.get(broker);
    const a = b?.attempt;
    if (!b || !a) return;
    this.#b.retire(b, a);
    this.#log.info({ broker: b.key }, 'disconnecting');
    // Graceful DISCONNECT when up, so the broker discards the will.
    void this.#b.endClient(a.client, !a.up);
  }

  isUp(broker: string): boolean {
    return this.#b.get(broker)?.attempt?.up === true;
  }

  subscribe(broker: string, topic: string, qos: Qos = 0): void {
    const b = this.#b.broker(broker);
    b.subs.set(topic, qos);
    const a = b.attempt;
    if (a?.up) this.#b.subscribe(b, a, topic, qos);
  }

  unsubscribe(broker: string, topic: string): void {
    const b = this.#b.get(broker);
    if (!b || !b.subs.delete(topic)) return;
    const a = b.attempt;
    if (a?.up) {
      a.client.unsubscribe(topic, (err) => {
        if (err) this.#log.warn({ broker: b.key, topic, err: errorMessage(err) }, 'unsubscribe failed');
      });
    }
  }

  publish(broker: string, topic: string, payload: string | Buffer, opts: PublishOptions): void {
    const b = this.#b.broker(broker);
    const msg: Pending = { topic, payload, opts };
    const a = b.attempt;
    if (a?.up) {
      this.#b.send(b, a, msg);
    } else if (opts.qos === 1) {
      this.#b.enqueue(b, [msg]);
    } else {
      this.#log.debug({ broker: b.key, topic }, 'qos 0 dropped while down');
    }
  }

  /** Queue and connection counters of `broker` (any spelling). */
  stats(broker: string): BrokerStats {
    const b = this.#b.get(broker);
    return { up: b?.attempt?.up === true, queued: b?.queue.length ?? 0, dropped: b?.dropped ?? 0, droppedTotal: this.#b.droppedTotal };
  }

  /**
   * TEST ONLY: destroy the socket of `broker` without DISCONNECT, as a power cut
   * or a dead link would, so the broker publishes the will.
   */
  _destroySocket(broker: string): void {
    this.#b.get(broker)?.attempt?.client.stream?.destroy();
  }

  close(): Promise<void> {
    this.#closed ??= (async () => {
      const ends: Promise<void>[] = [];
      for (const b of this.#b.all()) {
        const a = b.attempt;
        if (!a) continue;
        this.#b.retire(b, a);
        ends.push(this.#b.endClient(a.client, !a.up));
      }
      await Promise.all(ends);
      this.#log.info({ brokers: ends.length }, 'transport closed');
    })();
    return this.#closed;
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
      ...(o.password == null && o.passwordFile != null ? { password: passwordOf(readFileSync(o.passwordFile, 'utf8')) } : {}),
    };
    return { ...options, ...this.#tls };
  }
}
