import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import type { CmConfig } from '../config/cm-config.js';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { Pointer } from '../protocol/types.js';
import { HttpServer } from './http-server.js';
import { ListBook, type PointersSigner, type SignedList } from './list-book.js';
import { LoadPolicy, RateMeter } from './load.js';
import { renderMetrics } from './metrics.js';
import { AckBatcher } from './ack-frames.js';
import { PeerLinks } from './peer-links.js';
import { PeerTracker } from './peers.js';
import { PhoneTable, type HomedPhone } from './phone-table.js';
import { Rebalancer } from './rebalancer.js';
import { Responder } from './responder.js';
import { decodeLoad } from '../protocol/codec.js';
import { loadKeySigner } from './signer.js';

/**
 * The call manager's composition root: one MQTT connection (mqtt.js, with its
 * own reconnect every second — a CM has one broker and nowhere else to go),
 * the keep-alive responder, peer tracking, load publishing and the HTTP side.
 * The pieces are pure and tested alone; this class only wires them.
 */

/** How the MQTT client is made; tests may inject one. */
export type MqttConnect = (url: string, opts: IClientOptions) => MqttClient;

export interface CallManagerOptions {
  config: CmConfig;
  log: Logger;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Default mqtt.js `connect`. */
  mqttConnect?: MqttConnect;
  /** Default: Ed25519 with the key at `config.signingKey`, kid `config.keyId`. */
  signer?: PointersSigner;
}

/** Housekeeping period: sweep the phone table, publish load when due (ms). */
const TICK_MS = 1000;
/** At most one debug line about invalid keep-alives per this many ms. */
const INVALID_LOG_GAP_MS = 10_000;
/** Period of sending queued rebalance moves (ms). */
const DRAIN_MS = 100;
/** Bytes waiting for the broker socket above which acks are dropped rather than queued. */
const ACK_BACKLOG_MAX = 4 * 1024 * 1024;
/** How long stop() waits for the broker to acknowledge the offline state (ms). */
const STOP_PUBLISH_TIMEOUT_MS = 2000;

const STATE_ONLINE = '{"online":true}';
const STATE_OFFLINE = '{"online":false}';

export class CallManager {
  readonly #config: CmConfig;
  readonly #root: Logger;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #mqttConnect: MqttConnect;
  readonly #signerOption: PointersSigner | undefined;
  readonly #t: Topics;
  /** `P/phone/` — phone topics are built by concatenation on the hot path. */
  readonly #phoneBase: string;

  #client: MqttClient | undefined;
  /** Acks as ready-made frames, one socket write per tick (ack-frames.ts). */
  #acks: AckBatcher | undefined;
  #http: HttpServer | undefined;
  #book: ListBook | undefined;
  #table: PhoneTable | undefined;
  #peers: PeerTracker | undefined;
  #responder: Responder | undefined;
  #kaRate: RateMeter | undefined;
  #servicesRate: RateMeter | undefined;
  #loadPolicy: LoadPolicy | undefined;
  #tick: TimerHandle | undefined;
  #drainTimer: TimerHandle | undefined;
  #rebalancer: Rebalancer | undefined;
  #links: PeerLinks | undefined;
  #connected = false;
  #started = false;
  #stopping: Promise<void> | undefined;
  #servicesRequests = 0;
  #lastInvalidLog = -Infinity;
  #invalidSinceLog = 0;
  /** Rebalance moves sent. */
  get rebalanceMoves(): number {
    return this.#rebalancer?.moves ?? 0;
  }

  /** The rebalancer (for tests and metrics). */
  get rebalancer(): Rebalancer | undefined {
    return this.#rebalancer;
  }

  constructor(opts: CallManagerOptions) {
    this.#config = opts.config;
    this.#root = opts.log;
    this.#log = opts.log.child({ mod: 'cm' });
    this.#clock = opts.clock ?? systemClock;
    this.#mqttConnect = opts.mqttConnect ?? connect;
    this.#signerOption = opts.signer;
    this.#t = topics(opts.config.topicPrefix);
    this.#phoneBase = this.#t.phoneAck('x').slice(0, -'x/ack'.length);
  }

  /** Load the key, bind HTTP, connect to the broker. Throws CONFIG_INVALID / TRANSPORT. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const c = this.#config;
    const now = this.#clock.now();
    const signer = this.#signerOption ?? (await loadKeySigner(c.signingKey, c.keyId));
    const group: Pointer[] = c.group.map((g) => ({ id: g.id, broker: g.broker, services: g.services }));
    this.#book = new ListBook({ group, baseVersion: c.pointersVersion, clock: this.#clock, sign: signer, lazyRestore: c.rebalance.enabled });
    this.#table = new PhoneTable(c.keepalive.phoneIntervalMs);
    this.#peers = new PeerTracker(c.cmId, c.group.map((g) => g.id));
    this.#responder = new Responder({ cmId: c.cmId, book: this.#book, table: this.#table, clock: this.#clock });
    this.#kaRate = new RateMeter(now, 10);
    this.#servicesRate = new RateMeter(now, 10);
    this.#loadPolicy = new LoadPolicy({ periodMs: c.rebalance.periodMs });
    const table = this.#table;
    const peers = this.#peers;
    this.#rebalancer = new Rebalancer({
      self: c.cmId,
      group: c.group,
      enabled: c.rebalance.enabled,
      periodMs: c.rebalance.periodMs,
      threshold: c.rebalance.threshold,
      maxMovesPerSec: c.rebalance.maxMovesPerSec,
      cooldownMs: c.rebalance.cooldownMs,
      log: this.#root.child({ mod: 'rebalance' }),
      homed: (now) => table.homedPhones(now),
      isOffline: (id) => peers.isOffline(id),
      push: (phone, to) => this.#pushRebalance(phone, to),
      release: (phone) => this.#responder?.release(phone),
    });
    // Sign the group list now so a bad key fails at start, not on the first keep-alive.
    this.#book.groupList();

    const self = c.group.find((g) => g.id === c.cmId);
    const servicesUrl = self?.services ?? `http://${c.http.host}:${c.http.port}/services`;
    this.#http = new HttpServer(
      c.http.host,
      c.http.port,
      {
        cmId: c.cmId,
        servicesUrl,
        connected: () => this.#connected,
        phonesHomed: () => this.phonesHomed(),
        directory: () =>
          [...this.homedPhones()]
            .map((p) => p.phone)
            .sort()
            .slice(0, 32)
            .map((p) => ({ name: p, telephone: p })),
        metricsText: () => this.metricsText(),
        onServicesRequest: () => {
          this.#servicesRequests++;
          this.#servicesRate?.add(this.#clock.now());
        },
      },
      this.#root.child({ mod: 'http' }),
    );
    await this.#http.start();
    this.#connect();
    this.#links = new PeerLinks({
      ownBroker: c.broker,
      peers: c.group.filter((g) => g.id !== c.cmId),
      topics: this.#t,
      clientId: `ipphone-cm-${c.cmId}`,
      base: this.#baseMqttOptions(),
      connect: this.#mqttConnect,
      log: this.#root.child({ mod: 'links' }),
      onMessage: (topic, payload) => this.#onPeerMessage(topic, payload),
      onReachable: (ids, reachable) => {
        if (this.#peers?.setUnreachable(ids, !reachable)) this.#peersChanged(ids.join(','));
      },
    });
    this.#links.start();
    this.#scheduleTick();
    this.#log.info({ cmId: c.cmId, broker: c.broker, version: this.#book.version }, 'call manager started');
  }

  /** Publish the offline state, disconnect, close HTTP. Idempotent. */
  stop(): Promise<void> {
    this.#stopping ??= this.#stop();
    return this.#stopping;
  }

  /** True while connected to the broker. */
  get connected(): boolean {
    return this.#connected;
  }

  /** The bound HTTP port (useful with port 0). */
  get httpPort(): number | undefined {
    return this.#http?.port;
  }

  /** Phones homed here now. */
  phonesHomed(): number {
    return this.#table?.count(this.#clock.now()) ?? 0;
  }

  /** Homed phones with their busy flag, for the rebalancer. */
  homedPhones(): Iterable<HomedPhone> {
    return this.#table?.homedPhones(this.#clock.now()) ?? [];
  }

  /** The list book (for the rebalancer's `setPhoneList`). */
  get book(): ListBook | undefined {
    return this.#book;
  }

  /** Prometheus text of the current counters. */
  metricsText(): string {
    const now = this.#clock.now();
    const r = this.#responder;
    return renderMetrics({
      phonesHomed: this.phonesHomed(),
      keepalivesTotal: r?.keepalives ?? 0,
      keepalivesPerSecond: Math.round((this.#kaRate?.rate(now) ?? 0) * 100) / 100,
      keepalivesInvalidTotal: r?.invalid ?? 0,
      pointerPushes: r?.pushes ?? new Map(),
      rebalanceMovesTotal: this.rebalanceMoves,
      servicesRequestsTotal: this.#servicesRequests,
      brokerConnected: this.#connected,
      acksDroppedTotal: this.#acks?.dropped ?? 0,
    });
  }

  /** Protocol and credentials shared by every connection of this call manager. */
  #baseMqttOptions(): IClientOptions {
    const m = this.#config.mqtt;
    const opts: IClientOptions = { protocolVersion: m.protocolVersion };
    if (m.username !== null && m.username !== undefined) opts.username = m.username;
    if (m.password !== null && m.password !== undefined) opts.password = m.password;
    return opts;
  }

  #connect(): void {
    const c = this.#config;
    const stateTopic = this.#t.cmState(c.cmId);
    const keepaliveTopic = this.#t.cmKeepalive(c.cmId);
    const peerStateTopics = c.group.filter((g) => g.id !== c.cmId).map((g) => this.#t.cmState(g.id));
    const peerLoadTopics = c.group.filter((g) => g.id !== c.cmId).map((g) => this.#t.cmLoad(g.id));
    const log = this.#root.child({ mod: 'mqtt' });
    const opts: IClientOptions = {
      ...this.#baseMqttOptions(),
      // A fixed client id: a restarted CM takes over its old session at once, so a
      // stale connection's will cannot mark the new process offline later.
      clientId: `ipphone-cm-${c.cmId}`,
      clean: true,
      keepalive: 30,
      reconnectPeriod: 1000,
      connectTimeout: 10_000,
      resubscribe: false,
      queueQoSZero: false,
      will: { topic: stateTopic, payload: Buffer.from(STATE_OFFLINE), qos: 1, retain: true },
    };
    const client = this.#mqttConnect(c.broker, opts);
    this.#client = client;

    client.on('connect', () => {
      this.#connected = true;
      log.info({ broker: c.broker }, 'broker connected');
      client.publish(stateTopic, STATE_ONLINE, { qos: 1, retain: true });
      client.subscribe(keepaliveTopic, { qos: 0 });
      if (peerStateTopics.length > 0) client.subscribe([...peerStateTopics, ...peerLoadTopics], { qos: 1 });
      this.#publishLoad(true);
    });
    client.on('close', () => {
      if (this.#connected) log.warn({ broker: c.broker }, 'broker connection lost');
      this.#connected = false;
    });
    client.on('error', (err) => log.warn({ err: errorMessage(err) }, 'mqtt error'));
    client.on('message', (topic, payload) => {
      if (topic === keepaliveTopic) this.#onKeepalive(payload);
      else this.#onPeerMessage(topic, payload);
    });
  }

  #onKeepalive(payload: Buffer): void {
    const r = this.#responder;
    const client = this.#client;
    if (r === undefined || client === undefined) return;
    const res = r.handle(payload);
    const now = this.#clock.now();
    if (typeof res === 'string') {
      this.#invalidSinceLog++;
      if (now - this.#lastInvalidLog >= INVALID_LOG_GAP_MS) {
        this.#log.debug({ reason: res, count: this.#invalidSinceLog }, 'invalid keep-alive');
        this.#lastInvalidLog = now;
        this.#invalidSinceLog = 0;
      }
      return;
    }
    this.#kaRate?.add(now);
    // res.phone passed the id check in parseKeepalive: safe as one topic level.
    const base = this.#phoneBase + res.phone;
    this.#ackBatcher(client).add(`${base}/ack`, res.ack);
    if (res.push !== undefined) this.#push(res.phone, res.push, `${base}/pointers`);
  }

  #ackBatcher(client: MqttClient): AckBatcher {
    this.#acks ??= new AckBatcher(
      {
        write: (frames) => {
          const stream = client.stream as (typeof client.stream & { destroyed?: boolean; writable?: boolean; writableLength?: number }) | undefined;
          // QoS 0: while disconnected, or with 4 MiB already waiting for the socket, an ack is dropped (the phone's next keep-alive gets one).
          if (!client.connected || client.disconnecting || stream === undefined || stream.destroyed === true || stream.writable === false || (stream.writableLength ?? 0) > ACK_BACKLOG_MAX) return false;
          stream.write(frames);
          return true;
        },
      },
      this.#config.mqtt.protocolVersion,
    );
    return this.#acks;
  }

  #push(phone: string, list: SignedList, topic: string): void {
    // The phone's ack goes out first, as before the push (pushes are rare; this keeps the order).
    this.#acks?.flush();
    this.#client?.publish(topic, list.envelopeJson, { qos: 1 });
    this.#log.info({ phone, version: list.version, reason: list.reason, first: list.list[0]?.id }, 'pointers pushed');
  }

  #onPeerMessage(topic: string, payload: Buffer): void {
    if (topic.endsWith('/load')) this.#onPeerLoad(topic, payload);
    else this.#onPeerState(topic, payload);
  }

  #onPeerLoad(topic: string, payload: Buffer): void {
    const id = this.#t.idOf(topic, 'cm');
    if (id === undefined || topic !== this.#t.cmLoad(id)) return;
    try {
      this.#rebalancer?.onLoad(id, decodeLoad(payload), this.#clock.now());
    } catch (err) {
      this.#log.warn({ peer: id, err: errorMessage(err) }, 'peer load not understood');
    }
  }

  /** Send `phone` its own list with `to` first and the group list after it. */
  #pushRebalance(phone: string, to: string): void {
    const book = this.#book;
    const group = book?.groupList().list;
    const target = group?.find((p) => p.id === to);
    if (book === undefined || group === undefined || target === undefined) return;
    const signed = book.setPhoneList(phone, [target, ...group.filter((p) => p.id !== to)], 'rebalance');
    this.#acks?.flush();
    this.#client?.publish(`${this.#phoneBase}${phone}/pointers`, signed.envelopeJson, { qos: 1 });
    this.#responder?.pushes.set('rebalance', (this.#responder.pushes.get('rebalance') ?? 0) + 1);
    this.#log.debug({ phone, to, version: signed.version }, 'rebalance move sent');
  }

  #drain(): void {
    const r = this.#rebalancer;
    if (r === undefined || this.#drainTimer !== undefined || this.#stopping !== undefined) return;
    if (r.drain(this.#clock.now()) === 0) return;
    this.#drainTimer = this.#clock.setTimeout(() => {
      this.#drainTimer = undefined;
      this.#drain();
    }, DRAIN_MS);
  }

  #onPeerState(topic: string, payload: Buffer): void {
    const id = this.#t.idOf(topic, 'cm');
    const peers = this.#peers;
    const book = this.#book;
    if (id === undefined || peers === undefined || book === undefined) return;
    const u = peers.update(id, payload);
    if (u === 'invalid') this.#log.warn({ peer: id }, 'peer state not understood');
    if (u !== 'changed') return;
    this.#peersChanged(id);
  }

  #peersChanged(peer?: string): void {
    const peers = this.#peers;
    const book = this.#book;
    if (peers === undefined || book === undefined) return;
    const before = book.offline.size;
    book.setOffline(peers.offline);
    // A peer came back. With rebalancing on, lists change lazily (ListBook.lazyRestore): hand
    // the restored list to the phones that arrived from failed peers, a few at a time, so they
    // return to their primary at the rebalance rate instead of all at once.
    if (this.#config.rebalance.enabled && peers.offline.size < before && this.#responder !== undefined) {
      const here = new Set([...this.homedPhones()].map((p) => p.phone));
      const owed = new Set([...this.#responder.takeDemoted(), ...book.overridden()]);
      this.#rebalancer?.restore([...owed].filter((p) => here.has(p)).map((phone) => ({ phone, to: book.forPhone(phone).list[0]?.id ?? this.#config.cmId })));
      this.#drain();
    }
    this.#log.info({ peer, offline: [...peers.offline], version: book.version }, 'peer state changed');
  }

  /**
   * True while the housekeeping loop runs on time (within three ticks). The
   * broker being unreachable does not count: mqtt.js reconnects, and a
   * restart would not help.
   */
  healthy(): boolean {
    return this.#started && this.#stopping === undefined && this.#clock.now() - this.#lastTickAt < 3 * TICK_MS + 1000;
  }

  #lastTickAt = 0;

  #scheduleTick(): void {
    this.#lastTickAt = this.#clock.now();
    this.#tick = this.#clock.setTimeout(() => {
      this.#tick = undefined;
      if (this.#stopping !== undefined) return;
      // Bounded memory even while no load goes out (e.g. broker down).
      this.#table?.sweep(this.#clock.now());
      this.#publishLoad(false);
      if (this.#connected) {
        this.#rebalancer?.tick(this.#clock.now());
        this.#drain();
      }
      this.#scheduleTick();
    }, TICK_MS);
  }

  #publishLoad(force: boolean): void {
    const client = this.#client;
    const policy = this.#loadPolicy;
    if (client === undefined || policy === undefined || !this.#connected) return;
    const now = this.#clock.now();
    const phones = this.phonesHomed();
    if (!force && !policy.due(phones, now)) return;
    const self = this.#config.group.find((g) => g.id === this.#config.cmId);
    const servicesRps = Math.round((this.#servicesRate?.rate(now) ?? 0) * 100) / 100;
    const body = JSON.stringify({ phones, capacity: self?.capacity ?? 0, servicesRps });
    client.publish(this.#t.cmLoad(this.#config.cmId), body, { qos: 1, retain: true });
    policy.published(phones, now);
  }

  async #stop(): Promise<void> {
    if (this.#tick !== undefined) this.#clock.clearTimeout(this.#tick);
    this.#tick = undefined;
    if (this.#drainTimer !== undefined) this.#clock.clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
    const client = this.#client;
    if (client !== undefined) {
      if (this.#connected) {
        await new Promise<void>((resolve) => {
          const timer = this.#clock.setTimeout(resolve, STOP_PUBLISH_TIMEOUT_MS);
          client.publish(this.#t.cmState(this.#config.cmId), STATE_OFFLINE, { qos: 1, retain: true }, () => {
            this.#clock.clearTimeout(timer);
            resolve();
          });
        });
      }
      await new Promise<void>((resolve) => client.end(!this.#connected, {}, () => resolve()));
      this.#connected = false;
    }
    await this.#links?.stop();
    await this.#http?.stop();
    this.#log.info({ cmId: this.#config.cmId }, 'call manager stopped');
  }
}
