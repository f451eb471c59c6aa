import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Pointer } from '../../../src/protocol/types.js';
import { groupFloor, groupFloorFor } from '../../../src/callmanager/group-floor.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';

const ptr = (id: string): Pointer => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1/${id}` });
const priv = parsePrivateKey(generateKeyPair().privatePem);

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'ipphone-floor-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/** The ack a phone holding `held` gets from a call manager started with this group. */
async function ackFor(dir: string, group: Pointer[], held: number, now: number): Promise<{ full: boolean; version: number }> {
  const clock = new FakeClock(now);
  const base = await groupFloorFor({ dir, cmId: 'cm-a', group, pointersVersion: 1, now }, silentLogger());
  const book = new ListBook({ group, baseVersion: base, clock, lazyRestore: true, sign: (b) => signEnvelope(b, priv, 'k') });
  const r = new Responder({ cmId: 'cm-a', book, table: new PhoneTable(1000), clock });
  const res = r.handle(Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: held, busy: false })));
  if (typeof res === 'string') throw new Error(res);
  return { full: res.ack.includes('"pointers":'), version: book.version };
}

test('membership changes reach phones that hold a list: a member added at a restart gives every phone the new group', async (t) => {
  const dir = tempDir(t);
  const first = await ackFor(dir, [ptr('cm-a'), ptr('cm-b')], 1, 1000);
  t.deepEqual(first, { full: false, version: 1 }, 'first start: the configured version, phones keep their lists');
  const again = await ackFor(dir, [ptr('cm-a'), ptr('cm-b')], 1, 2000);
  t.deepEqual(again, { full: false, version: 1 }, 'a restart with the same group rewrites no flash');
  const grown = await ackFor(dir, [ptr('cm-a'), ptr('cm-b'), ptr('cm-c')], 1, 3000);
  t.true(grown.full, 'the phone holding pointersVersion is given the new group');
  t.true(grown.version > 1);
  const after = await ackFor(dir, [ptr('cm-a'), ptr('cm-b'), ptr('cm-c')], grown.version, 4000);
  t.deepEqual(after, { full: false, version: grown.version }, 'and the new floor is kept across restarts');
});

test('the floor grows at every change even when the clock is behind it', async (t) => {
  const dir = tempDir(t);
  const o = { dir, cmId: 'cm-a', pointersVersion: 5, now: 0 };
  t.is((await groupFloor({ ...o, group: [ptr('cm-a')] })).floor, 5);
  t.is((await groupFloor({ ...o, group: [ptr('cm-a'), ptr('cm-b')] })).floor, 6);
  t.is((await groupFloor({ ...o, group: [ptr('cm-a')] })).floor, 7);
});

test('an unusable state directory: the configured version, no throw', async (t) => {
  const dir = join(tempDir(t), 'file');
  (await import('node:fs')).writeFileSync(dir, 'x');
  t.is(await groupFloorFor({ dir, cmId: 'cm-a', group: [ptr('cm-a')], pointersVersion: 3, now: 1 }, silentLogger()), 3);
});

test('versions-bounded-by-wall-clock: a group floor stored while the clock ran 30 days ahead is not carried forward', async (t) => {
  const dir = tempDir(t);
  const group = [ptr('cm-a'), ptr('cm-b')];
  const day = 24 * 3600_000;
  const now = 1_764_000_000_000;
  await groupFloor({ dir, cmId: 'cm-a', group, pointersVersion: 1, now: now + 30 * day });
  // The group changed at a start whose clock was 30 days ahead: that floor was stored.
  const far = await groupFloor({ dir, cmId: 'cm-a', group: [...group, ptr('cm-c')], pointersVersion: 1, now: now + 30 * day });
  t.true(far.floor >= now + 30 * day);
  const back = await groupFloor({ dir, cmId: 'cm-a', group: [...group, ptr('cm-c')], pointersVersion: 1, now });
  t.is(back.discarded, far.floor, 'discarded (was: kept, the group list issued 30 days ahead)');
  t.is(back.floor, now);
  const again = await groupFloor({ dir, cmId: 'cm-a', group: [...group, ptr('cm-c')], pointersVersion: 1, now: now + 1000 });
  t.deepEqual(again, { floor: now, changed: false }, 'stored: the next start keeps it');
});
