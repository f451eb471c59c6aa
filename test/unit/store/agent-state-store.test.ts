import test from 'ava';
import { recordingFs } from '../../helpers/recording-fs.js';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { pino } from 'pino';
import type { AgentState } from '../../../src/agent/ports.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import type { Logger } from '../../../src/lib/log.js';
import { decodeSlot, encodeSlot } from '../../../src/store/ab-slots.js';
import {
  FileStateStore,
  STATE_FILE_NAME,
  canonicalJson,
  checkAgentState,
} from '../../../src/store/agent-state-store.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ipphone-state-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

function captureLog(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = pino({ level: 'debug', base: {} }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}


const stateV = (v: number, overlay?: Record<string, unknown>): AgentState => ({
  pointers: [
    { id: v % 2 ? 'cm-a' : 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' },
    { id: v % 2 ? 'cm-b' : 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services' },
  ],
  pointersVersion: v,
  configVersion: 0,
  ...(overlay ? { configOverlay: overlay } : {}),
});

const slotFile = (dir: string, s: 'a' | 'b') => path.join(dir, `${STATE_FILE_NAME}.${s}`);
const seqOf = async (file: string) => (await readFile(file)).readUInt32LE(8);
const fileId = async (file: string) => {
  const st = await stat(file, { bigint: true });
  return `${st.ino}:${st.mtimeNs}`;
};

test('round trip: save then load in a new store returns the same state; logs slot and seq', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  const state = stateV(7, { keepalive: { intervalMs: 500 } });
  t.true(await store.save(state));
  t.is(store.writes, 1);
  const { log, lines } = captureLog();
  const again = new FileStateStore({ dir, log });
  t.deepEqual(await again.load(), state);
  t.is(again.writes, 0);
  t.like(lines.find((l) => l.msg === 'state loaded'), { level: 30, mod: 'store', slot: 'a', seq: 1, pointersVersion: 7 });
});

test('first boot: no slots → null, warns "no valid state slot"', async (t) => {
  const dir = await tempDir(t);
  const { log, lines } = captureLog();
  t.is(await new FileStateStore({ dir: path.join(dir, 'fresh'), log }).load(), null);
  t.like(lines.find((l) => l.msg === 'no valid state slot'), { level: 40, firstBoot: true });
});

test('saves alternate a → b → a with increasing seq; boot picks the newest', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  for (const v of [1, 2, 3]) t.true(await store.save(stateV(v)));
  t.is(store.writes, 3);
  t.is(await seqOf(slotFile(dir, 'a')), 3);
  t.is(await seqOf(slotFile(dir, 'b')), 2);
  t.deepEqual(await new FileStateStore({ dir, log: captureLog().log }).load(), stateV(3));
});

test('corrupt newest slot → boots from the other and warns why', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  await store.save(stateV(1));
  await store.save(stateV(2)); // b, newest
  const buf = await readFile(slotFile(dir, 'b'));
  buf[buf.length - 3] = buf[buf.length - 3]! ^ 0x20;
  await writeFile(slotFile(dir, 'b'), buf);
  const { log, lines } = captureLog();
  t.deepEqual(await new FileStateStore({ dir, log }).load(), stateV(1));
  const warn = lines.find((l) => l.msg === 'state slot invalid');
  t.like(warn, { level: 40, slot: 'b', kind: 'bad-crc' });
  t.regex(String(warn?.['reason']), /bad CRC/);
  t.like(lines.find((l) => l.msg === 'state loaded'), { slot: 'a', seq: 1 });
});

test('both slots bad → null, a warning per slot and "no valid state slot"', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  await store.save(stateV(1));
  await store.save(stateV(2));
  await writeFile(slotFile(dir, 'a'), 'junk'.repeat(10));
  await writeFile(slotFile(dir, 'b'), Buffer.alloc(0));
  const { log, lines } = captureLog();
  t.is(await new FileStateStore({ dir, log }).load(), null);
  t.deepEqual(
    lines.filter((l) => l.msg === 'state slot invalid').map((l) => [l['slot'], l['kind']]),
    [
      ['a', 'bad-magic'],
      ['b', 'short'],
    ],
  );
  const fallback = lines.find((l) => l.msg === 'no valid state slot');
  t.like(fallback, { level: 40, firstBoot: false });
  t.is((fallback?.['problems'] as string[]).length, 2);
});

for (const [what, payload] of [
  ['invalid JSON', '{"pointers": ['],
  ['empty pointer list', JSON.stringify({ ...stateV(9), pointers: [] })],
  ['negative version', JSON.stringify({ ...stateV(9), pointersVersion: -1 })],
  ['pointer without services', JSON.stringify({ ...stateV(9), pointers: [{ id: 'x', broker: 'mqtt://h' }] })],
  ['17 pointers', JSON.stringify({ ...stateV(9), pointers: Array.from({ length: 17 }, () => stateV(9).pointers[0]) })],
  ['overlay not an object', JSON.stringify({ ...stateV(9), configOverlay: [1] })],
] as const) {
  test(`a CRC-valid newest slot with ${what} is skipped`, async (t) => {
    const dir = await tempDir(t);
    const store = new FileStateStore({ dir, log: captureLog().log });
    await store.save(stateV(1)); // a, seq 1
    await writeFile(slotFile(dir, 'b'), encodeSlot(2, Buffer.from(payload)));
    const { log, lines } = captureLog();
    const fresh = new FileStateStore({ dir, log });
    t.deepEqual(await fresh.load(), stateV(1));
    t.like(lines.find((l) => l.msg === 'state slot invalid'), { slot: 'b', kind: 'bad-content' });
    // The next write goes to the invalid slot, keeping the only valid one.
    const before = await fileId(slotFile(dir, 'a'));
    t.true(await fresh.save(stateV(3)));
    t.is(await fileId(slotFile(dir, 'a')), before);
    t.is(await seqOf(slotFile(dir, 'b')), 2);
  });
}

test('saving an equal state writes nothing: counter and files unchanged (key order irrelevant)', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  t.true(await store.save(stateV(1, { a: 1, b: { c: 2, d: 3 } })));
  const before = await fileId(slotFile(dir, 'a'));
  const reordered: AgentState = {
    configOverlay: { b: { d: 3, c: 2 }, a: 1 },
    configVersion: 0,
    pointersVersion: 1,
    pointers: stateV(1).pointers.map((p) => ({ services: p.services, id: p.id, broker: p.broker })),
  };
  t.false(await store.save(reordered));
  t.false(await store.save(stateV(1, { a: 1, b: { c: 2, d: 3 } })));
  t.is(store.writes, 1);
  t.is(await fileId(slotFile(dir, 'a')), before);
  await t.throwsAsync(stat(slotFile(dir, 'b')), { code: 'ENOENT' });
});

test('after load, saving the loaded state writes nothing; a changed one writes once', async (t) => {
  const dir = await tempDir(t);
  await new FileStateStore({ dir, log: captureLog().log }).save(stateV(4));
  const store = new FileStateStore({ dir, log: captureLog().log });
  const loaded = await store.load();
  t.truthy(loaded);
  t.false(await store.save(loaded!));
  t.is(store.writes, 0);
  t.true(await store.save({ ...loaded!, configVersion: 1 }));
  t.is(store.writes, 1);
  t.false(await store.save({ ...loaded!, configVersion: 1 }));
  t.is(store.writes, 1);
});

test('a save overwrites the older slot in place: open → write → fsync → close; the directory is synced only when a slot file is new', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  const store = new FileStateStore({ dir, log: captureLog().log, fs: rec.fs });
  await store.save(stateV(1)); // a, a new file
  const a = `${STATE_FILE_NAME}.a`;
  const b = `${STATE_FILE_NAME}.b`;
  t.deepEqual(rec.calls.slice(-7), [`open ${a}`, `write ${a}`, `fsync ${a}`, `close ${a}`, 'open DIR', 'fsync DIR', 'close DIR']);
  rec.calls.length = 0;
  await store.save(stateV(2)); // b, a new file
  t.deepEqual(rec.calls, [`open ${b}`, `write ${b}`, `fsync ${b}`, `close ${b}`, 'open DIR', 'fsync DIR', 'close DIR']);
  rec.calls.length = 0;
  await store.save(stateV(3)); // must replace a, the older one, which exists
  t.deepEqual(rec.calls, [`open ${a}`, `write ${a}`, `fsync ${a}`, `close ${a}`]);
  // A fresh store (a reboot) knows both files exist from its scan.
  const again = new FileStateStore({ dir, log: captureLog().log, fs: rec.fs });
  t.deepEqual(await again.load(), stateV(3));
  rec.calls.length = 0;
  await again.save(stateV(4));
  t.deepEqual(rec.calls, [`open ${b}`, `write ${b}`, `fsync ${b}`, `close ${b}`]);
});

test('a torn write of the older slot (power cut mid-write) loses only that copy: boot takes the newest valid one', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  await store.save(stateV(1)); // a
  await store.save(stateV(2)); // b
  // What a cut during the next save (into a) can leave: a truncated or half-written a.
  const full = encodeSlot(3, Buffer.from(JSON.stringify(stateV(3))));
  for (const torn of [Buffer.alloc(0), full.subarray(0, 10), full.subarray(0, full.length - 1), Buffer.concat([full.subarray(0, 25), Buffer.alloc(full.length - 25)])]) {
    await writeFile(path.join(dir, `${STATE_FILE_NAME}.a`), torn);
    const { log, lines } = captureLog();
    t.deepEqual(await new FileStateStore({ dir, log }).load(), stateV(2));
    t.truthy(lines.find((l) => /slot/.test(String(l.msg)) && l.level === 40), 'the torn slot is reported');
  }
});

test('injected ENOSPC: save rejects STORE_IO, previous state stays loadable, a later save succeeds', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  const { log, lines } = captureLog();
  const store = new FileStateStore({ dir, log, fs: rec.fs });
  t.true(await store.save(stateV(1)));
  t.true(await store.save(stateV(2)));
  rec.faults.set('write', 'ENOSPC');
  const err = await t.throwsAsync(store.save(stateV(3)));
  t.true(isIpphoneError(err, 'STORE_IO'), String(err));
  t.like(lines.find((l) => l.msg === 'state write failed'), { level: 50, errno: 'ENOSPC' });
  t.is(store.writes, 2);
  t.is(store.failedWrites, 1);
  t.deepEqual((await readdir(dir)).sort(), [`${STATE_FILE_NAME}.a`, `${STATE_FILE_NAME}.b`]);
  t.deepEqual(await new FileStateStore({ dir, log: captureLog().log }).load(), stateV(2));
  rec.faults.clear();
  t.true(await store.save(stateV(3)));
  t.is(store.writes, 3);
  t.deepEqual(await new FileStateStore({ dir, log: captureLog().log }).load(), stateV(3));
});

test('injected EIO on fsync: the save fails, the valid copy it did not touch stays, a later save succeeds', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  const store = new FileStateStore({ dir, log: captureLog().log, fs: rec.fs });
  t.true(await store.save(stateV(1)));
  rec.faults.set('fsync', 'EIO');
  await t.throwsAsync(store.save(stateV(2)), { code: 'STORE_IO' });
  // Slot a still holds version 1; slot b holds the unconfirmed write (it reached the page
  // cache, its durability is unknown): a boot now takes either, never anything else.
  const slotA = decodeSlot(await readFile(path.join(dir, `${STATE_FILE_NAME}.a`)));
  t.true(slotA.ok && JSON.parse(slotA.payload.toString()).pointersVersion === stateV(1).pointersVersion);
  const loaded = await new FileStateStore({ dir, log: captureLog().log }).load();
  t.true([stateV(1), stateV(2)].some((s) => JSON.stringify(s) === JSON.stringify(loaded)), 'one of the two');
  rec.faults.clear();
  t.true(await store.save(stateV(2)));
  t.deepEqual(await new FileStateStore({ dir, log: captureLog().log }).load(), stateV(2));
});

test('a half-written .tmp- file left over is ignored and removed at load', async (t) => {
  const dir = await tempDir(t);
  await new FileStateStore({ dir, log: captureLog().log }).save(stateV(5));
  const leftover = `${STATE_FILE_NAME}.b.tmp-4242`;
  await writeFile(path.join(dir, leftover), encodeSlot(99, Buffer.from(JSON.stringify(stateV(6)))).subarray(0, 30));
  const { log, lines } = captureLog();
  t.deepEqual(await new FileStateStore({ dir, log }).load(), stateV(5));
  t.deepEqual(await readdir(dir), [`${STATE_FILE_NAME}.a`]);
  t.deepEqual(lines.find((l) => l.msg === 'removed leftover temp files')?.['removed'], [leftover]);
});

test('seq wrap-around: slot a seq 0xFFFFFFFF, slot b seq 0 → b is loaded', async (t) => {
  const dir = await tempDir(t);
  await writeFile(slotFile(dir, 'a'), encodeSlot(0xffffffff, Buffer.from(canonicalJson(stateV(1)))));
  await writeFile(slotFile(dir, 'b'), encodeSlot(0, Buffer.from(canonicalJson(stateV(2)))));
  const { log, lines } = captureLog();
  const store = new FileStateStore({ dir, log });
  t.deepEqual(await store.load(), stateV(2));
  t.like(lines.find((l) => l.msg === 'state loaded'), { slot: 'b', seq: 0 });
  await store.save(stateV(3));
  t.is(await seqOf(slotFile(dir, 'a')), 1);
});

test('an invalid state is refused with PAYLOAD_INVALID and nothing is written', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  const bad = { ...stateV(1), pointersVersion: 1.5 };
  const err = await t.throwsAsync(store.save(bad));
  t.true(isIpphoneError(err, 'PAYLOAD_INVALID'));
  t.is(store.writes, 0);
  t.deepEqual(await readdir(dir), []);
});

test('checkAgentState lists every problem and normalises pointers', (t) => {
  const res = checkAgentState({ pointers: [{ id: 1 }], pointersVersion: -1, configVersion: 'x', configOverlay: null });
  t.false(res.ok);
  if (!res.ok) t.is(res.problems.length, 4);
  const ok = checkAgentState({ ...stateV(1), pointers: [{ ...stateV(1).pointers[0]!, extra: true }] });
  t.true(ok.ok);
  if (ok.ok) t.deepEqual(Object.keys(ok.state.pointers[0]!), ['id', 'broker', 'services']);
});

test('concurrent saves are serialised and de-duplicated in call order', async (t) => {
  const dir = await tempDir(t);
  const store = new FileStateStore({ dir, log: captureLog().log });
  const res = await Promise.all([stateV(1), stateV(1), stateV(2), stateV(1)].map((s) => store.save(s)));
  t.deepEqual(res, [true, false, true, true]);
  t.is(store.writes, 3);
  t.deepEqual(await new FileStateStore({ dir, log: captureLog().log }).load(), stateV(1));
});

test('a state dir that cannot be created → load rejects STORE_IO; save rejects STORE_IO', async (t) => {
  const dir = await tempDir(t);
  const blocker = path.join(dir, 'file');
  await writeFile(blocker, 'not a directory');
  const store = new FileStateStore({ dir: path.join(blocker, 'state'), log: captureLog().log });
  const err = await t.throwsAsync(store.load());
  t.true(isIpphoneError(err, 'STORE_IO'), String(err));
  const err2 = await t.throwsAsync(store.save(stateV(1)));
  t.true(isIpphoneError(err2, 'STORE_IO'), String(err2));
  t.is(store.writes, 0);
});
