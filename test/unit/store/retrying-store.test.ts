/**
 * Issue 10, "a failed save is never retried": saves retried with backoff on
 * an injected clock, the status-facing `flashed`/`storage`, and an unusable
 * state directory that no longer fails the start. Real files in a temp dir,
 * faults injected through the store's fs port.
 */
import test from 'ava';
import { mkdtemp, rm } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import type { AgentState } from '../../../src/agent/ports.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { FileStateStore, checkAgentState } from '../../../src/store/agent-state-store.js';
import { RetryingStore } from '../../../src/store/retrying-store.js';
import { recordingFs } from '../../helpers/recording-fs.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ipphone-retry-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

const state = (v: number): AgentState => ({
  pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/s' }],
  pointersVersion: v,
  configVersion: 0,
});

/** Let the store's attempt in flight (real fs calls) run to the end. */
const settle = (store: RetryingStore): Promise<void> => store.idle();

test('issue 10: a failed save is retried with backoff until it reaches flash; flashed and storage say what is on flash meanwhile', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  const clock = new FakeClock(0);
  const inner = new FileStateStore({ dir, log: silentLogger(), fs: rec.fs });
  const store = new RetryingStore({ inner, clock, log: silentLogger(), baseMs: 1000, maxMs: 4000 });
  let changes = 0;
  store.onChange(() => changes++);
  t.is(await store.load(), null);
  t.true(await store.save(state(1)));
  t.is(store.storage, 'ok');
  rec.faults.set('fsync', 'EIO');
  t.false(await store.save(state(2)), 'failed: no write');
  t.is(store.storage, 'unsaved');
  t.is(store.flashed?.pointersVersion, 1, 'still the version on flash');
  t.is(changes, 1);
  // Backoff 1 s, 2 s, 4 s, 4 s: each retry fails while the fault lasts.
  for (const ms of [1000, 2000, 4000, 4000]) {
    clock.advance(ms - 1);
    const before = store.retries;
    t.is(store.retries, before);
    clock.advance(1);
    t.is(store.retries, before + 1, `retry after ${ms} ms`);
    await settle(store);
  }
  t.is(store.storage, 'unsaved');
  rec.faults.clear();
  clock.advance(4000);
  await settle(store);
  t.is(store.storage, 'ok');
  t.is(store.flashed?.pointersVersion, 2);
  t.true(changes >= 2, 'the agent is told, so it republishes its status');
  const fresh = new FileStateStore({ dir, log: silentLogger() });
  t.is((await fresh.load())?.pointersVersion, 2, 'on flash');
  clock.advance(60_000);
  t.is(store.retries, 5, 'no retries once saved');
  t.is(clock.pending, 0);
});

test('issue 10: a newer save replaces the one being retried; close stops retries', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  const clock = new FakeClock(0);
  const inner = new FileStateStore({ dir, log: silentLogger(), fs: rec.fs });
  const store = new RetryingStore({ inner, clock, log: silentLogger() });
  await store.load();
  rec.faults.set('write', 'ENOSPC');
  await store.save(state(5));
  rec.faults.clear();
  t.true(await store.save(state(6)), 'the newer state is written at once');
  t.is(store.storage, 'ok');
  t.is(clock.pending, 0, 'the retry of the older one is cancelled');
  rec.faults.set('write', 'ENOSPC');
  await store.save(state(7));
  store.close();
  t.is(clock.pending, 0);
  t.is((await new FileStateStore({ dir, log: silentLogger() }).load())?.pointersVersion, 6);
});

test('issue 10: a state directory that cannot be created does not fail the start: load gives null, storage unavailable, saves retried', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  let broken = true;
  const fs = { ...rec.fs, mkdir: async (d: string, m: number) => (broken ? Promise.reject(Object.assign(new Error('EACCES: injected'), { code: 'EACCES' })) : rec.fs.mkdir(d, m)) };
  const clock = new FakeClock(0);
  const inner = new FileStateStore({ dir: path.join(dir, 'state'), log: silentLogger(), fs });
  await t.throwsAsync(inner.load(), { message: /state directory unusable/ }, 'the bare store still says so');
  const store = new RetryingStore({ inner, clock, log: silentLogger() });
  t.is(await store.load(), null);
  t.is(store.storage, 'unavailable');
  t.false(await store.save(state(3)));
  t.is(store.storage, 'unavailable', 'stays unavailable until a save works');
  broken = false;
  clock.advance(1000);
  await settle(store);
  t.is(store.storage, 'ok');
  t.is((await new FileStateStore({ dir: path.join(dir, 'state'), log: silentLogger() }).load())?.pointersVersion, 3);
});

test('issue 10: the pending config change and the file hash survive the state check (round trip through flash)', async (t) => {
  const dir = await tempDir(t);
  const s: AgentState = {
    ...state(9),
    fileHash: '0123456789abcdef0123456789abcdef',
    pendingConfig: { version: 12, remainingMs: 7000, restart: ['board'], pointersTouched: true, prev: { overlay: { log: { level: 'debug' } }, pointers: state(1).pointers, pointersVersion: 8 } },
  };
  const store = new FileStateStore({ dir, log: silentLogger() });
  await store.save(s);
  t.deepEqual(await new FileStateStore({ dir, log: silentLogger() }).load(), s);
  const bad = checkAgentState({ ...s, pendingConfig: { version: 12, remainingMs: -1, restart: 'board', pointersTouched: 1, prev: { overlay: [], pointers: [], pointersVersion: 'x' } } });
  t.false(bad.ok);
  if (!bad.ok) t.is(bad.problems.length, 6, bad.problems.join('\n'));
});
