import test from 'ava';
import { brokerEndpoint, planLinks, sameBroker, type HostLookup } from '../../../src/callmanager/broker-endpoints.js';

/** A resolver over a fixed table (as /etc/hosts); an unknown name rejects as getaddrinfo's ENOTFOUND. */
function hosts(table: Record<string, string[]>): HostLookup & { asked: string[] } {
  const asked: string[] = [];
  const lookup = async (host: string): Promise<string[]> => {
    asked.push(host);
    const found = table[host];
    if (found === undefined) throw new Error(`getaddrinfo ENOTFOUND ${host}`);
    return found;
  };
  return Object.assign(lookup, { asked });
}

const HOSTS = hosts({
  localhost: ['::1', '127.0.0.1'],
  'broker-a.example': ['10.0.0.5'],
  'broker-a-alias.example': ['10.0.0.9', '10.0.0.5'],
  'broker-b.example': ['10.0.0.6'],
  'v6.example': ['::ffff:10.0.0.5'],
});

// [rule, a, b, one broker?]
const SAME: Array<[string, string, string, boolean]> = [
  ['a name and an address it resolves to', 'mqtts://localhost:8883', 'mqtts://127.0.0.1:8883', true],
  ['a name and its IPv6 loopback', 'mqtts://localhost:8883', 'mqtts://[::1]:8883', true],
  ['two names sharing one address', 'mqtt://broker-a.example', 'mqtt://broker-a-alias.example', true],
  ['the default port written and omitted', 'mqtts://broker-a.example', 'mqtts://10.0.0.5:8883', true],
  ['an IPv4-mapped IPv6 address and its IPv4', 'mqtt://v6.example', 'mqtt://10.0.0.5', true],
  ['one address and port, another scheme: one listener', 'mqtt://localhost:9001', 'ws://127.0.0.1:9001/mqtt', true],
  ['one address, another port: another broker', 'mqtt://localhost:1883', 'mqtt://127.0.0.1:1884', false],
  ['another address: another broker', 'mqtt://broker-a.example', 'mqtt://broker-b.example', false],
];

for (const [rule, a, b, want] of SAME) {
  test(`sameBroker: ${rule}: ${a} and ${b} → ${want ? 'one broker' : 'two'}`, async (t) => {
    t.is(sameBroker(await brokerEndpoint(a, HOSTS), await brokerEndpoint(b, HOSTS)), want);
  });
}

test('an IP host is not looked up; a name is, once per spelling', async (t) => {
  const lookup = hosts({ localhost: ['127.0.0.1'] });
  await brokerEndpoint('mqtts://127.0.0.1:8883', lookup);
  await brokerEndpoint('mqtts://[::1]:8883', lookup);
  t.deepEqual(lookup.asked, []);
  t.deepEqual((await brokerEndpoint('mqtts://LOCALHOST.:8883', lookup)).addresses, ['127.0.0.1']);
  t.deepEqual(lookup.asked, ['localhost']);
});

test('planLinks: a peer on the own broker under another spelling gets no link (no second session with our certificate)', async (t) => {
  const plan = await planLinks('mqtts://localhost:8883', [{ id: 'cm-b', broker: 'mqtts://127.0.0.1:8883' }], HOSTS);
  t.deepEqual(plan, { own: ['cm-b'], links: [], undecided: [], aliases: [] });
});

test('planLinks: peers on one other broker written two ways share one link, and the two spellings are reported', async (t) => {
  const peers = [
    { id: 'cm-b', broker: 'mqtt://broker-a.example:1883' },
    { id: 'cm-c', broker: 'mqtt://10.0.0.5' },
    { id: 'cm-d', broker: 'mqtt://broker-b.example' },
  ];
  const plan = await planLinks('mqtt://localhost', peers, HOSTS);
  t.deepEqual(plan.own, []);
  t.deepEqual(plan.links, [
    { url: 'mqtt://broker-a.example:1883', ids: ['cm-b', 'cm-c'] },
    { url: 'mqtt://broker-b.example', ids: ['cm-d'] },
  ]);
  t.deepEqual(plan.aliases, [[peers[0], peers[1]]]);
});

test('planLinks: two spellings of the own broker among the peers are reported too', async (t) => {
  const peers = [
    { id: 'cm-b', broker: 'mqtts://localhost:8883' },
    { id: 'cm-c', broker: 'mqtts://127.0.0.1:8883' },
  ];
  const plan = await planLinks('mqtts://localhost:8883', peers, HOSTS);
  t.deepEqual(plan.own, ['cm-b', 'cm-c']);
  t.deepEqual(plan.links, []);
  t.deepEqual(plan.aliases, [[peers[0], peers[1]]]);
});

test('planLinks: a broker that cannot be told apart from the own one (a name that does not resolve) is not linked', async (t) => {
  const peerUnknown = await planLinks('mqtts://localhost:8883', [{ id: 'cm-b', broker: 'mqtts://nowhere.example:8883' }], HOSTS);
  t.deepEqual(peerUnknown.links, []);
  t.deepEqual(peerUnknown.undecided.map((u) => [u.ids, u.broker]), [[['cm-b'], 'mqtts://nowhere.example:8883']]);
  t.regex(peerUnknown.undecided[0]!.err, /ENOTFOUND nowhere\.example/);
  // The own broker's name does not resolve: even a peer given by address may be it.
  const ownUnknown = await planLinks('mqtts://own.example:8883', [{ id: 'cm-b', broker: 'mqtts://127.0.0.1:8883' }], HOSTS);
  t.deepEqual(ownUnknown.links, []);
  t.regex(ownUnknown.undecided[0]!.err, /own broker: .*ENOTFOUND own\.example/);
});

test('planLinks: the same spelling as the own broker needs no lookup to be recognised', async (t) => {
  const lookup = hosts({});
  const plan = await planLinks('MQTT://Broker.Example.', [{ id: 'cm-b', broker: 'mqtt://broker.example:1883/' }], lookup);
  t.deepEqual(plan, { own: ['cm-b'], links: [], undecided: [], aliases: [] });
});
