/**
 * Links to the brokers of group members that are not on this call manager's
 * own broker. A group may span brokers (one per site, say); each call manager
 * still needs every peer's retained `state` and `load` to fail phones over and
 * to rebalance, so it opens one read-only connection per other broker and
 * subscribes to those peers' topics there (and to their answers to its
 * liveness challenges, which it publishes there: protocol/cm-liveness.ts). A
 * broker it cannot reach makes its peers count as offline — the phones could
 * not reach them either.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { brokerKey } from '../protocol/pointers.js';
import type { Topics } from '../protocol/topics.js';
import { planLinks, systemLookup, type HostLookup, type PeerBroker } from './broker-endpoints.js';

/** Ms between attempts to resolve brokers that could not be told apart from the own broker. */
export const RESOLVE_RETRY_MS = 5000;

export interface PeerLinksOptions {
  ownBroker: string;
  peers: readonly { id: string; broker: string }[];
  topics: Topics;
  clientId: string;
  /** This call manager's id: the challenger in `P/cm/{peer}/challenge/{selfId}`. */
  selfId: string;
  base: IClientOptions;
  /** The call manager's connect, which sets TCP_NODELAY on every link (lib/mqtt-nodelay.ts). */
  connect: (url: string, opts: IClientOptions) => MqttClient;
  log: Logger;
  onMessage(topic: string, payload: Buffer): void;
  onReachable(ids: string[], reachable: boolean): void;
  /** Resolves broker host names (default the system resolver, every address). */
  lookup?: HostLookup;
  clock?: Clock;
}

export class PeerLinks {
  readonly #o: PeerLinksOptions;
  readonly #clients: MqttClient[] = [];
  /** The link of each peer on another broker. */
  readonly #byPeer = new Map<string, MqttClient>();

  /** Peers on this call manager's own broker (by spelling now, by address once resolved). */
  readonly #onOwn = new Set<string>();
  #n = 0;
  #retry: TimerHandle | undefined;
  #stopped = false;

  constructor(opts: PeerLinksOptions) {
    this.#o = opts;
    const own = brokerKey(opts.ownBroker);
    for (const p of opts.peers) if (brokerKey(p.broker) === own) this.#onOwn.add(p.id);
  }

  /** Brokers linked (for tests and logs). */
  get count(): number {
    return this.#clients.length;
  }

  /**
   * Resolve the brokers' names (broker-endpoints.ts), then link each other
   * broker once. A peer whose broker cannot be told apart from the own broker
   * yet counts as unreachable and is tried again every {@link RESOLVE_RETRY_MS}.
   */
  start(): void {
    this.#stopped = false;
    void this.#plan(this.#o.peers);
  }

  async #plan(peers: readonly PeerBroker[]): Promise<void> {
    const o = this.#o;
    const plan = await planLinks(o.ownBroker, peers, o.lookup ?? systemLookup);
    if (this.#stopped) return;
    for (const id of plan.own) this.#onOwn.add(id);
    if (plan.own.length > 0) o.log.info({ broker: o.ownBroker, peers: plan.own }, 'peers on this call manager\'s own broker: no link to it');
    for (const [a, b] of plan.aliases) {
      o.log.error(
        { peers: [a.id, b.id], brokers: [a.broker, b.broker] },
        'group: one broker written two ways; phones open one session per spelling, and with one certificate they take each other over: write it one way',
      );
    }
    for (const u of plan.undecided) {
      o.log.warn({ broker: u.broker, peers: u.ids, err: u.err, retryMs: RESOLVE_RETRY_MS }, 'peer broker not linked: it cannot be told apart from our own yet');
      o.onReachable(u.ids, false);
    }
    const waiting = new Set(plan.undecided.flatMap((u) => u.ids));
    if (waiting.size > 0) {
      const clock = o.clock ?? systemClock;
      this.#retry = clock.setTimeout(() => {
        this.#retry = undefined;
        void this.#plan(peers.filter((p) => waiting.has(p.id)));
      }, RESOLVE_RETRY_MS);
    }
    this.#link(plan.links);
  }

  #link(links: ReadonlyArray<{ url: string; ids: string[] }>): void {
    const o = this.#o;
    for (const { url, ids } of links) {
      const client = o.connect(url, { ...o.base, clientId: `${o.clientId}-link${++this.#n}`, reconnectPeriod: 1000, clean: true, resubscribe: false });
      const subs = ids.flatMap((id) => [o.topics.cmState(id), o.topics.cmLoad(id), o.topics.cmChallengeAnswer(id, o.selfId)]);
      let up = false;
      client.on('connect', () => {
        up = true;
        o.log.info({ broker: url, peers: ids }, 'peer broker linked');
        client.subscribe(subs, { qos: 1 });
        o.onReachable(ids, true);
      });
      client.on('close', () => {
        if (up) o.log.warn({ broker: url, peers: ids }, 'peer broker unreachable');
        up = false;
        o.onReachable(ids, false);
      });
      client.on('error', (err) => o.log.debug({ broker: url, err: errorMessage(err) }, 'peer broker error'));
      client.on('message', (topic, payload) => o.onMessage(topic, payload));
      this.#clients.push(client);
      for (const id of ids) this.#byPeer.set(id, client);
    }
  }

  /**
   * Publish (QoS 1) on the broker of `peer` when it is linked (a challenge of
   * it). False when the peer is on this call manager's own broker.
   */
  publish(peer: string, topic: string, payload: string): boolean {
    const client = this.#byPeer.get(peer);
    // Not linked (yet): dropped, never sent on the own broker, unless the peer is there.
    if (client === undefined) return !this.#onOwn.has(peer);
    if (client.connected) client.publish(topic, payload, { qos: 1 });
    return true;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#retry !== undefined) (this.#o.clock ?? systemClock).clearTimeout(this.#retry);
    this.#retry = undefined;
    await Promise.all(this.#clients.map((c) => new Promise<void>((done) => c.end(true, {}, () => done()))));
    this.#clients.length = 0;
    this.#byPeer.clear();
  }
}
