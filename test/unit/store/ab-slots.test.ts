import test from 'ava';
import { mkdir, mkdtemp, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { isIpphoneError } from '../../../src/lib/errors.js';
import {
  AbSlots,
  SLOT_HEADER_BYTES,
  decodeSlot,
  encodeSlot,
  seqCompare,
  seqNext,
  type SlotName,
} from '../../../src/store/ab-slots.js';
import { crc32 } from '../../../src/store/crc32.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ipphone-slots-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const seqOf = async (file: string) => (await readFile(file)).readUInt32LE(8);

async function flipByte(file: string, offset: number): Promise<void> {
  const buf = await readFile(file);
  buf[offset] = buf[offset]! ^ 0xff;
  await writeFile(file, buf);
}

test('slot layout: magic, version, reserved, seq, length, crc, payload (little-endian)', (t) => {
  const payload = Buffer.from('{"x":1}');
  const buf = encodeSlot(0x01020304, payload);
  t.is(buf.length, SLOT_HEADER_BYTES + payload.length);
  t.is(buf.subarray(0, 4).toString('latin1'), 'IPST');
  t.is(buf[4], 1);
  t.deepEqual([...buf.subarray(5, 8)], [0, 0, 0]);
  t.deepEqual([...buf.subarray(8, 12)], [0x04, 0x03, 0x02, 0x01]);
  t.is(buf.readUInt32LE(12), payload.length);
  t.is(buf.readUInt32LE(16), crc32(Buffer.concat([buf.subarray(0, 16), payload])));
  t.deepEqual(buf.subarray(20), payload);
  t.deepEqual(decodeSlot(buf), { ok: true, seq: 0x01020304, payload });
});

test('seqCompare follows RFC 1982 serial arithmetic', (t) => {
  const rows: Array<[number, number, -1 | 0 | 1]> = [
    [2, 1, 1],
    [1, 2, -1],
    [5, 5, 0],
    [0, 0xffffffff, 1],
    [0xffffffff, 0, -1],
    [3, 0xfffffffe, 1],
    [0x7fffffff, 0, 1],
    [0x80000001, 0, -1],
  ];
  for (const [a, b, want] of rows) t.is(seqCompare(a, b), want, `${a} vs ${b}`);
  t.is(seqNext(0xffffffff), 0);
});

test('constructor touches nothing; open() creates the dir with mode 0700', async (t) => {
  const root = await tempDir(t);
  const dir = path.join(root, 'state', 'deep');
  const slots = new AbSlots({ dir, name: 's' });
  await t.throwsAsync(stat(dir), { code: 'ENOENT' });
  await slots.open();
  await slots.open();
  t.is((await stat(dir)).mode & 0o777, 0o700);
});

test('round trip, and writes alternate a → b → a with increasing seq', async (t) => {
  const dir = await tempDir(t);
  const slots = new AbSlots({ dir, name: 's' });
  t.like(await slots.load(), { payload: null });
  const seen: Array<{ slot: SlotName; seq: number }> = [];
  for (const text of ['one', 'two', 'three']) {
    seen.push(await slots.write(Buffer.from(text)));
    const res = await new AbSlots({ dir, name: 's' }).load();
    t.is(res.payload?.toString(), text);
  }
  t.deepEqual(seen, [
    { slot: 'a', seq: 1 },
    { slot: 'b', seq: 2 },
    { slot: 'a', seq: 3 },
  ]);
  t.is(await seqOf(slots.path('a')), 3);
  t.is(await seqOf(slots.path('b')), 2);
  const res = await new AbSlots({ dir, name: 's' }).load();
  t.like(res, { slot: 'a', seq: 3, problems: [] });
});

test('a fresh instance writes to the older slot, never the newest valid one', async (t) => {
  const dir = await tempDir(t);
  const first = new AbSlots({ dir, name: 's' });
  await first.write(Buffer.from('one')); // a:1
  await first.write(Buffer.from('two')); // b:2
  const before = await readFile(first.path('b'));
  // Without an explicit load: write must scan first and pick a.
  t.deepEqual(await new AbSlots({ dir, name: 's' }).write(Buffer.from('three')), { slot: 'a', seq: 3 });
  t.deepEqual(await readFile(first.path('b')), before);
});

test('seq wrap-around: a at 0xFFFFFFFF, b at 0 → b is newest, next write goes to a with seq 1', async (t) => {
  const dir = await tempDir(t);
  const slots = new AbSlots({ dir, name: 's' });
  await slots.open();
  await writeFile(slots.path('a'), encodeSlot(0xffffffff, Buffer.from('old')));
  await writeFile(slots.path('b'), encodeSlot(0, Buffer.from('new')));
  const res = await slots.load();
  t.like(res, { slot: 'b', seq: 0 });
  t.is(res.payload?.toString(), 'new');
  t.deepEqual(await slots.write(Buffer.from('newer')), { slot: 'a', seq: 1 });
});

const corruptions: Array<[string, (len: number) => number, RegExp]> = [
  ['payload byte', (len) => len - 1, /^b: bad CRC/],
  ['seq byte (header)', () => 9, /^b: bad CRC/],
  ['reserved byte (header)', () => 6, /^b: bad CRC/],
  ['crc byte', () => 17, /^b: bad CRC/],
  ['magic byte', () => 0, /^b: bad magic/],
  ['version byte', () => 4, /^b: unsupported format version/],
  ['length byte', () => 12, /^b: bad length/],
];
for (const [what, at, reason] of corruptions) {
  test(`flipped ${what} in the newest slot → loads the other slot and says why`, async (t) => {
    const dir = await tempDir(t);
    const slots = new AbSlots({ dir, name: 's' });
    await slots.write(Buffer.from('older'));
    await slots.write(Buffer.from('newest'));
    const len = (await stat(slots.path('b'))).size;
    await flipByte(slots.path('b'), at(len));
    const fresh = new AbSlots({ dir, name: 's' });
    const res = await fresh.load();
    t.like(res, { slot: 'a', seq: 1 });
    t.is(res.payload?.toString(), 'older');
    t.is(res.problems.length, 1);
    t.regex(res.problems[0]!, reason);
    // The damaged slot is the one rewritten next; the only valid one is kept.
    t.deepEqual(await fresh.write(Buffer.from('again')), { slot: 'b', seq: 2 });
  });
}

for (const slot of ['a', 'b'] as const) {
  for (const cut of [0, 3, SLOT_HEADER_BYTES - 1, SLOT_HEADER_BYTES, SLOT_HEADER_BYTES + 4, -1]) {
    test(`slot ${slot} truncated to ${cut < 0 ? 'length-1' : cut} bytes → the other slot loads`, async (t) => {
      const dir = await tempDir(t);
      const slots = new AbSlots({ dir, name: 's' });
      await slots.write(Buffer.from('payload of a, long enough')); // a:1
      await slots.write(Buffer.from('payload of b, long enough too')); // b:2
      const file = slots.path(slot);
      const len = (await stat(file)).size;
      await truncate(file, cut < 0 ? len - 1 : cut);
      const res = await new AbSlots({ dir, name: 's' }).load();
      const survivor = slot === 'a' ? 'b' : 'a';
      t.like(res, { slot: survivor, seq: survivor === 'a' ? 1 : 2 });
      t.is(res.invalid.length, 1);
      t.like(res.invalid[0], { slot, kind: cut < SLOT_HEADER_BYTES && cut >= 0 ? 'short' : 'bad-length' });
    });
  }
}

test('both slots bad → payload null with a problem for each', async (t) => {
  const dir = await tempDir(t);
  const slots = new AbSlots({ dir, name: 's' });
  await slots.write(Buffer.from('one'));
  await slots.write(Buffer.from('two'));
  await flipByte(slots.path('a'), 0);
  await truncate(slots.path('b'), 5);
  const res = await new AbSlots({ dir, name: 's' }).load();
  t.is(res.payload, null);
  t.is(res.problems.length, 2);
  t.regex(res.problems[0]!, /^a: bad magic/);
  t.regex(res.problems[1]!, /^b: short \(5 bytes/);
});

test('missing slots are reported as missing', async (t) => {
  const dir = await tempDir(t);
  const res = await new AbSlots({ dir, name: 's' }).load();
  t.deepEqual(res.problems, ['a: missing', 'b: missing']);
});

test('validate() rejecting a CRC-valid newest slot makes load use the other one', async (t) => {
  const dir = await tempDir(t);
  const validate = (p: Buffer) => (p.toString().startsWith('ok') ? null : 'does not start with ok');
  const slots = new AbSlots({ dir, name: 's', validate });
  await slots.write(Buffer.from('ok 1'));
  await slots.write(Buffer.from('garbage'));
  const res = await new AbSlots({ dir, name: 's', validate }).load();
  t.like(res, { slot: 'a', seq: 1 });
  t.deepEqual(res.problems, ['b: invalid content (does not start with ok)']);
});

test('a payload over the cap is refused before anything is written', async (t) => {
  const dir = await tempDir(t);
  const slots = new AbSlots({ dir, name: 's', maxPayloadBytes: 8 });
  const err = await t.throwsAsync(slots.write(Buffer.alloc(9)));
  t.true(isIpphoneError(err, 'PAYLOAD_TOO_LARGE'));
  t.deepEqual((await slots.load()).problems, ['a: missing', 'b: missing']);
});

test('concurrent writes are serialised: seqs 1..5 in call order, last payload wins', async (t) => {
  const dir = await tempDir(t);
  const slots = new AbSlots({ dir, name: 's' });
  const results = await Promise.all([1, 2, 3, 4, 5].map((n) => slots.write(Buffer.from(`v${n}`))));
  t.deepEqual(
    results.map((r) => r.seq),
    [1, 2, 3, 4, 5],
  );
  t.deepEqual(
    results.map((r) => r.slot),
    ['a', 'b', 'a', 'b', 'a'],
  );
  const res = await new AbSlots({ dir, name: 's' }).load();
  t.is(res.payload?.toString(), 'v5');
});

test('an unreadable slot (here: a directory) is reported and the other slot used', async (t) => {
  const dir = await tempDir(t);
  const slots = new AbSlots({ dir, name: 's' });
  await slots.write(Buffer.from('one')); // a
  await mkdir(slots.path('b'));
  const res = await new AbSlots({ dir, name: 's' }).load();
  t.is(res.payload?.toString(), 'one');
  t.deepEqual(res.problems, ['b: unreadable (EISDIR)']);
});
