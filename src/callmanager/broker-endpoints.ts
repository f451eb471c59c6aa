/**
 * Which of a group's brokers are one broker, decided by where they lead and
 * not by how they are written: `mqtts://localhost:8883` and
 * `mqtts://127.0.0.1:8883` are one mosquitto. A call manager that took them
 * for two would open a peer link to its own broker with its own certificate;
 * under `use_username_as_clientid` (the shipped broker config) the CN is the
 * client id, so the link and its own session take each other over and the
 * broker fires the genuine will — the call manager is announced dead while it
 * lives, and its phones leave it.
 *
 * Two broker URLs are one broker when their {@link brokerKey}s are equal, or
 * when their ports are equal and their hosts share an address once resolved
 * (`dns.lookup`, every address, at start): one address and port is one
 * listener, so one broker whatever the scheme or path says. Brokers that
 * cannot be told apart yet (a name that does not resolve) are not linked: a
 * peer link is never opened where it might be a second session to the own
 * broker. What this cannot see: two listeners (two ports) of one mosquitto,
 * and a name pointed elsewhere after start (docs/configuration.md).
 */
import { lookup as dnsLookupAll } from 'node:dns/promises';
import { isIP } from 'node:net';
import { errorMessage } from '../lib/errors.js';
import { brokerKey, canonicalHost } from '../protocol/pointers.js';

/** Every address a host name resolves to (as dns.lookup with `all`). Rejects when it resolves to none. */
export type HostLookup = (host: string) => Promise<string[]>;

/** The system resolver (getaddrinfo: /etc/hosts, then DNS), every address. */
export const systemLookup: HostLookup = async (host) => (await dnsLookupAll(host, { all: true, verbatim: true })).map((a) => a.address);

/** Where a broker URL leads: its key, port and the addresses of its host. */
export interface BrokerEndpoint {
  url: string;
  key: string;
  port: string;
  /** Canonical addresses ({@link canonicalHost}); the IP itself for an IP host. */
  addresses: string[];
}

/** Resolve one broker URL. Rejects when its host resolves to nothing. */
export async function brokerEndpoint(url: string, lookup: HostLookup): Promise<BrokerEndpoint> {
  const key = brokerKey(url);
  const k = new URL(key);
  const bare = k.hostname.replace(/^\[(.*)\]$/, '$1');
  const found = isIP(bare) !== 0 ? [bare] : await lookup(bare);
  if (found.length === 0) throw new Error(`${bare} resolves to no address`);
  const addresses = found.map((a) => canonicalHost(isIP(a) === 6 ? `[${a}]` : a));
  return { url, key, port: k.port, addresses };
}

/** True when both lead to one listener: the same key, or the same port and an address in common. */
export function sameBroker(a: BrokerEndpoint, b: BrokerEndpoint): boolean {
  return a.key === b.key || (a.port === b.port && a.addresses.some((x) => b.addresses.includes(x)));
}

/** A peer of the group: its id and broker URL as the group config writes it. */
export interface PeerBroker {
  id: string;
  broker: string;
}

/** What a call manager links to, decided by {@link planLinks}. */
export interface LinkPlan {
  /** Peers on this call manager's own broker: no link, their topics come over its own session. */
  own: string[];
  /** One link per other broker: the URL to connect to (the first spelling) and the peers on it. */
  links: Array<{ url: string; ids: string[] }>;
  /** Peers whose broker cannot be told apart from the own broker yet (a name did not resolve): not linked. */
  undecided: Array<{ ids: string[]; broker: string; err: string }>;
  /** Pairs of peers whose brokers are one broker written two ways (phones open one session per spelling). */
  aliases: Array<[PeerBroker, PeerBroker]>;
}

/**
 * Resolve the own broker and every peer's, and group the peers: on the own
 * broker, one link per other broker (spellings of one broker merged), or
 * undecided. Never rejects.
 */
export async function planLinks(ownBroker: string, peers: readonly PeerBroker[], lookup: HostLookup): Promise<LinkPlan> {
  const resolve = (url: string): Promise<BrokerEndpoint | string> => brokerEndpoint(url, lookup).catch((err: unknown) => errorMessage(err));
  const ownKey = brokerKey(ownBroker);
  const byKey = new Map<string, { url: string; peers: PeerBroker[] }>();
  for (const p of peers) {
    const key = brokerKey(p.broker);
    const entry = byKey.get(key) ?? { url: p.broker, peers: [] };
    entry.peers.push(p);
    byKey.set(key, entry);
  }
  const keys = [...byKey.keys()].filter((k) => k !== ownKey);
  const [own, ...resolved] = await Promise.all([resolve(ownBroker), ...keys.map((k) => resolve(byKey.get(k)!.url))]);
  const plan: LinkPlan = { own: byKey.get(ownKey)?.peers.map((p) => p.id) ?? [], links: [], undecided: [], aliases: [] };
  /** The first peer of each spelling found on the own broker. */
  const ownSpellings: PeerBroker[] = byKey.has(ownKey) ? [byKey.get(ownKey)!.peers[0]!] : [];
  /** Decided other brokers, each with every spelling's peers. */
  const others: Array<{ ep: BrokerEndpoint; peers: PeerBroker[] }> = [];
  keys.forEach((key, i) => {
    const ep = resolved[i]!;
    const { peers: on } = byKey.get(key)!;
    if (typeof ep === 'string' || typeof own === 'string') {
      plan.undecided.push({ ids: on.map((p) => p.id), broker: byKey.get(key)!.url, err: typeof ep === 'string' ? ep : `own broker: ${own as string}` });
      return;
    }
    if (sameBroker(ep, own)) {
      plan.own.push(...on.map((p) => p.id));
      if (ownSpellings.length > 0) plan.aliases.push([ownSpellings[0]!, on[0]!]);
      ownSpellings.push(on[0]!);
      return;
    }
    const same = others.find((o) => sameBroker(o.ep, ep));
    if (same === undefined) others.push({ ep, peers: [...on] });
    else {
      plan.aliases.push([same.peers[0]!, on[0]!]);
      same.peers.push(...on);
    }
  });
  plan.links = others.map((o) => ({ url: o.ep.url, ids: o.peers.map((p) => p.id) }));
  return plan;
}
