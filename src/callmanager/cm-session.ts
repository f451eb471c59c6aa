/**
 * The call manager's MQTT session on its own broker (call-manager.ts wires
 * it): one mqtt.js client with its own reconnect every second — a CM has one
 * broker and nowhere else to go — the retained signed online/offline state of
 * this run (run-state.ts) with each connection's own pre-signed offline as its
 * will, the guard of its own state topic, the keep-alive and peer subscriptions, and acks
 * written as ready-made frames, one socket write per tick (ack-frames.ts).
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import type { CmConfig } from '../config/cm-config.js';
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Topics } from '../protocol/topics.js';
import { resolveCredentials, type ResolvedCredentials } from '../config/mqtt-credentials.js';
import { AckBatcher } from './ack-frames.js';
import type { CmRun } from './run-state.js';

/** How the MQTT client is made; tests may inject one. */
export type MqttConnect = (url: string, opts: IClientOptions) => MqttClient;

/**
 * Bytes waiting for the broker socket above which acks are dropped rather than
 * queued. Room for a failed peer's phones arriving at once: each is written an
 * ack and pushed its list (~0.8 kB together), 50,000 phones ~40 MB; at 4 MiB a
 * 10,000-phone failover on a busy broker had most acks dropped while their
 * pushes (QoS 1, never dropped) queued, and every phone waited a keep-alive
 * interval for another (bench/absorb.ts, issue 18).
 */
const ACK_BACKLOG_MAX = 64 * 1024 * 1024;
/** How long stop() waits for the broker to acknowledge the offline state (ms). */
const STOP_PUBLISH_TIMEOUT_MS = 2000;


export interface CmSessionOptions {
  config: CmConfig;
  /** The root logger (the session logs as `mod: 'mqtt'`). */
  log: Logger;
  clock: Clock;
  connect: MqttConnect;
  topics: Topics;
  /** This run's signed states: the online, each connection's will, the own-topic guard. */
  run: CmRun;
  /**
   * A keep-alive arrived on this call manager's keep-alive topic
   * (`topicPhone` undefined) or on a per-phone one, `P/cm/{cmId}/keepalive/{topicPhone}`.
   */
  onKeepalive(payload: Buffer, topicPhone: string | undefined): void;
  /** Any other message: a peer's state or load, the answer to our challenge of a peer. */
  onPeerMessage(topic: string, payload: Buffer): void;
  /** A liveness challenge of this call manager from receiver `from` (`P/cm/{cmId}/challenge/{from}`). */
  onChallenge(from: string, payload: Buffer): void;
  /** Connected (again), state and subscriptions sent. */
  onConnect(): void;
  /** More filters to subscribe to (QoS 0) on each connect — the console's phone topics; their messages go to onPeerMessage. */
  watch?: readonly string[];
}

/** Credentials read once per config (the session and the peer links share them). */
const credentialsOf = new WeakMap<CmConfig['mqtt'], ResolvedCredentials>();

/**
 * Protocol and credentials shared by every connection of this call manager
 * (its own broker and its peer links): user name, password (or password
 * file), CA, client certificate and key, the files read on the first call.
 * Throws CONFIG_INVALID naming the field and path when a file cannot be used.
 */
export function baseMqttOptions(config: CmConfig): IClientOptions {
  const m = config.mqtt;
  let creds = credentialsOf.get(m);
  if (creds === undefined) {
    creds = resolveCredentials(m);
    credentialsOf.set(m, creds);
  }
  return { protocolVersion: m.protocolVersion, ...creds };
}

/** The connection to the call manager's own broker. Constructing it connects. */
export class CmSession {
  readonly #o: CmSessionOptions;
  readonly #client: MqttClient;
  readonly #acks: AckBatcher<{ topic: string; json: string }>;
  #connected = false;

  constructor(opts: CmSessionOptions) {
    this.#o = opts;
    const c = opts.config;
    const t = opts.topics;
    const stateTopic = t.cmState(c.cmId);
    const keepaliveTopic = t.cmKeepalive(c.cmId);
    // Per-phone keep-alives: `${keepaliveTopic}/{phoneId}`, the id read off the topic.
    const phoneKeepaliveFilter = t.cmPhoneKeepaliveFilter(c.cmId);
    const phoneKeepaliveHead = `${keepaliveTopic}/`;
    const peerStateTopics = c.group.filter((g) => g.id !== c.cmId).map((g) => t.cmState(g.id));
    const peerLoadTopics = c.group.filter((g) => g.id !== c.cmId).map((g) => t.cmLoad(g.id));
    // The answers to the challenges we send our peers (cm-liveness.ts).
    const peerAnswerTopics = c.group.filter((g) => g.id !== c.cmId).map((g) => t.cmChallengeAnswer(g.id, c.cmId));
    const challengeFilter = t.cmChallengeFilter(c.cmId);
    const challengeHead = challengeFilter.slice(0, -1);
    const log = opts.log.child({ mod: 'mqtt' });
    const run = opts.run;
    const client = opts.connect(c.broker, {
      ...baseMqttOptions(c),
      // A fixed client id: a restarted CM takes over its old session at once, so a
      // stale connection's will cannot mark the new process offline later.
      clientId: `ipphone-cm-${c.cmId}`,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: false,
      queueQoSZero: false,
      // The pre-signed offline of this connection; each reconnect gets its own (run-state.ts).
      will: { topic: stateTopic, payload: Buffer.from(run.connect()), qos: 1, retain: true },
    });
    this.#client = client;
    client.on('reconnect', () => {
      client.options.will = { topic: stateTopic, payload: Buffer.from(run.connect()), qos: 1, retain: true };
    });
    // The socket is corked once per tick for everything a flush hands it — the runs of
    // ack frames and the pushes between them (mqtt-packet corks each packet the same way):
    // one writev, in the order queued.
    let corked: unknown;
    this.#acks = new AckBatcher<{ topic: string; json: string }>(
      {
        write: (frames) => {
          const stream = client.stream as (typeof client.stream & { destroyed?: boolean; writable?: boolean; writableLength?: number }) | undefined;
          // QoS 0: while disconnected, or with ACK_BACKLOG_MAX already waiting for the socket, an ack is dropped (the phone's next keep-alive gets one).
          if (!client.connected || client.disconnecting || stream === undefined || stream.destroyed === true || stream.writable === false || (stream.writableLength ?? 0) > ACK_BACKLOG_MAX) return false;
          if (corked !== stream && typeof stream.cork === 'function') {
            stream.cork();
            corked = stream;
            process.nextTick(() => {
              corked = undefined;
              stream.uncork();
            });
          }
          stream.write(frames);
          return true;
        },
      },
      c.mqtt.protocolVersion,
      undefined,
      // A push goes out right behind its phone's ack, not behind the batch's last ack (ack-frames.ts).
      (p) => client.publish(p.topic, p.json, { qos: 1 }),
    );

    client.on('connect', () => {
      this.#connected = true;
      log.info({ broker: c.broker }, 'broker connected');
      // Challenges first: a receiver that cannot order our online challenges it at once,
      // and a broker handles one connection's packets in order (the subscription is in
      // place when the online goes out).
      client.subscribe(challengeFilter, { qos: 1 });
      // Our current state: the online, or the offline while we report ourselves offline (SIP server silent).
      client.publish(stateTopic, run.current, { qos: 1, retain: true });
      client.subscribe([keepaliveTopic, phoneKeepaliveFilter], { qos: 0 });
      // Our own state too: anything there that is not our current state is answered with it (run-state.ts).
      client.subscribe(stateTopic, { qos: 1 });
      if (peerStateTopics.length > 0) client.subscribe([...peerStateTopics, ...peerLoadTopics, ...peerAnswerTopics], { qos: 1 });
      if (opts.watch !== undefined && opts.watch.length > 0) client.subscribe([...opts.watch], { qos: 0 });
      opts.onConnect();
    });
    client.on('close', () => {
      if (this.#connected) log.warn({ broker: c.broker }, 'broker connection lost');
      this.#connected = false;
      run.disconnected();
    });
    client.on('error', (err) => log.warn({ err: errorMessage(err) }, 'mqtt error'));
    client.on('message', (topic, payload) => {
      if (topic === keepaliveTopic) opts.onKeepalive(payload, undefined);
      else if (topic === stateTopic) run.onOwnState(payload);
      else if (topic.startsWith(phoneKeepaliveHead)) opts.onKeepalive(payload, topic.slice(phoneKeepaliveHead.length));
      else if (topic.startsWith(challengeHead) && !topic.includes('/', challengeHead.length)) opts.onChallenge(topic.slice(challengeHead.length), payload);
      else opts.onPeerMessage(topic, payload);
    });
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.#connected;
  }

  /** Acks the batcher could not write. */
  get acksDropped(): number {
    return this.#acks.dropped;
  }

  /** Queue one QoS 0 ack frame for this tick's write. */
  ack(topic: string, payload: string): void {
    this.#acks.add(topic, payload);
  }

  /**
   * Publish a signed list (QoS 1) after the acks already queued, so a phone's ack
   * precedes its push: queued in the batch right behind them, and published when
   * it is flushed (one write for both, the push not waiting for the batch's later acks).
   */
  pushList(topic: string, envelopeJson: string): void {
    this.#acks.later({ topic, json: envelopeJson }, envelopeJson.length + topic.length);
  }

  /** Publish a QoS 1 message, not retained (an answer to a challenge, a challenge of a peer); dropped while disconnected. */
  publish(topic: string, payload: string): void {
    if (this.#connected) this.#client.publish(topic, payload, { qos: 1 });
  }

  /** Publish a retained QoS 1 message (the load). */
  publishRetained(topic: string, payload: string): void {
    this.#client.publish(topic, payload, { qos: 1, retain: true });
  }

  /** Publish the signed offline of this connection when connected (waiting a bounded time for the broker), then end. */
  async stop(): Promise<void> {
    const client = this.#client;
    const clock = this.#o.clock;
    const run = this.#o.run;
    // Lists queued in this tick go out before the offline (the phones' acks were written).
    this.#acks.flush();
    run.stopping();
    if (this.#connected) {
      await new Promise<void>((resolve) => {
        const timer = clock.setTimeout(resolve, STOP_PUBLISH_TIMEOUT_MS);
        // The same signed offline as this connection's will.
        client.publish(this.#o.topics.cmState(this.#o.config.cmId), run.offline, { qos: 1, retain: true }, () => {
          clock.clearTimeout(timer);
          resolve();
        });
      });
    }
    await new Promise<void>((resolve) => client.end(!this.#connected, {}, () => resolve()));
    this.#connected = false;
  }
}
