import test from 'ava';
import { EventEmitter } from 'node:events';
import type { IClientOptions, MqttClient } from 'mqtt';
import type { HostLookup } from '../../../src/callmanager/broker-endpoints.js';
import { PeerLinks, RESOLVE_RETRY_MS } from '../../../src/callmanager/peer-links.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { topics } from '../../../src/protocol/topics.js';

/** A connect that records what it was asked for and returns an inert client. */
function recorder() {
  const connects: Array<{ url: string; clientId: string | undefined }> = [];
  const connect = (url: string, opts: IClientOptions): MqttClient => {
    connects.push({ url, clientId: opts.clientId });
    const c = new EventEmitter() as unknown as MqttClient & { connected: boolean };
    Object.assign(c, { connected: false, subscribe: () => c, publish: () => c, end: (_f: boolean, _o: object, cb: () => void) => cb() });
    return c;
  };
  return { connects, connect };
}

const flush = async (): Promise<void> => {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
};

function links(ownBroker: string, peers: Array<{ id: string; broker: string }>, lookup: HostLookup) {
  const rec = recorder();
  const clock = new FakeClock();
  const reach: Array<[string[], boolean]> = [];
  const opts = {
    ownBroker,
    peers,
    topics: topics('t'),
    clientId: 'ipphone-cm-cm-a',
    selfId: 'cm-a',
    base: {},
    connect: rec.connect,
    log: silentLogger(),
    onMessage: () => {},
    onReachable: (ids: string[], reachable: boolean) => reach.push([ids, reachable]),
    lookup,
    clock,
  };
  return { l: new PeerLinks(opts), clock, reach, connects: rec.connects };
}

const LOCAL: HostLookup = async (host) => {
  if (host === 'localhost') return ['127.0.0.1', '::1'];
  throw new Error(`getaddrinfo ENOTFOUND ${host}`);
};

test('no link to the own broker under another spelling: localhost and 127.0.0.1 are one broker', async (t) => {
  const { l, connects } = links('mqtts://localhost:8883', [{ id: 'cm-b', broker: 'mqtts://127.0.0.1:8883' }], LOCAL);
  l.start();
  await flush();
  t.deepEqual(connects, []);
  t.is(l.count, 0);
  await l.stop();
});

test('a broker that cannot be told apart from the own one is not linked until its name resolves; its peers count unreachable meanwhile', async (t) => {
  let up = false;
  const lookup: HostLookup = async (host) => {
    if (host === 'broker-b.example' && up) return ['10.0.0.6'];
    return LOCAL(host);
  };
  const { l, clock, reach, connects } = links('mqtts://localhost:8883', [{ id: 'cm-b', broker: 'mqtts://broker-b.example:8883' }], lookup);
  l.start();
  await flush();
  t.deepEqual(connects, []);
  t.deepEqual(reach, [[['cm-b'], false]]);
  clock.advance(RESOLVE_RETRY_MS);
  await flush();
  t.deepEqual(connects, [], 'still unresolved');
  up = true;
  clock.advance(RESOLVE_RETRY_MS);
  await flush();
  t.deepEqual(connects, [{ url: 'mqtts://broker-b.example:8883', clientId: 'ipphone-cm-cm-a-link1' }]);
  await l.stop();
  t.is(clock.pending, 0);
});

test('stopped before the names resolve: nothing is linked afterwards', async (t) => {
  const { l, clock, connects } = links('mqtts://localhost:8883', [{ id: 'cm-b', broker: 'mqtts://10.0.0.6:8883' }], LOCAL);
  l.start();
  await l.stop();
  await flush();
  clock.advance(RESOLVE_RETRY_MS);
  t.deepEqual(connects, []);
});
