/**
 * The per-broker half of the agent's MQTT adapter (mqtt-transport.ts is the
 * public facade): for each distinct broker its connection attempt, its
 * subscriptions, its bounded queue of QoS 1 messages held while down, and
 * the in-flight ones requeued if the connection dies. Every attempt ends in
 * exactly one `up` or `down`, and every `up` in exactly one `down`, unless
 * retired by the agent (then nothing is emitted).
 */
import type { MqttClient } from 'mqtt';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { brokerKey } from '../protocol/pointers.js';
import type { PublishOptions, Qos, TransportDownReason, TransportEvents } from './ports.js';

/** A message to publish, as queued while its broker is down. */
export interface Pending {
  topic: string;
  payload: string | Buffer;
  opts: PublishOptions;
}

/** One connection attempt and, after CONNACK, the connection it became. */
export interface Attempt {
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

/** One distinct broker (by {@link brokerKey}) and what the agent wants of it. */
export interface Broker {
  key: string;
  /** The spelling first used for this broker; connected to as given (keeps any credentials in it). */
  url: string;
  attempt: Attempt | null;
  subs: Map<string, Qos>;
  queue: Pending[];
  /** Messages dropped from the queue since the last flush. */
  dropped: number;
}

/** What {@link MqttBrokers} needs from the transport that owns it. */
export interface MqttBrokersOptions {
  events: TransportEvents;
  log: Logger;
  clock: Clock;
  /** Per-broker bound of queued QoS 1 messages; oldest dropped. */
  maxQueue: number;
  /** Deadline from starting an attempt to CONNACK, ms. */
  connectTimeoutMs: number;
  /** How long {@link MqttBrokers.endClient} waits for a graceful end before forcing, ms. */
  closeTimeoutMs: number;
}

/** The brokers of one transport, their attempts and queues. */
export class MqttBrokers {
  readonly #o: MqttBrokersOptions;
  readonly #log: Logger;
  readonly #brokers = new Map<string, Broker>();
  #droppedTotal = 0;

  constructor(opts: MqttBrokersOptions) {
    this.#o = opts;
    this.#log = opts.log;
  }

  /** QoS 1 messages dropped from any queue in this transport's lifetime. */
  get droppedTotal(): number {
    return this.#droppedTotal;
  }

  /** The broker `url` (any spelling) if known. */
  get(url: string): Broker | undefined {
    return this.#brokers.get(brokerKey(url));
  }

  /** The broker `url`, created on first use. Throws `CONFIG_INVALID` for an invalid URL. */
  broker(url: string): Broker {
    const key = brokerKey(url);
    let b = this.#brokers.get(key);
    if (!b) {
      b = { key, url, attempt: null, subs: new Map(), queue: [], dropped: 0 };
      this.#brokers.set(key, b);
    }
    return b;
  }

  /** Every broker known. */
  all(): IterableIterator<Broker> {
    return this.#brokers.values();
  }

  /** Make `client` the attempt of `b`: deadline, CONNACK, loss and message handling. */
  attach(b: Broker, client: MqttClient): void {
    const a: Attempt = { client, up: false, done: false, lastError: undefined, refusal: undefined, deadline: undefined, inflight: new Set() };
    b.attempt = a;
    this.#log.debug({ broker: b.key }, 'connecting');
    const timeoutMs = this.#o.connectTimeoutMs;
    // Our own deadline on the injected clock, over mqtt.js's connectTimeout: it covers
    // the TCP/TLS connect too and is what unit tests can advance.
    a.deadline = this.#o.clock.setTimeout(() => {
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
      this.emit('message', b.key, topic, payload);
    });
  }

  #onConnack(b: Broker, a: Attempt): void {
    if (a.done || a.up) return;
    a.up = true;
    if (a.deadline !== undefined) this.#o.clock.clearTimeout(a.deadline);
    a.deadline = undefined;
    this.#log.info({ broker: b.key, subscriptions: b.subs.size, queued: b.queue.length }, 'broker up');
    // Subscriptions and queued messages go out in order on this socket before anything
    // the agent publishes from its `up` handler.
    for (const [topic, qos] of b.subs) this.subscribe(b, a, topic, qos);
    if (b.dropped > 0) this.#log.warn({ broker: b.key, dropped: b.dropped }, 'queued messages were dropped while down');
    b.dropped = 0;
    const queued = b.queue;
    b.queue = [];
    for (const msg of queued) this.send(b, a, msg);
    this.emit('up', b.key);
  }

  /** SUBSCRIBE `topic` on the live attempt `a`; a failure is logged. */
  subscribe(b: Broker, a: Attempt, topic: string, qos: Qos): void {
    a.client.subscribe(topic, { qos }, (err, granted) => {
      const failed = granted?.find((g) => g.qos === 128);
      if (err || failed) this.#log.warn({ broker: b.key, topic, err: err ? errorMessage(err) : 'refused' }, 'subscribe failed');
    });
  }

  /** Publish `msg` on the live attempt `a`, tracking a QoS 1 message until it is acknowledged. */
  send(b: Broker, a: Attempt, msg: Pending): void {
    if (msg.opts.qos === 1) a.inflight.add(msg);
    a.client.publish(msg.topic, msg.payload, { qos: msg.opts.qos, retain: msg.opts.retain ?? false }, (err) => {
      if (!err) a.inflight.delete(msg);
      else this.#log.debug({ broker: b.key, topic: msg.topic, err: errorMessage(err) }, 'publish failed');
    });
  }

  /** Queue `msgs` for `b`'s next connection, dropping the oldest beyond the bound. */
  enqueue(b: Broker, msgs: Pending[]): void {
    b.queue.push(...msgs);
    const over = b.queue.length - this.#o.maxQueue;
    if (over <= 0) return;
    b.queue.splice(0, over);
    // Warn once per burst (the first drop since the last flush); the total is logged on flush.
    if (b.dropped === 0) this.#log.warn({ broker: b.key, maxQueue: this.#o.maxQueue }, 'publish queue full, dropping oldest');
    b.dropped += over;
    this.#droppedTotal += over;
  }

  /** End attempt `a` with one `down` and release its client. */
  #end(b: Broker, a: Attempt, reason: TransportDownReason, detail: { error?: string; serverReference?: string; reasonCode?: number }): void {
    if (a.done) return;
    const wasUp = a.up;
    this.retire(b, a);
    this.#log.info({ broker: b.key, reason, ...detail, wasUp }, 'broker down');
    void this.endClient(a.client, true);
    this.emit('down', b.key, reason, detail);
  }

  /** Detach `a` from `b`: no events from it from now on; its unacknowledged QoS 1 messages go back to the queue. */
  retire(b: Broker, a: Attempt): void {
    a.done = true;
    if (a.deadline !== undefined) this.#o.clock.clearTimeout(a.deadline);
    a.deadline = undefined;
    if (b.attempt === a) b.attempt = null;
    if (a.inflight.size > 0) {
      const waiting = b.queue;
      b.queue = [];
      this.enqueue(b, [...a.inflight, ...waiting]);
      a.inflight.clear();
    }
  }

  /** End `client` and resolve once its socket is closed (forcing after closeTimeoutMs). */
  endClient(client: MqttClient, force: boolean): Promise<void> {
    const clock = this.#o.clock;
    return new Promise<void>((resolve) => {
      const stream = client.stream as (NodeJS.EventEmitter & { closed?: boolean; destroyed?: boolean; destroy?: () => void }) | undefined;
      let timer: TimerHandle | undefined;
      const finish = (): void => {
        if (timer !== undefined) clock.clearTimeout(timer);
        timer = undefined;
        resolve();
      };
      const whenClosed = (): void => {
        // net.Socket has `closed`; other streams (ws) may only say `destroyed`.
        if (!stream || stream.closed === true || (stream.closed === undefined && stream.destroyed === true)) finish();
        else stream.once('close', finish);
      };
      timer = clock.setTimeout(() => {
        timer = undefined;
        stream?.destroy?.();
        resolve();
      }, this.#o.closeTimeoutMs);
      try {
        client.end(force, () => whenClosed());
      } catch (err) {
        this.#log.debug({ err: errorMessage(err) }, 'end failed');
        stream?.destroy?.();
        finish();
      }
    });
  }

  /** Deliver a transport event; a throwing handler is logged, never unwound into mqtt.js. */
  emit<E extends keyof TransportEvents>(event: E, ...args: Parameters<TransportEvents[E]>): void {
    try {
      (this.#o.events[event] as (...a: Parameters<TransportEvents[E]>) => void)(...args);
    } catch (err) {
      // A throwing handler must not unwind into mqtt.js's parser or socket callbacks.
      this.#log.error({ event, err: errorMessage(err) }, 'transport event handler threw');
    }
  }
}
