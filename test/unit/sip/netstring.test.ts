import test from 'ava';
import fc from 'fast-check';
import { seededRandom } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { NetstringDecoder, encodeNetstring } from '../../../src/sip/netstring.js';

/** Feed `chunks` and collect payloads as strings; the error (if any) is returned, not thrown. */
function decodeAll(chunks: readonly (string | Buffer)[], maxBytes?: number): { frames: string[]; error: unknown } {
  const d = new NetstringDecoder(maxBytes);
  const frames: string[] = [];
  try {
    for (const c of chunks) d.push(typeof c === 'string' ? Buffer.from(c, 'utf8') : c, (p) => frames.push(p.toString('utf8')));
  } catch (err) {
    return { frames, error: err };
  }
  return { frames, error: undefined };
}

test('encode: LEN:payload, with the byte length (UTF-8), empty is 0:,', (t) => {
  t.is(encodeNetstring('hello').toString(), '5:hello,');
  t.is(encodeNetstring('').toString(), '0:,');
  t.is(encodeNetstring('é').toString(), '2:é,');
  t.is(encodeNetstring(Buffer.from([1, 2, 3])).toString('hex'), Buffer.from('3:\x01\x02\x03,', 'latin1').toString('hex'));
});

const good: { name: string; chunks: string[]; frames: string[] }[] = [
  { name: 'one frame in one chunk', chunks: ['5:hello,'], frames: ['hello'] },
  { name: 'two frames merged in one chunk', chunks: ['5:hello,3:abc,'], frames: ['hello', 'abc'] },
  { name: 'split inside the length', chunks: ['1', '2:hello world!,'], frames: ['hello world!'] },
  { name: 'split after the colon', chunks: ['5:', 'hello,'], frames: ['hello'] },
  { name: 'split before the comma', chunks: ['5:hello', ','], frames: ['hello'] },
  { name: 'a frame and a half, then the rest', chunks: ['2:ab,4:cd', 'ef,'], frames: ['ab', 'cdef'] },
  { name: 'empty frame', chunks: ['0:,0:,'], frames: ['', ''] },
  { name: 'payload holding colons and commas', chunks: ['7:a:b,c:,,', '1:,,'], frames: ['a:b,c:,', ','] },
  { name: 'nothing yet (partial frame only)', chunks: ['10:abc'], frames: [] },
  { name: 'empty chunks change nothing', chunks: ['', '3:', '', 'xyz', '', ','], frames: ['xyz'] },
];
for (const row of good) {
  test(`decode: ${row.name}`, (t) => {
    const r = decodeAll(row.chunks);
    t.is(r.error, undefined);
    t.deepEqual(r.frames, row.frames);
  });
}

const bad: { name: string; chunks: string[]; code: 'PAYLOAD_INVALID' | 'PAYLOAD_TOO_LARGE'; frames: string[]; offset: number; max?: number }[] = [
  { name: 'no length', chunks: [':abc,'], code: 'PAYLOAD_INVALID', frames: [], offset: 0 },
  { name: 'letter instead of length', chunks: ['x'], code: 'PAYLOAD_INVALID', frames: [], offset: 0 },
  { name: 'leading zero', chunks: ['05:hello,'], code: 'PAYLOAD_INVALID', frames: [], offset: 1 },
  { name: 'no colon after length', chunks: ['5;hello,'], code: 'PAYLOAD_INVALID', frames: [], offset: 1 },
  { name: 'no comma after payload', chunks: ['2:ab', 'X'], code: 'PAYLOAD_INVALID', frames: [], offset: 4 },
  { name: 'bad frame after a good one keeps the good one', chunks: ['1:a,1:bX'], code: 'PAYLOAD_INVALID', frames: ['a'], offset: 7 },
  { name: 'too long: rejected at the length, before the bytes arrive', chunks: ['1000'], code: 'PAYLOAD_TOO_LARGE', frames: [], offset: 3, max: 999 },
  { name: 'absurd length (default max 64 KiB)', chunks: ['99999999999999999999:'], code: 'PAYLOAD_TOO_LARGE', frames: [], offset: 4 },
];
for (const row of bad) {
  test(`decode rejects: ${row.name}`, (t) => {
    const r = decodeAll(row.chunks, row.max);
    t.true(isIpphoneError(r.error, row.code), String(r.error));
    t.deepEqual(r.frames, row.frames);
    t.is((r.error as { context: { offset: number } }).context.offset, row.offset);
  });
}

test('decode: a failed decoder keeps failing (the caller drops the connection) and a new one starts clean', (t) => {
  const d = new NetstringDecoder();
  t.throws(() => d.push(Buffer.from('x'), () => undefined), { code: 'PAYLOAD_INVALID' } as never);
  t.true(d.failed);
  t.throws(() => d.push(Buffer.from('1:a,'), () => t.fail('frame after failure')), { code: 'PAYLOAD_INVALID' } as never);
  const frames: string[] = [];
  new NetstringDecoder().push(Buffer.from('1:a,'), (p) => frames.push(p.toString()));
  t.deepEqual(frames, ['a']);
});

test('decode: length exactly maxBytes is accepted', (t) => {
  const r = decodeAll([encodeNetstring('x'.repeat(16))], 16);
  t.is(r.error, undefined);
  t.deepEqual(r.frames, ['x'.repeat(16)]);
});

/** Cut `buf` into pieces of random sizes (0..max bytes, empty pieces included), from a seeded source. */
function chop(buf: Buffer, rnd: () => number, max: number): Buffer[] {
  const out: Buffer[] = [];
  let i = 0;
  while (i < buf.length) {
    const n = Math.floor(rnd() * (max + 1));
    out.push(buf.subarray(i, i + n));
    i += n;
  }
  return out;
}

test('property: any payloads, any chunking (seeded) → the same payloads in order', (t) => {
  fc.assert(
    fc.property(fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 12 }), fc.integer(), fc.integer({ min: 1, max: 64 }), (payloads, seed, max) => {
      const stream = Buffer.concat(payloads.map((p) => encodeNetstring(p)));
      const got: string[] = [];
      const d = new NetstringDecoder();
      for (const c of chop(stream, seededRandom(seed), max)) d.push(c, (p) => got.push(p.toString('hex')));
      return got.join('|') === payloads.map((p) => Buffer.from(p).toString('hex')).join('|') && d.buffered === 0;
    }),
    { numRuns: 500, seed: 11_0001 },
  );
  t.pass();
});

test('property: garbage after good frames → the good frames, then a coded error (never a bogus frame)', (t) => {
  fc.assert(
    fc.property(
      fc.array(fc.string({ maxLength: 40 }), { maxLength: 5 }),
      fc.constantFrom('x', ':', '00:', '3:abc;', '-1:', '1:a,X'),
      fc.integer(),
      (payloads, garbage, seed) => {
        const stream = Buffer.concat([...payloads.map((p) => encodeNetstring(p)), Buffer.from(garbage)]);
        const r = decodeAll(chop(stream, seededRandom(seed), 7));
        // '1:a,X' holds one good frame ('a') before its bad byte.
        const expected = [...payloads, ...(garbage === '1:a,X' ? ['a'] : [])];
        return isIpphoneError(r.error, 'PAYLOAD_INVALID') && JSON.stringify(r.frames) === JSON.stringify(expected);
      },
    ),
    { numRuns: 300, seed: 11_0002 },
  );
  t.pass();
});
