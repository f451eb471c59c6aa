/**
 * The call manager's group glue (call-manager.ts wires it): peers' retained
 * states and loads — from its own broker and, through PeerLinks, from peers
 * on other brokers — fed to the PeerTracker, the ListBook and the
 * Rebalancer, and the rebalance moves sent as signed lists a few at a time.
 */
import type { CmConfig } from '../config/cm-config.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { decodeLoad } from '../protocol/codec.js';
import { encodeCmChallenge } from '../protocol/cm-state.js';
import type { Topics } from '../protocol/topics.js';
import { baseMqttOptions, type MqttConnect } from './cm-session.js';
import type { ListBook } from './list-book.js';
import { PeerLinks } from './peer-links.js';
import { PeerLiveness } from './peer-liveness.js';
import type { TrustedKeys } from '../protocol/envelope.js';
import { PeerTracker } from './peers.js';
import type { PhoneTable } from './phone-table.js';
import { Rebalancer } from './rebalancer.js';
import { parseKeepalive, type Responder } from './responder.js';

/** Period of sending queued rebalance moves (ms). */
const DRAIN_MS = 100;

export interface CmPeersOptions {
  config: CmConfig;
  /** The root logger. */
  log: Logger;
  clock: Clock;
  topics: Topics;
  /** `P/phone/`: a phone's topics by concatenation, as the keep-alive path builds them. */
  phoneBase: string;
  mqttConnect: MqttConnect;
  book: ListBook;
  table: PhoneTable;
  responder: Responder;
  /** Keys trusted for peers' signed states (peer-liveness.ts cmTrustedKeys). */
  trust: TrustedKeys;
  /** Publish a QoS 1 message on this call manager's own broker (a challenge of a peer there). */
  publish(topic: string, payload: string): void;
  /** Publish a signed list to a phone's pointers topic (after its queued ack). */
  pushList(topic: string, envelopeJson: string): void;
  /** True while connected to this call manager's broker (moves are sent only then). */
  connected(): boolean;
  /**
   * The digest of the group this call manager runs (group-floor.ts groupDigest): a
   * verified peer state announcing it with a higher floor raises our floor.
   */
  groupDigest?: string;
  /** Our group floor was raised to a peer's (store it: group-floor.ts storeRaisedFloor). */
  floorRaised?(floor: number, peer: string): void;
  /** Told each peer load and offline-set change (the operator console, console.ts). */
  observe?: { load(id: string, load: { phones: number; servicesRps: number }): void; offline(offline: ReadonlySet<string>): void };
}

/** Peers, their links and the rebalancer of one call manager. */
export class CmPeers {
  readonly #o: CmPeersOptions;
  readonly #log: Logger;
  readonly #peers: PeerTracker;
  readonly #links: PeerLinks;
  /** Judges peers' states: only a verified one reaches the tracker (and so the lists). */
  readonly #liveness: PeerLiveness;
  /** The rebalancer (for tests and metrics). */
  readonly rebalancer: Rebalancer;
  #drainTimer: TimerHandle | undefined;
  #halted = false;

  constructor(opts: CmPeersOptions) {
    this.#o = opts;
    const c = opts.config;
    const root = opts.log;
    this.#log = root.child({ mod: 'cm' });
    const peers = (this.#peers = new PeerTracker(c.cmId, c.group.map((g) => g.id)));
    this.#liveness = new PeerLiveness({
      keys: opts.trust,
      clock: opts.clock,
      log: root.child({ mod: 'liveness' }),
      // On the broker the peer's state came from: its own, or a linked one.
      announced: (peer, group, floor) => this.#onAnnounced(peer, group, floor),
      challenge: (peer, value) => {
        const topic = opts.topics.cmChallenge(peer, c.cmId);
        const payload = encodeCmChallenge(value);
        if (!this.#links.publish(peer, topic, payload)) opts.publish(topic, payload);
      },
    });
    const table = opts.table;
    this.rebalancer = new Rebalancer({
      self: c.cmId,
      group: c.group,
      enabled: c.rebalance.enabled,
      periodMs: c.rebalance.periodMs,
      threshold: c.rebalance.threshold,
      maxMovesPerSec: c.rebalance.maxMovesPerSec,
      cooldownMs: c.rebalance.cooldownMs,
      log: root.child({ mod: 'rebalance' }),
      homed: (now) => table.homedPhones(now),
      isOffline: (id) => peers.isOffline(id),
      push: (phone, to) => this.#pushRebalance(phone, to),
      release: (phone) => {
        opts.responder.release(phone);
        return opts.book.forPhone(phone).version;
      },
      listVersion: (phone) => opts.book.forPhone(phone).version,
      // Its move is over: the phone has left (its new home gives it lists now) or stayed
      // (it holds our list's version, at or above the floor): its own list is not needed.
      forget: (phone) => opts.book.clearPhoneList(phone),
      connected: opts.connected,
    });
    this.#links = new PeerLinks({
      ownBroker: c.broker,
      peers: c.group.filter((g) => g.id !== c.cmId),
      topics: opts.topics,
      clientId: `ipphone-cm-${c.cmId}`,
      selfId: c.cmId,
      base: baseMqttOptions(c),
      connect: opts.mqttConnect,
      log: root.child({ mod: 'links' }),
      onMessage: (topic, payload) => this.onMessage(topic, payload),
      onReachable: (ids, reachable) => {
        if (peers.setUnreachable(ids, !reachable)) this.#peersChanged(ids.join(','));
      },
    });
  }

  /** Peers' floors for our group refused as beyond the version clock's bound (version-clock.ts PEER_AHEAD_MS). */
  floorsRefused = 0;

  /** Peers' state messages refused (unsigned, forged, empty, replayed, stale). */
  get statesRefused(): number {
    return this.#liveness.refused;
  }

  /** Connect to the peers on other brokers. */
  start(): void {
    this.#links.start();
  }

  /** A peer's retained state or load, or its answer to our challenge. */
  onMessage(topic: string, payload: Buffer): void {
    if (topic.endsWith('/load')) this.#onPeerLoad(topic, payload);
    else if (topic.endsWith('/answer')) this.#onPeerAnswer(topic, payload);
    else this.#onPeerState(topic, payload);
  }

  /**
   * A valid keep-alive of `phone` here, answered: while a rebalance move of it is in
   * flight, the rebalancer learns which list it holds (a superseded move ends at once).
   * Parsed again only for those few phones, off the hot path of the rest.
   */
  onKeepalive(phone: string, payload: Buffer): void {
    if (!this.rebalancer.awaits(phone)) return;
    const ka = parseKeepalive(payload);
    if (typeof ka === 'string' || ka.probe === true) return;
    this.rebalancer.onReport(phone, ka.pointersVersion, this.#o.clock.elapsed());
  }

  /** One housekeeping period while connected: plan moves and start sending them. */
  tick(now: number): void {
    this.rebalancer.tick(now);
    this.#drain();
  }

  /** Stop sending moves (synchronous, first thing on stop). */
  halt(): void {
    this.#halted = true;
    if (this.#drainTimer !== undefined) this.#o.clock.clearTimeout(this.#drainTimer);
    this.#drainTimer = undefined;
  }

  /** Close the peer links. */
  async stop(): Promise<void> {
    this.halt();
    this.#liveness.stop();
    await this.#links.stop();
  }

  #onPeerLoad(topic: string, payload: Buffer): void {
    const t = this.#o.topics;
    const id = t.idOf(topic, 'cm');
    if (id === undefined || topic !== t.cmLoad(id)) return;
    try {
      const load = decodeLoad(payload);
      // A peer's versions, observed: ours are issued above them whatever the two clocks say.
      if (load.version !== undefined && !this.#o.book.observe(load.version, 'peer')) this.#log.warn({ peer: id, version: load.version }, 'peer list version implausibly far ahead; ignored');
      this.rebalancer.onLoad(id, load, this.#o.clock.elapsed());
      this.#o.observe?.load(id, load);
    } catch (err) {
      this.#log.warn({ peer: id, err: errorMessage(err) }, 'peer load not understood');
    }
  }

  /** Send `phone` its own list with `to` first and the group list after it. */
  #pushRebalance(phone: string, to: string): number | undefined {
    const { book, responder } = this.#o;
    const group = book.groupList().list;
    const target = group.find((p) => p.id === to);
    if (target === undefined) return undefined;
    const signed = book.setPhoneList(phone, [target, ...group.filter((p) => p.id !== to)], 'rebalance');
    this.#o.pushList(`${this.#o.phoneBase}${phone}/pointers`, signed.envelopeJson);
    responder.pushes.set('rebalance', (responder.pushes.get('rebalance') ?? 0) + 1);
    this.#log.debug({ phone, to, version: signed.version }, 'rebalance move sent');
    return signed.version;
  }

  #drain(): void {
    if (this.#drainTimer !== undefined || this.#halted) return;
    if (this.rebalancer.drain(this.#o.clock.elapsed()) === 0) return;
    this.#drainTimer = this.#o.clock.setTimeout(() => {
      this.#drainTimer = undefined;
      this.#drain();
    }, DRAIN_MS);
  }

  /** A peer's state changes the offline set (and so the lists) only once verified (peer-liveness.ts). */
  #onPeerState(topic: string, payload: Buffer): void {
    const id = this.#o.topics.idOf(topic, 'cm');
    if (id === undefined || !this.#peers.has(id)) return;
    const online = this.#liveness.judge(id, payload);
    if (online === undefined || this.#peers.update(id, online) !== 'changed') return;
    this.#peersChanged(id);
  }

  /**
   * A verified state of a group peer announced its group digest and floor: the same
   * group with a higher floor raises ours (group-floor.ts, "Floors raised when a peer's
   * group changes"), within the version clock's bound for peers. Another group (a peer
   * not yet restarted with the operator's edit, or already past it) changes nothing.
   */
  #onAnnounced(peer: string, group: string, floor: number): void {
    const { book, groupDigest } = this.#o;
    if (groupDigest === undefined || group !== groupDigest || !this.#peers.has(peer) || floor <= book.floor) return;
    const r = book.raiseFloor(floor);
    if (r === 'implausible') {
      this.floorsRefused++;
      this.#log.warn({ peer, floor }, 'peer group floor implausibly far ahead of our clock; ignored');
      return;
    }
    if (r !== 'raised') return;
    this.#log.info({ peer, floor, version: book.version }, 'group floor raised to a peer\'s: phones holding less get the group list');
    this.#o.floorRaised?.(floor, peer);
  }

  /** A peer's signed answer to our challenge: its run is believed whatever its boot sequence (cm-liveness.ts). */
  #onPeerAnswer(topic: string, payload: Buffer): void {
    const t = this.#o.topics;
    const id = t.idOf(topic, 'cm');
    if (id === undefined || !this.#peers.has(id) || topic !== t.cmChallengeAnswer(id, this.#o.config.cmId)) return;
    const online = this.#liveness.answer(id, payload);
    if (online === undefined || this.#peers.update(id, online) !== 'changed') return;
    this.#peersChanged(id);
  }

  #peersChanged(peer?: string): void {
    const { book, config, responder, table } = this.#o;
    const peers = this.#peers;
    const before = book.offline.size;
    book.setOffline(peers.offline);
    this.#o.observe?.offline(peers.offline);
    // A peer came back. With rebalancing on, lists change lazily (ListBook.lazyRestore): hand
    // the restored list to the phones that arrived from failed peers, a few at a time, so they
    // return to their primary at the rebalance rate instead of all at once.
    if (config.rebalance.enabled && peers.offline.size < before) {
      const here = new Set([...table.homedPhones(this.#o.clock.elapsed())].map((p) => p.phone));
      const owed = new Set([...responder.takeDemoted(), ...book.overridden()]);
      this.rebalancer.restore([...owed].filter((p) => here.has(p)).map((phone) => ({ phone, to: book.forPhone(phone).list[0]?.id ?? config.cmId })));
      this.#drain();
    }
    this.#log.info({ peer, offline: [...peers.offline], version: book.version }, 'peer state changed');
  }
}
