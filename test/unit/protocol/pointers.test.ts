import test from 'ava';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { brokerKey, cleanPointerList, samePointerList, validatePointerList } from '../../../src/protocol/pointers.js';
import type { Pointer } from '../../../src/protocol/types.js';

const a: Pointer = { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' };
const b: Pointer = { id: 'cm-b', broker: 'wss://broker.example:8443/mqtt', services: 'https://cm-b.example/services' };

test('a good list has no problems; extra fields are tolerated', (t) => {
  t.deepEqual(validatePointerList([a, b]), []);
  t.deepEqual(validatePointerList([{ ...a, weight: 3 }]), []);
  t.deepEqual(validatePointerList([{ ...a, broker: 'ws://h/mqtt' }, { ...b, id: 'x', broker: 'mqtts://h' }]), []);
});

test('16 pointers pass, 0 and 17 are refused', (t) => {
  const many = Array.from({ length: 17 }, (_, i) => ({ ...a, id: `cm-${i}` }));
  t.deepEqual(validatePointerList(many.slice(0, 16)), []);
  t.deepEqual(validatePointerList(many), ['pointers: must hold 1 to 16 pointers (got 17)']);
  t.deepEqual(validatePointerList([]), ['pointers: must hold 1 to 16 pointers (got 0)']);
  t.deepEqual(validatePointerList(many, { max: 64 }), []);
});

test('not an array, not objects', (t) => {
  t.deepEqual(validatePointerList({ id: 'cm-a' }), ['pointers: must be an array of pointers (got {"id":"cm-a"})']);
  const long = validatePointerList('x'.repeat(500));
  t.is(long.length, 1);
  t.true(long[0]!.length < 140, 'a long value is shortened in the message');
  t.deepEqual(validatePointerList(undefined, { path: 'list' }), ['list: must be an array of pointers (got undefined)']);
  t.deepEqual(validatePointerList([a, 'cm-b', null]), [
    'pointers/1: must be an object { id, broker, services } (got "cm-b")',
    'pointers/2: must be an object { id, broker, services } (got null)',
  ]);
});

test('every problem of every entry is reported, with its path', (t) => {
  const problems = validatePointerList([
    { id: 'cm/a', broker: 'http://h', services: 'ftp://h' },
    { id: 'cm-b', broker: 'not a url', services: 42 },
    { id: 'cm-b', broker: 'mqtt:nohost', services: 'http://h' },
  ]);
  t.deepEqual(problems, [
    'pointers/0/id: must be an id of 1 to 64 characters from A-Z a-z 0-9 . _ - (got "cm/a")',
    'pointers/0/broker: scheme must be mqtt:, mqtts:, ws: or wss: (got "http:")',
    'pointers/0/services: scheme must be http: or https: (got "ftp:")',
    'pointers/1/broker: is not a parseable URL (got "not a url")',
    'pointers/1/services: must be a URL string (got 42)',
    'pointers/2/id: duplicate id "cm-b" (also at pointers/1)',
    'pointers/2/broker: URL has no host (got "mqtt:nohost")',
  ]);
});

test('samePointerList compares field by field, in order', (t) => {
  t.true(samePointerList([a, b], [{ ...a }, { ...b }]));
  t.false(samePointerList([a, b], [b, a]));
  t.false(samePointerList([a, b], [a]));
  t.false(samePointerList([a], [{ ...a, services: 'http://other/' }]));
  t.false(samePointerList([a], [{ ...a, broker: 'mqtt://127.0.0.2:1883' }]));
});

test('cleanPointerList drops extra fields', (t) => {
  t.deepEqual(cleanPointerList([{ ...a, weight: 1 } as Pointer]), [a]);
});

test('brokerKey normalises scheme, host, default port and trailing slash', (t) => {
  t.is(brokerKey('MQTT://Broker.Example'), 'mqtt://broker.example:1883');
  t.is(brokerKey('mqtt://broker.example:1883/'), 'mqtt://broker.example:1883');
  t.is(brokerKey('mqtts://b'), 'mqtts://b:8883');
  t.is(brokerKey('ws://b/mqtt/'), 'ws://b:80/mqtt');
  t.is(brokerKey('wss://b:443/mqtt'), 'wss://b:443/mqtt');
  t.is(brokerKey('mqtt://user:secret@b:1884'), 'mqtt://b:1884');
  t.is(brokerKey('mqtt://[::1]'), 'mqtt://[::1]:1883');
  t.not(brokerKey('mqtt://b'), brokerKey('mqtts://b'));
  t.not(brokerKey('mqtt://b:1883'), brokerKey('mqtt://b:1884'));
});

// [rule, two spellings of one broker that must share one key]
const SAME_KEY: Array<[string, string, string]> = [
  ['host case (mqtt hosts are opaque to the URL parser)', 'mqtts://Broker.Example:8883', 'mqtts://broker.example:8883'],
  ['a trailing dot (a fully qualified name)', 'mqtts://broker.example.:8883', 'mqtts://broker.example:8883'],
  ['the default port omitted or written', 'mqtts://broker.example', 'mqtts://broker.example:8883'],
  ['the default port of ws', 'ws://b/mqtt', 'ws://b:80/mqtt'],
  ['a trailing slash', 'mqtt://b:1884/', 'mqtt://b:1884'],
  ['IPv4 in short form', 'mqtt://127.1', 'mqtt://127.0.0.1'],
  ['IPv4 in hex', 'mqtt://0x7f.0.0.1', 'mqtt://127.0.0.1'],
  ['IPv6 uncompressed', 'mqtt://[0:0:0:0:0:0:0:1]', 'mqtt://[::1]'],
  ['an IPv4-mapped IPv6 address', 'mqtt://[::ffff:127.0.0.1]', 'mqtt://127.0.0.1'],
  ['percent-escapes in the host', 'mqtt://%6c%6fcalhost', 'mqtt://localhost'],
  ['an IDN and its punycode', 'mqtt://Bücher.example', 'mqtt://xn--bcher-kva.example'],
  ['credentials', 'mqtt://u:p@b', 'mqtt://b'],
];
for (const [rule, a, b] of SAME_KEY) {
  test(`brokerKey: one key across ${rule}: ${a} = ${b}`, (t) => {
    t.is(brokerKey(a), brokerKey(b));
  });
}

// [rule, two brokers that must keep two keys]
const OTHER_KEY: Array<[string, string, string]> = [
  ['a name and an address are told apart only by resolving (callmanager/broker-endpoints.ts)', 'mqtts://localhost:8883', 'mqtts://127.0.0.1:8883'],
  ['IPv4 and IPv6 loopback', 'mqtt://127.0.0.1', 'mqtt://[::1]'],
  ['another port', 'mqtt://b:1883', 'mqtt://b:1884'],
  ['another scheme', 'mqtt://b', 'mqtts://b'],
  ['two trailing dots are not a name', 'mqtt://b..', 'mqtt://b'],
];
for (const [rule, a, b] of OTHER_KEY) {
  test(`brokerKey: two keys for ${rule}: ${a} ≠ ${b}`, (t) => {
    t.not(brokerKey(a), brokerKey(b));
  });
}

test('brokerKey refuses what is not a broker URL', (t) => {
  const err = t.throws(() => brokerKey('http://b'));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  t.throws(() => brokerKey('nope'));
});
