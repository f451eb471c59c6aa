import test from 'ava';
import { mkdtemp, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import { nodeDurableFs, overwriteFile, removeStaleTemps, type DurableFs } from '../../../src/store/durable-file.js';
import { recordingFs } from '../../helpers/recording-fs.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ipphone-durable-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('overwrites in place, shorter or longer, and creates no other file', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'x.bin');
  await overwriteFile(file, Buffer.from('first, long'), { created: true });
  await overwriteFile(file, Buffer.from('second'), { created: false });
  t.is(await readFile(file, 'utf8'), 'second');
  t.deepEqual(await readdir(dir), ['x.bin']);
  t.is((await stat(file)).mode & 0o777, 0o600);
});

test('call order: open → write → fsync → close; the directory is synced only for a new file', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  await overwriteFile(path.join(dir, 'x.bin'), Buffer.from('data'), { created: true }, rec.fs);
  t.deepEqual(rec.calls, ['open x.bin', 'write x.bin', 'fsync x.bin', 'close x.bin', 'open DIR', 'fsync DIR', 'close DIR']);
  rec.calls.length = 0;
  await overwriteFile(path.join(dir, 'x.bin'), Buffer.from('more data'), { created: false }, rec.fs);
  t.deepEqual(rec.calls, ['open x.bin', 'write x.bin', 'fsync x.bin', 'close x.bin']);
});

test('short writes are continued until every byte is written', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir, { maxWrite: 3 });
  const file = path.join(dir, 'x.bin');
  await overwriteFile(file, Buffer.from('0123456789'), { created: true }, rec.fs);
  t.is(await readFile(file, 'utf8'), '0123456789');
  t.is(rec.calls.filter((c) => c.startsWith('write ')).length, 4);
});

for (const [op, code] of [
  ['open', 'EACCES'],
  ['write', 'ENOSPC'],
  ['fsync', 'EIO'],
] as const) {
  test(`${code} on ${op}: the error surfaces and the file is closed`, async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'x.bin');
    await writeFile(file, 'old');
    const rec = recordingFs(dir);
    rec.faults.set(op, code);
    const err = await t.throwsAsync(overwriteFile(file, Buffer.from('new'), { created: false }, rec.fs));
    t.is((err as NodeJS.ErrnoException).code, code);
    t.deepEqual(await readdir(dir), ['x.bin']);
    // Opened (or not) — never left open.
    t.is(rec.calls.filter((c) => c === 'close x.bin').length, op === 'open' ? 0 : 1);
  });
}

test('EIO on the directory fsync of a new file is reported (its entry may not be durable)', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'x.bin');
  let fsyncs = 0;
  const fs: DurableFs = {
    ...nodeDurableFs,
    async fsync(h) {
      if (++fsyncs === 2) throw Object.assign(new Error('EIO'), { code: 'EIO' });
      return nodeDurableFs.fsync(h);
    },
  };
  const err = await t.throwsAsync(overwriteFile(file, Buffer.from('new'), { created: true }, fs));
  t.is((err as NodeJS.ErrnoException).code, 'EIO');
});

test('removeStaleTemps removes only `<prefix>….tmp-*` entries; missing dir is fine', async (t) => {
  const dir = await tempDir(t);
  for (const n of ['s.a', 's.b', 's.a.tmp-123', 's.b.tmp-9', 'other.a.tmp-1', 's.tmpfile']) {
    await writeFile(path.join(dir, n), 'x');
  }
  const removed = await removeStaleTemps(dir, 's.');
  t.deepEqual(removed.sort(), ['s.a.tmp-123', 's.b.tmp-9']);
  t.deepEqual((await readdir(dir)).sort(), ['other.a.tmp-1', 's.a', 's.b', 's.tmpfile']);
  t.deepEqual(await removeStaleTemps(path.join(dir, 'nope'), 's.'), []);
});
