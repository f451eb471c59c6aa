import test from 'ava';
import { mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import * as os from 'node:os';
import * as path from 'node:path';
import {
  nodeDurableFs,
  removeStaleTemps,
  writeFileDurable,
  type DurableFs,
} from '../../../src/store/durable-file.js';
import { recordingFs } from '../../helpers/recording-fs.js';

async function tempDir(t: { teardown(fn: () => Promise<void>): void }): Promise<string> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'ipphone-durable-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

test('writes the data and leaves no temp file', async (t) => {
  const dir = await tempDir(t);
  const file = path.join(dir, 'x.bin');
  await writeFileDurable(file, Buffer.from('first'));
  await writeFileDurable(file, Buffer.from('second, longer'));
  t.is(await readFile(file, 'utf8'), 'second, longer');
  t.deepEqual(await readdir(dir), ['x.bin']);
});

test('call order: open(tmp) → write → fsync(tmp) → close → rename → open(dir) → fsync(dir) → close(dir)', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir);
  await writeFileDurable(path.join(dir, 'x.bin'), Buffer.from('data'), rec.fs);
  const tmp = `x.bin.tmp-${process.pid}`;
  t.deepEqual(rec.calls, [
    `open ${tmp}`,
    `write ${tmp}`,
    `fsync ${tmp}`,
    `close ${tmp}`,
    `rename ${tmp} x.bin`,
    'open DIR',
    'fsync DIR',
    'close DIR',
  ]);
});

test('short writes are continued until every byte is written', async (t) => {
  const dir = await tempDir(t);
  const rec = recordingFs(dir, { maxWrite: 3 });
  const file = path.join(dir, 'x.bin');
  await writeFileDurable(file, Buffer.from('0123456789'), rec.fs);
  t.is(await readFile(file, 'utf8'), '0123456789');
  t.is(rec.calls.filter((c) => c.startsWith('write ')).length, 4);
});

for (const [op, code] of [
  ['write', 'ENOSPC'],
  ['fsync', 'EIO'],
  ['rename', 'EIO'],
] as const) {
  test(`${code} on ${op}: error surfaces, target keeps its old bytes, temp removed`, async (t) => {
    const dir = await tempDir(t);
    const file = path.join(dir, 'x.bin');
    await writeFile(file, 'old');
    const rec = recordingFs(dir);
    rec.faults.set(op, code);
    const err = await t.throwsAsync(writeFileDurable(file, Buffer.from('new'), rec.fs));
    t.is((err as NodeJS.ErrnoException).code, code);
    t.is(await readFile(file, 'utf8'), 'old');
    t.deepEqual(await readdir(dir), ['x.bin']);
    t.true(rec.calls.includes(`close x.bin.tmp-${process.pid}`), 'temp handle closed');
  });
}

test('EIO on the directory fsync is reported (the rename may not be durable)', async (t) => {
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
  const err = await t.throwsAsync(writeFileDurable(file, Buffer.from('new'), fs));
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
