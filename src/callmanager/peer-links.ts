/**
 * Links to the brokers of group members that are not on this call manager's
 * own broker. A group may span brokers (one per site, say); each call manager
 * still needs every peer's retained `state` and `load` to fail phones over and
 * to rebalance, so it opens one read-only connection per other broker and
 * subscribes to those peers' topics there. A broker it cannot reach makes its
 * peers count as offline — the phones could not reach them either.
 */
import type { IClientOptions, MqttClient } from 'mqtt';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { brokerKey } from '../protocol/pointers.js';
import type { Topics } from '../protocol/topics.js';

export interface PeerLinksOptions {
  ownBroker: string;
  peers: readonly { id: string; broker: string }[];
  topics: Topics;
  clientId: string;
  base: IClientOptions;
  /** The call manager's connect, which sets TCP_NODELAY on every link (lib/mqtt-nodelay.ts). */
  connect: (url: string, opts: IClientOptions) => MqttClient;
  log: Logger;
  onMessage(topic: string, payload: Buffer): void;
  onReachable(ids: string[], reachable: boolean): void;
}

export class PeerLinks {
  readonly #o: PeerLinksOptions;
  readonly #clients: MqttClient[] = [];

  constructor(opts: PeerLinksOptions) {
    this.#o = opts;
  }

  /** Brokers linked (for tests and logs). */
  get count(): number {
    return this.#clients.length;
  }

  start(): void {
    const o = this.#o;
    const own = brokerKey(o.ownBroker);
    const byBroker = new Map<string, { url: string; ids: string[] }>();
    for (const p of o.peers) {
      const key = brokerKey(p.broker);
      if (key === own) continue;
      const entry = byBroker.get(key) ?? { url: p.broker, ids: [] };
      entry.ids.push(p.id);
      byBroker.set(key, entry);
    }
    let n = 0;
    for (const { url, ids } of byBroker.values()) {
      const client = o.connect(url, { ...o.base, clientId: `${o.clientId}-link${++n}`, reconnectPeriod: 1000, clean: true, resubscribe: false });
      const subs = ids.flatMap((id) => [o.topics.cmState(id), o.topics.cmLoad(id)]);
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
    }
  }

  async stop(): Promise<void> {
    await Promise.all(this.#clients.map((c) => new Promise<void>((done) => c.end(true, {}, () => done()))));
    this.#clients.length = 0;
  }
}
