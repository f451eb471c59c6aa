/**
 * Every inbound decoder against hostile bytes: it returns a value that keeps
 * its type contract, or throws an IpphoneError with an expected code and a
 * non-empty message naming the problem — never another exception type, never
 * a stack overflow, whatever the input (arbitrary bytes, arbitrary JSON,
 * mutated valid payloads, 100,000-deep JSON, > 64 KiB).
 */
import test from 'ava';
import fc from 'fast-check';
import { IpphoneError, type ErrorCode } from '../../../src/lib/errors.js';
import {
  decodeAck,
  decodeCmState,
  decodeConfigResult,
  decodeEnvelope,
  decodeKeepalive,
  decodeLoad,
  decodeStatus,
  encode,
  parseConfigBody,
  parseJsonPayload,
  parsePointersBody,
  type OpenContext,
} from '../../../src/protocol/codec.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { validatePointerList } from '../../../src/protocol/pointers.js';
import { isValidId } from '../../../src/protocol/topics.js';
import { POINTER_REASONS } from '../../../src/protocol/types.js';
import { anyBytes, anyJsonBytes, deepJsonBytes, deepJsonText, hugeBytes, isPlainObject, mutatedBytes, pointer } from '../../helpers/arbitraries.js';

const RUNS = 10_000;
const key = parsePrivateKey(generateKeyPair().privatePem);
const list = [pointer('cm-a'), pointer('cm-b', 1884)];
const env = signEnvelope({ version: 5, reason: 'failover', list }, key, 'ops-1');
const ctx: OpenContext = { phoneId: 'p1', heldVersion: 3, now: 1_700_000_000_000 };

/** One valid payload of every inbound kind (the seeds of mutations). */
const VALID: Record<string, unknown>[] = [
  { phone: 'p1', seq: 7, pointersVersion: 3, busy: false, probe: true, prev: 'cm-a', intervalMs: 1000 },
  { cm: 'cm-a', seq: 7, pointers: env, pointersVersion: 5 },
  { cm: 'cm-a', seq: 7, pointersVersion: 5 },
  { ...env },
  { online: true },
  { phones: 10, capacity: 100, servicesRps: 1.5 },
  { online: true, home: 'cm-a', services: 'cm-b', state: 'homed', pointersVersion: 5, configVersion: 2, rehomes: 1 },
  { version: 4, ok: false, error: 'bad' },
  { version: 9, reason: 'admin', list, expires: ctx.now + 60_000, phone: 'p1' },
  { version: 9, config: { keepalive: { intervalMs: 2000 } }, phone: 'p1' },
];

const isCount = (v: unknown): boolean => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;
const isEnvelope = (v: unknown): boolean =>
  isPlainObject(v) && Object.keys(v).sort().join() === 'body,kid,sig' && ['kid', 'body', 'sig'].every((f) => typeof v[f] === 'string' && v[f] !== '');
const onlyKeys = (o: Record<string, unknown>, allowed: string[]): boolean => Object.keys(o).every((k) => allowed.includes(k));

const PLAIN: ErrorCode[] = ['PAYLOAD_TOO_LARGE', 'PAYLOAD_INVALID'];
const BODY: ErrorCode[] = [...PLAIN, 'WRONG_PHONE', 'EXPIRED', 'VERSION_REPLAYED'];

interface Decoder {
  name: string;
  decode: (b: Buffer) => unknown;
  /** True when a returned value keeps the decoder's type contract. */
  ok: (v: unknown) => boolean;
  codes: ErrorCode[];
}

const DECODERS: Decoder[] = [
  { name: 'parseJsonPayload', decode: (b) => parseJsonPayload(b), ok: isPlainObject, codes: PLAIN },
  {
    name: 'decodeKeepalive',
    decode: decodeKeepalive,
    codes: PLAIN,
    ok: (v) =>
      isPlainObject(v) &&
      onlyKeys(v, ['phone', 'seq', 'pointersVersion', 'busy', 'probe', 'prev', 'intervalMs']) &&
      isValidId(v.phone) &&
      isCount(v.seq) &&
      isCount(v.pointersVersion) &&
      typeof v.busy === 'boolean' &&
      (v.probe === undefined || typeof v.probe === 'boolean') &&
      (v.prev === undefined || v.prev === null || typeof v.prev === 'string') &&
      (v.intervalMs === undefined || (isCount(v.intervalMs) && (v.intervalMs as number) > 0)),
  },
  {
    name: 'decodeAck',
    decode: decodeAck,
    codes: PLAIN,
    ok: (v) =>
      isPlainObject(v) &&
      onlyKeys(v, ['cm', 'seq', 'pointers', 'pointersVersion']) &&
      isValidId(v.cm) &&
      isCount(v.seq) &&
      (v.pointers === undefined || isEnvelope(v.pointers)) &&
      (v.pointersVersion === undefined || isCount(v.pointersVersion)) &&
      (v.pointers !== undefined || v.pointersVersion !== undefined),
  },
  { name: 'decodeEnvelope', decode: decodeEnvelope, codes: PLAIN, ok: isEnvelope },
  { name: 'decodeCmState', decode: decodeCmState, codes: PLAIN, ok: (v) => isPlainObject(v) && Object.keys(v).join() === 'online' && typeof v.online === 'boolean' },
  {
    name: 'decodeLoad',
    decode: decodeLoad,
    codes: PLAIN,
    ok: (v) =>
      isPlainObject(v) &&
      Object.keys(v).sort().join() === 'capacity,phones,servicesRps' &&
      isCount(v.phones) &&
      isCount(v.capacity) &&
      typeof v.servicesRps === 'number' &&
      Number.isFinite(v.servicesRps) &&
      v.servicesRps >= 0,
  },
  {
    name: 'decodeStatus',
    decode: decodeStatus,
    codes: PLAIN,
    ok: (v) =>
      isPlainObject(v) &&
      ((v.online === false && Object.keys(v).join() === 'online') ||
        (typeof v.online === 'boolean' &&
          (v.home === null || isValidId(v.home)) &&
          (v.services === null || isValidId(v.services)) &&
          typeof v.state === 'string' &&
          isCount(v.pointersVersion) &&
          isCount(v.configVersion) &&
          isCount(v.rehomes))),
  },
  {
    name: 'decodeConfigResult',
    decode: decodeConfigResult,
    codes: PLAIN,
    ok: (v) => isPlainObject(v) && isCount(v.version) && typeof v.ok === 'boolean' && (v.error === undefined || typeof v.error === 'string'),
  },
  {
    name: 'parsePointersBody',
    decode: (b) => parsePointersBody(b, ctx),
    codes: BODY,
    ok: (v) =>
      isPlainObject(v) &&
      isCount(v.version) &&
      (v.version as number) > ctx.heldVersion &&
      (POINTER_REASONS as readonly unknown[]).includes(v.reason) &&
      validatePointerList(v.list).length === 0 &&
      (v.list as Record<string, unknown>[]).every((p) => Object.keys(p).sort().join() === 'broker,id,services') &&
      (v.expires === undefined || (typeof v.expires === 'number' && v.expires > ctx.now)) &&
      (v.phone === undefined || v.phone === ctx.phoneId),
  },
  {
    name: 'parseConfigBody',
    decode: (b) => parseConfigBody(b, ctx),
    codes: BODY,
    ok: (v) =>
      isPlainObject(v) &&
      isCount(v.version) &&
      (v.version as number) > ctx.heldVersion &&
      isPlainObject(v.config) &&
      (v.expires === undefined || (typeof v.expires === 'number' && v.expires > ctx.now)) &&
      (v.phone === undefined || v.phone === ctx.phoneId),
  },
];

/** Longest error message seen: a refusal must not echo a megabyte back into logs and events. */
const MAX_MESSAGE = 8192;

/** Run every decoder on `b`; throw (failing the property) on any contract breach. */
function checkAll(b: Buffer, decoders: Decoder[] = DECODERS): void {
  for (const d of decoders) {
    let value: unknown;
    try {
      value = d.decode(b);
    } catch (err) {
      if (!(err instanceof IpphoneError)) {
        throw new Error(`${d.name} threw ${(err as Error)?.constructor?.name ?? typeof err}: ${String((err as Error)?.message ?? err)}`);
      }
      if (!d.codes.includes(err.code)) throw new Error(`${d.name} threw code ${err.code} (expected one of ${d.codes.join(', ')}): ${err.message}`);
      if (typeof err.message !== 'string' || err.message.trim() === '') throw new Error(`${d.name} threw an empty message (${err.code})`);
      if (err.message.length > MAX_MESSAGE) throw new Error(`${d.name} message is ${err.message.length} chars`);
      const field = err.context?.field;
      if (typeof field === 'string' && !err.message.includes(field)) throw new Error(`${d.name} message does not name field ${field}: ${err.message}`);
      continue;
    }
    if (!d.ok(value)) throw new Error(`${d.name} returned a value that breaks its contract: ${JSON.stringify(value)?.slice(0, 300)}`);
  }
}

function property(t: { true: (v: boolean, m?: string) => void }, name: string, arb: fc.Arbitrary<Buffer>, numRuns = RUNS): void {
  let n = 0;
  fc.assert(
    fc.property(arb, (b) => {
      n++;
      checkAll(b);
    }),
    { numRuns, seed: 6_0001 },
  );
  t.true(n >= numRuns, `${name}: ${n} cases`);
}

test('control: every valid seed payload decodes under its own decoder', (t) => {
  const expect: [number, string][] = [
    [0, 'decodeKeepalive'],
    [1, 'decodeAck'],
    [2, 'decodeAck'],
    [3, 'decodeEnvelope'],
    [4, 'decodeCmState'],
    [5, 'decodeLoad'],
    [6, 'decodeStatus'],
    [7, 'decodeConfigResult'],
    [8, 'parsePointersBody'],
    [9, 'parseConfigBody'],
  ];
  for (const [i, name] of expect) {
    const d = DECODERS.find((x) => x.name === name)!;
    const v = d.decode(encode(VALID[i]));
    t.true(d.ok(v), `${name} on seed ${i}`);
  }
  // The checker itself catches a contract breach (so the properties below can fail).
  t.false(DECODERS.find((x) => x.name === 'decodeKeepalive')!.ok({ phone: 'p/1', seq: 1, pointersVersion: 0, busy: false }));
  // …and checkAll fails on a foreign exception type, a wrong code, or a contract-breaking value.
  const one = (decode: (b: Buffer) => unknown): Decoder[] => [{ name: 'fake', decode, ok: isPlainObject, codes: PLAIN }];
  t.throws(() => checkAll(Buffer.from('{}'), one(() => { throw new TypeError('boom'); })), { message: /fake threw TypeError/ });
  t.throws(() => checkAll(Buffer.from('{}'), one(() => { throw new IpphoneError('x', 'EXPIRED'); })), { message: /code EXPIRED/ });
  t.throws(() => checkAll(Buffer.from('{}'), one(() => [])), { message: /breaks its contract/ });
  t.notThrows(() => checkAll(Buffer.from('{}'), one(() => ({}))));
});

test(`arbitrary bytes (≤ 2 KiB) × every decoder (${RUNS} runs)`, (t) => property(t, 'bytes', anyBytes));

test(`arbitrary JSON values × every decoder (${RUNS} runs)`, (t) => property(t, 'json', anyJsonBytes));

test(`mutated valid payloads × every decoder (${RUNS} runs)`, (t) => property(t, 'mutated', mutatedBytes(VALID)));

test(`deeply nested JSON text up to 100,000 levels × every decoder (${RUNS} runs)`, (t) => property(t, 'deep', deepJsonBytes));

test(`payloads over 64 KiB × every decoder (${RUNS} runs)`, (t) => property(t, 'huge', hugeBytes));

test('the deepest and largest cases by hand: refused with a clear code, no stack overflow', (t) => {
  for (const kind of ['array', 'object', 'mixed'] as const) {
    for (const depth of [17, 1000, 30_000, 100_000]) {
      const b = Buffer.from(deepJsonText(depth, kind));
      for (const d of DECODERS) {
        const err = t.throws(() => d.decode(b), { instanceOf: IpphoneError }, `${d.name} ${kind} ${depth}`);
        t.true(['PAYLOAD_INVALID', 'PAYLOAD_TOO_LARGE'].includes((err as IpphoneError).code));
        t.regex(err!.message, b.length > 65536 ? /more than 65536/ : /deeper than 16/);
      }
    }
  }
  const mib = Buffer.alloc(1 << 20, 0x20);
  for (const d of DECODERS) t.throws(() => d.decode(mib), { instanceOf: IpphoneError, message: /1048576 bytes, more than 65536/ });
});

const STRING_FIELDS = ['phone', 'cm', 'state', 'reason'];

test('a required field of the wrong type is refused with PAYLOAD_INVALID naming that field', (t) => {
  const cases: [string, Record<string, unknown>, string[]][] = [
    ['decodeKeepalive', VALID[0]!, ['phone', 'seq', 'pointersVersion', 'busy']],
    ['decodeAck', VALID[1]!, ['cm', 'seq']],
    ['decodeCmState', VALID[4]!, ['online']],
    ['decodeLoad', VALID[5]!, ['phones', 'capacity', 'servicesRps']],
    ['decodeStatus', VALID[6]!, ['state', 'pointersVersion', 'configVersion', 'rehomes']],
    ['decodeConfigResult', VALID[7]!, ['version', 'ok']],
    ['parsePointersBody', VALID[8]!, ['version', 'reason', 'list']],
    ['parseConfigBody', VALID[9]!, ['version', 'config']],
  ];
  let n = 0;
  fc.assert(
    fc.property(fc.constantFrom(...cases), fc.nat(), fc.oneof(fc.string({ maxLength: 5 }), fc.constant(null), fc.constant([[1]]), fc.double({ min: -1e6, max: -1e-9 })), ([name, seed, fields], i, v) => {
      const field = fields[i % fields.length]!;
      // A string is the right type for string fields: put it in an array there.
      const value = typeof v === 'string' && STRING_FIELDS.includes(field) ? [v] : v;
      const d = DECODERS.find((x) => x.name === name)!;
      const bytes = encode({ ...seed, [field]: value });
      try {
        d.decode(bytes);
      } catch (err) {
        n++;
        return err instanceof IpphoneError && err.code === 'PAYLOAD_INVALID' && err.message.includes(field);
      }
      return false;
    }),
    { numRuns: 2000, seed: 6_0002 },
  );
  t.is(n, 2000);
});
