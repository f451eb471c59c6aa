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

test('brokerKey refuses what is not a broker URL', (t) => {
  const err = t.throws(() => brokerKey('http://b'));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  t.throws(() => brokerKey('nope'));
});
