import test, { type ExecutionContext } from 'ava';
import { isIpphoneError, type ErrorCode } from '../../../src/lib/errors.js';
import {
  decodeAck,
  decodeCmState,
  decodeConfigResult,
  decodeEnvelope,
  decodeKeepalive,
  decodeLoad,
  decodeStatus,
  encode,
  parseJsonPayload,
} from '../../../src/protocol/codec.js';

const buf = (v: unknown): Buffer => (typeof v === 'string' ? Buffer.from(v) : encode(v));

function refused(t: ExecutionContext, fn: () => unknown, code: ErrorCode, words?: RegExp): void {
  const err = t.throws(fn);
  t.true(isIpphoneError(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${err?.message}`);
  if (words) t.regex(err!.message, words);
}

test('encode is UTF-8 JSON', (t) => {
  t.deepEqual(encode({ a: 'ä' }), Buffer.from('{"a":"ä"}', 'utf8'));
});

test('parseJsonPayload: objects pass, unknown fields kept for the caller to ignore', (t) => {
  t.deepEqual(parseJsonPayload(buf('{"a":[1,{"b":null}],"c":"x"}')), { a: [1, { b: null }], c: 'x' });
});

test('parseJsonPayload: size limit', (t) => {
  const big = buf({ pad: 'x'.repeat(100) });
  t.notThrows(() => parseJsonPayload(big, big.length));
  refused(t, () => parseJsonPayload(big, big.length - 1), 'PAYLOAD_TOO_LARGE', /more than/);
  refused(t, () => parseJsonPayload(buf({ pad: 'x'.repeat(65536) })), 'PAYLOAD_TOO_LARGE');
});

test('parseJsonPayload: not UTF-8, not JSON, not an object', (t) => {
  refused(t, () => parseJsonPayload(Buffer.from([0x7b, 0xc3, 0x28, 0x7d])), 'PAYLOAD_INVALID', /UTF-8/);
  refused(t, () => parseJsonPayload(buf('')), 'PAYLOAD_INVALID', /not JSON/);
  refused(t, () => parseJsonPayload(buf('{a:1}')), 'PAYLOAD_INVALID', /not JSON/);
  for (const text of ['[]', '1', '"s"', 'null', 'true']) refused(t, () => parseJsonPayload(buf(text)), 'PAYLOAD_INVALID', /object/);
});

test('parseJsonPayload: depth is limited without recursion; brackets in strings do not count', (t) => {
  const nest = (n: number): string => '{"a":'.repeat(n - 1) + '{}' + '}'.repeat(n - 1);
  t.notThrows(() => parseJsonPayload(buf(nest(16))));
  refused(t, () => parseJsonPayload(buf(nest(17))), 'PAYLOAD_INVALID', /deeper than 16/);
  t.notThrows(() => parseJsonPayload(buf(nest(3)), 65536, 3));
  refused(t, () => parseJsonPayload(buf(nest(4)), 65536, 3), 'PAYLOAD_INVALID');
  const deep = '['.repeat(10000) + ']'.repeat(10000);
  refused(t, () => parseJsonPayload(buf(`{"x":${deep}}`)), 'PAYLOAD_INVALID', /deeper/);
  const huge = '['.repeat(1_000_000);
  refused(t, () => parseJsonPayload(buf(huge), 2_000_000), 'PAYLOAD_INVALID', /deeper/);
  // brackets and escaped quotes inside strings are text, not nesting
  t.deepEqual(parseJsonPayload(buf(JSON.stringify({ s: '[[[[{{{{'.repeat(10) + '\\"[[[' }))), { s: '[[[[{{{{'.repeat(10) + '\\"[[[' });
});

const ka = { phone: 'p-0001', seq: 7, pointersVersion: 3, busy: false };

test('decodeKeepalive: good, with optional fields, unknown fields dropped', (t) => {
  t.deepEqual(decodeKeepalive(buf({ ...ka, extra: 1 })), ka);
  t.deepEqual(decodeKeepalive(buf({ ...ka, probe: true, prev: 'cm-a', intervalMs: 1000 })), { ...ka, probe: true, prev: 'cm-a', intervalMs: 1000 });
  t.deepEqual(decodeKeepalive(buf({ ...ka, seq: 0, pointersVersion: 0, prev: null })), { ...ka, seq: 0, pointersVersion: 0, prev: null });
});

test('decodeKeepalive: each bad field is refused by name', (t) => {
  const cases: [Record<string, unknown>, RegExp][] = [
    [{ ...ka, phone: 'a/b' }, /phone/],
    [{ ...ka, phone: undefined }, /phone/],
    [{ ...ka, seq: -1 }, /seq must be a non-negative integer/],
    [{ ...ka, seq: 1.5 }, /seq/],
    [{ ...ka, seq: '1' }, /seq/],
    [{ ...ka, seq: 2 ** 53 }, /seq/],
    [{ ...ka, pointersVersion: null }, /pointersVersion/],
    [{ ...ka, busy: 'no' }, /busy must be true or false/],
    [{ ...ka, busy: undefined }, /busy/],
    [{ ...ka, probe: 1 }, /probe/],
    [{ ...ka, prev: 5 }, /prev must be a string or null/],
    [{ ...ka, intervalMs: 0 }, /intervalMs must be a positive integer/],
    [{ ...ka, intervalMs: 10.5 }, /intervalMs/],
  ];
  for (const [payload, words] of cases) refused(t, () => decodeKeepalive(buf(payload)), 'PAYLOAD_INVALID', words);
  refused(t, () => decodeKeepalive(buf('nope')), 'PAYLOAD_INVALID');
});

const env = { kid: 'ops-1', body: 'e30=', sig: 'AAAA' };

test('decodeEnvelope: shape only', (t) => {
  t.deepEqual(decodeEnvelope(buf({ ...env, x: 1 })), env);
  refused(t, () => decodeEnvelope(buf({ ...env, kid: 3 })), 'PAYLOAD_INVALID', /kid/);
  refused(t, () => decodeEnvelope(buf({ ...env, body: '' })), 'PAYLOAD_INVALID', /body/);
  refused(t, () => decodeEnvelope(buf({ kid: 'k', body: 'e30=' })), 'PAYLOAD_INVALID', /sig/);
});

test('decodeAck: with pointers, with pointersVersion alone, refusals', (t) => {
  t.deepEqual(decodeAck(buf({ cm: 'cm-a', seq: 1, pointers: env, z: 0 })), { cm: 'cm-a', seq: 1, pointers: env });
  t.deepEqual(decodeAck(buf({ cm: 'cm-a', seq: 1, pointersVersion: 4 })), { cm: 'cm-a', seq: 1, pointersVersion: 4 });
  refused(t, () => decodeAck(buf({ cm: 'cm-a', seq: 1 })), 'PAYLOAD_INVALID', /pointers or pointersVersion/);
  refused(t, () => decodeAck(buf({ cm: '', seq: 1, pointersVersion: 4 })), 'PAYLOAD_INVALID', /cm/);
  refused(t, () => decodeAck(buf({ cm: 'cm-a', seq: -2, pointersVersion: 4 })), 'PAYLOAD_INVALID', /seq/);
  refused(t, () => decodeAck(buf({ cm: 'cm-a', seq: 1, pointers: 'signed' })), 'PAYLOAD_INVALID', /envelope/);
  refused(t, () => decodeAck(buf({ cm: 'cm-a', seq: 1, pointers: { kid: 'k' } })), 'PAYLOAD_INVALID', /body/);
  refused(t, () => decodeAck(buf({ cm: 'cm-a', seq: 1, pointersVersion: -1 })), 'PAYLOAD_INVALID', /pointersVersion/);
});

test('decodeCmState', (t) => {
  t.deepEqual(decodeCmState(buf({ online: false })), { online: false });
  t.deepEqual(decodeCmState(buf({ online: true, since: 5 })), { online: true });
  refused(t, () => decodeCmState(buf({ online: 'yes' })), 'PAYLOAD_INVALID', /online/);
  refused(t, () => decodeCmState(buf({})), 'PAYLOAD_INVALID', /online/);
});

test('decodeLoad', (t) => {
  const load = { phones: 10, capacity: 1000, servicesRps: 2.5 };
  t.deepEqual(decodeLoad(buf({ ...load, x: 1 })), load);
  refused(t, () => decodeLoad(buf({ ...load, phones: -1 })), 'PAYLOAD_INVALID', /phones/);
  refused(t, () => decodeLoad(buf({ ...load, capacity: 'many' })), 'PAYLOAD_INVALID', /capacity/);
  refused(t, () => decodeLoad(buf({ ...load, servicesRps: -0.5 })), 'PAYLOAD_INVALID', /servicesRps/);
  refused(t, () => decodeLoad(buf({ phones: 1, capacity: 1 })), 'PAYLOAD_INVALID', /servicesRps/);
});

const status = { online: true, home: 'cm-a', services: 'cm-a', state: 'homed', pointersVersion: 3, configVersion: 0, rehomes: 1 };

test('decodeStatus: full status, the will, and refusals', (t) => {
  t.deepEqual(decodeStatus(buf({ ...status, uptimeMs: 5 })), { ...status, uptimeMs: 5 });
  t.deepEqual(decodeStatus(buf({ ...status, home: null, services: null, online: false })), { ...status, home: null, services: null, online: false });
  t.deepEqual(decodeStatus(buf({ online: false })), { online: false });
  refused(t, () => decodeStatus(buf({ online: true })), 'PAYLOAD_INVALID', /state/);
  refused(t, () => decodeStatus(buf({ ...status, home: 5 })), 'PAYLOAD_INVALID', /home/);
  refused(t, () => decodeStatus(buf({ ...status, services: 'a b' })), 'PAYLOAD_INVALID', /services/);
  refused(t, () => decodeStatus(buf({ ...status, rehomes: -1 })), 'PAYLOAD_INVALID', /rehomes/);
  refused(t, () => decodeStatus(buf({ ...status, configVersion: undefined })), 'PAYLOAD_INVALID', /configVersion/);
  refused(t, () => decodeStatus(buf({ ...status, online: 1 })), 'PAYLOAD_INVALID', /online/);
});

test('decodeConfigResult', (t) => {
  t.deepEqual(decodeConfigResult(buf({ version: 3, ok: true })), { version: 3, ok: true });
  t.deepEqual(decodeConfigResult(buf({ version: 3, ok: false, error: 'keepalive/intervalMs: …' })), { version: 3, ok: false, error: 'keepalive/intervalMs: …' });
  refused(t, () => decodeConfigResult(buf({ version: 3, ok: false, error: 7 })), 'PAYLOAD_INVALID', /error/);
  refused(t, () => decodeConfigResult(buf({ version: -3, ok: true })), 'PAYLOAD_INVALID', /version/);
  refused(t, () => decodeConfigResult(buf({ version: 3 })), 'PAYLOAD_INVALID', /ok/);
});
