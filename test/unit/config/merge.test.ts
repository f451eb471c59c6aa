import test from 'ava';
import { mergeConfig } from '../../../src/config/merge.js';
import { isIpphoneError } from '../../../src/lib/errors.js';

function deepFreeze<T>(v: T): T {
  if (typeof v === 'object' && v !== null) {
    for (const x of Object.values(v)) deepFreeze(x);
    Object.freeze(v);
  }
  return v;
}

type Json = any; // results are untyped on purpose; the tests read into them

const base: Json = deepFreeze({
  phoneId: 'p-1',
  pointers: [{ id: 'cm-a' }, { id: 'cm-b' }],
  keepalive: { intervalMs: 5000, missLimit: 3 },
  mqtt: { username: 'u', backoff: { baseMs: 1000, maxMs: 60000 } },
  board: 'hw/boards/sim.json',
});

test('plain objects merge deeply; scalars replace; absent keys keep', (t) => {
  const out: Json = mergeConfig(base, { keepalive: { intervalMs: 1000 }, mqtt: { backoff: { maxMs: 5000 } }, log: { level: 'debug' } });
  t.deepEqual(out, {
    ...base,
    keepalive: { intervalMs: 1000, missLimit: 3 },
    mqtt: { username: 'u', backoff: { baseMs: 1000, maxMs: 5000 } },
    log: { level: 'debug' },
  });
});

test('arrays replace whole', (t) => {
  t.deepEqual(mergeConfig(base, { pointers: [{ id: 'cm-c' }] }).pointers, [{ id: 'cm-c' }]);
});

test('null sets null; undefined keeps; an object replaces a scalar and vice versa', (t) => {
  const out: Json = mergeConfig(base, { board: null, mqtt: { username: null }, phoneId: undefined });
  t.is(out.board, null);
  t.is(out.mqtt.username, null);
  t.is(out.phoneId, 'p-1');
  t.is(mergeConfig(base, { keepalive: 5 }).keepalive, 5);
  t.deepEqual(mergeConfig({ a: 1 }, { a: { b: 2 } }), { a: { b: 2 } });
});

test('inputs are never changed and the result shares nothing with them', (t) => {
  const patch = deepFreeze({ keepalive: { missLimit: 9 }, pointers: [{ id: 'x', extra: { y: 1 } }] });
  const out: Json = mergeConfig(base, patch); // frozen inputs: any write would throw in strict mode
  t.not(out, base);
  t.not(out.mqtt, base.mqtt);
  t.not(out.mqtt.backoff, base.mqtt.backoff);
  t.not(out.pointers, patch.pointers);
  t.not(out.pointers[0].extra, patch.pointers[0]!.extra);
  t.false(Object.isFrozen(out.mqtt));
});

test('__proto__, constructor and prototype keys are refused at any depth', (t) => {
  for (const text of [
    '{"__proto__": {"polluted": true}}',
    '{"keepalive": {"__proto__": {"polluted": true}}}',
    '{"mqtt": {"backoff": {"constructor": {"prototype": {"polluted": true}}}}}',
    '{"pointers": [{"prototype": 1}]}',
    '{"fresh": {"__proto__": {"polluted": true}}}',
  ]) {
    const patch = JSON.parse(text) as Record<string, unknown>;
    const err = t.throws(() => mergeConfig(base, patch));
    t.true(isIpphoneError(err, 'CONFIG_INVALID'), text);
    t.regex(err!.message, /(__proto__|constructor|prototype)" is not allowed/);
  }
  t.is(({} as Record<string, unknown>).polluted, undefined);
});

test('a non-object patch is refused', (t) => {
  t.true(isIpphoneError(t.throws(() => mergeConfig(base, [] as unknown as Record<string, unknown>)), 'CONFIG_INVALID'));
});
