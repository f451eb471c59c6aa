import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { bootSeqFor, nextBootSeq } from '../../../src/callmanager/boot-seq.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { recordingFs } from '../../helpers/recording-fs.js';
import { capturingLogger } from '../../helpers/log-capture.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'ipphone-bdseq-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('bdseq-increases-at-every-start: stored + 1 while the clock is behind it', async (t) => {
  const dir = join(tempDir(t), 'state');
  const a = await nextBootSeq({ dir, cmId: 'cm-a', now: 0 });
  t.deepEqual(a, { bdSeq: 1, previous: null, problems: [] });
  const b = await nextBootSeq({ dir, cmId: 'cm-a', now: 0 });
  t.is(b.bdSeq, 2);
  t.is(b.previous, 1);
  t.is((await nextBootSeq({ dir, cmId: 'cm-a', now: 0 })).bdSeq, 3);
  t.deepEqual(readdirSync(dir).sort(), ['bdseq-cm-a.a', 'bdseq-cm-a.b'], 'two A/B slots per call manager');
});

test('bdseq-survives-a-lost-state-dir: the clock keeps it above every earlier run', async (t) => {
  const root = tempDir(t);
  const first = await nextBootSeq({ dir: join(root, 'one'), cmId: 'cm-a', now: 1_700_000_000_000 });
  t.is(first.bdSeq, 1_700_000_000_000);
  const fresh = await nextBootSeq({ dir: join(root, 'wiped'), cmId: 'cm-a', now: 1_700_000_005_000 });
  t.true(fresh.bdSeq > first.bdSeq);
  const clockBack = await nextBootSeq({ dir: join(root, 'one'), cmId: 'cm-a', now: 5 });
  t.is(clockBack.bdSeq, first.bdSeq + 1, 'a clock stepped back does not lower it');
});

test('bdseq-per-cm: two call managers sharing a directory keep their own sequences', async (t) => {
  const dir = tempDir(t);
  await nextBootSeq({ dir, cmId: 'cm-a', now: 0 });
  await nextBootSeq({ dir, cmId: 'cm-a', now: 0 });
  t.is((await nextBootSeq({ dir, cmId: 'cm-b', now: 0 })).bdSeq, 1);
});

test('bdseq-torn-slot: a damaged newest slot falls back to the other and still increases', async (t) => {
  const dir = tempDir(t);
  await nextBootSeq({ dir, cmId: 'cm-a', now: 0 }); // a: 1
  await nextBootSeq({ dir, cmId: 'cm-a', now: 0 }); // b: 2
  writeFileSync(join(dir, 'bdseq-cm-a.b'), 'torn');
  const r = await nextBootSeq({ dir, cmId: 'cm-a', now: 0 });
  t.is(r.previous, 1);
  t.is(r.bdSeq, 2);
  t.true(r.problems.some((p) => p.startsWith('b:')), r.problems.join());
});

test('bdseq-written-durably: the slot is fsynced before the sequence is used', async (t) => {
  const dir = tempDir(t);
  const rec = recordingFs(dir);
  await nextBootSeq({ dir, cmId: 'cm-a', now: 0, fs: rec.fs });
  t.deepEqual(rec.calls.filter((c) => c.includes('bdseq')), ['open bdseq-cm-a.a', 'write bdseq-cm-a.a', 'fsync bdseq-cm-a.a', 'close bdseq-cm-a.a']);
  const failing = recordingFs(dir);
  failing.faults.set('fsync', 'EIO');
  const err = await t.throwsAsync(nextBootSeq({ dir, cmId: 'cm-a', now: 0, fs: failing.fs }));
  t.true(isIpphoneError(err, 'STORE_IO'));
});

test('bdseq-unusable-dir: an explicit stateDir that cannot be used is an error naming it', async (t) => {
  const root = tempDir(t);
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  const dir = join(file, 'state');
  const err = await t.throwsAsync(bootSeqFor({ cmId: 'cm-a', stateDir: dir }, 0, capturingLogger().log));
  t.true(isIpphoneError(err, 'STORE_IO'));
  t.true(err!.message.includes(dir), err!.message);
  t.regex(err!.message, /^stateDir: /);
});

test('bdseq-explicit-dir: bootSeqFor uses and logs it', async (t) => {
  const dir = tempDir(t);
  const { log, lines } = capturingLogger();
  t.is(await bootSeqFor({ cmId: 'cm-a', stateDir: dir }, 42, log), 42);
  t.is(await bootSeqFor({ cmId: 'cm-a', stateDir: dir }, 42, log), 43);
  t.deepEqual(lines.map((l) => [l.msg, l.bdSeq, l.stateDir]), [
    ['boot sequence', 42, dir],
    ['boot sequence', 43, dir],
  ]);
});

test('bdseq-default-dir-soft: with stateDir null an unusable default falls back to the clock, with a warning', async (t) => {
  const root = tempDir(t);
  const file = join(root, 'a-file');
  writeFileSync(file, 'x');
  const { log, lines } = capturingLogger();
  t.is(await bootSeqFor({ cmId: 'cm-a', stateDir: null }, 1_700_000_000_123, log, join(file, 'state')), 1_700_000_000_123);
  t.is(lines[0]?.msg, 'default state directory not usable: boot sequence from the clock alone');
  t.is(lines[0]?.level, 40);
  const usable = join(root, 'default');
  t.is(await bootSeqFor({ cmId: 'cm-a', stateDir: null }, 5, log, usable), 5);
  t.is(await bootSeqFor({ cmId: 'cm-a', stateDir: null }, 5, log, usable), 6, 'a usable default is used');
});
