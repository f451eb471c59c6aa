import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { decodeAck, openPointers } from '../../../src/protocol/codec.js';
import { mergeGroupList } from '../../../src/protocol/list-merge.js';
import type { Pointer, PointersBody } from '../../../src/protocol/types.js';
import { groupFloorFor } from '../../../src/callmanager/group-floor.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';
import { signRetired } from '../../../src/callmanager/retired.js';

/** A member removed from the group (config `retired`, retired.ts) leaves every phone's list; a remote site's pointer stays. */

const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['k', parsePublicKey(keys.publicPem)]]);
const ptr = (id: string): Pointer => ({ id, broker: `mqtt://${id}.example:1883`, services: `http://${id}.example/services` });
const ids = (l: readonly Pointer[]): string[] => l.map((p) => p.id);
const sign = (b: PointersBody) => signEnvelope(b, priv, 'k');

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'ipphone-retired-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

/**
 * A call manager started with `group` and `retired` over the state directory `dir`, as
 * call-manager.ts wires it; the list a phone holding `held` at `version` ends with, merged as the agent does.
 */
async function phoneAfterAck(dir: string, group: Pointer[], retired: string[], held: Pointer[], version: number, now: number): Promise<{ list: Pointer[]; owns: readonly string[] | undefined; version: number } | undefined> {
  const clock = new FakeClock(now);
  const base = await groupFloorFor({ dir, cmId: 'cm-a', group, retired, pointersVersion: 1, now }, silentLogger());
  const book = new ListBook({ group, baseVersion: base, clock, bind: true, sign: signRetired(sign, retired) });
  const r = new Responder({ cmId: 'cm-a', book, table: new PhoneTable(1000), clock });
  const res = r.handle(Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: version, busy: false })));
  if (typeof res === 'string') throw new Error(res);
  const ack = decodeAck(Buffer.from(res.ack));
  if (ack.pointers === undefined) return undefined;
  const body = openPointers(ack.pointers, trusted, { phoneId: 'p1', heldVersion: version, now: clock.now() });
  return { list: mergeGroupList(held, body.list, body.owns), owns: body.owns, version: body.version };
}

test('membership removal reaches phones: a member the config retires leaves the list of a phone that holds it, at its next ack; the remote site stays in place', async (t) => {
  const dir = tempDir(t);
  const held = [ptr('cm-a'), ptr('cm-b'), ptr('cm-c'), ptr('cm-r')];
  t.is(await phoneAfterAck(dir, ['cm-a', 'cm-b', 'cm-c'].map(ptr), [], held, 1, 1000), undefined, 'the first start: phones keep what they hold');
  // cm-c removed: the operator edits every member's config (group without cm-c, retired [cm-c]) and restarts it.
  const after = await phoneAfterAck(dir, ['cm-a', 'cm-b'].map(ptr), ['cm-c'], held, 1, 2000);
  t.truthy(after, 'the changed group raised the floor: the phone is given the list');
  t.deepEqual(after!.owns, ['cm-a', 'cm-b', 'cm-c']);
  t.deepEqual(ids(after!.list), ['cm-a', 'cm-b', 'cm-r'], 'cm-c dropped, cm-r kept');
  // Idempotent: the same list merged again changes nothing.
  t.deepEqual(ids(mergeGroupList(after!.list, ['cm-a', 'cm-b'].map(ptr), after!.owns)), ['cm-a', 'cm-b', 'cm-r']);
});

test('without retired, a removed member stays in phones\' lists as a pointer the group does not own (the behaviour retired exists to end)', async (t) => {
  const dir = tempDir(t);
  const held = [ptr('cm-a'), ptr('cm-b'), ptr('cm-c'), ptr('cm-r')];
  await phoneAfterAck(dir, ['cm-a', 'cm-b', 'cm-c'].map(ptr), [], held, 1, 1000);
  const after = await phoneAfterAck(dir, ['cm-a', 'cm-b'].map(ptr), [], held, 1, 2000);
  t.deepEqual(ids(after!.list), ['cm-a', 'cm-b', 'cm-c', 'cm-r']);
});

test('retiring a member later, without another group change, still reaches phones that hold the current version (the floor rises)', async (t) => {
  const dir = tempDir(t);
  const group = ['cm-a', 'cm-b'].map(ptr);
  const held = [ptr('cm-a'), ptr('cm-c'), ptr('cm-b'), ptr('cm-r')];
  await phoneAfterAck(dir, ['cm-a', 'cm-b', 'cm-c'].map(ptr), [], held, 1, 1000);
  const removed = await phoneAfterAck(dir, group, [], held, 1, 2000);
  const kept = removed!.list;
  t.deepEqual(ids(kept), ['cm-a', 'cm-c', 'cm-b', 'cm-r'], 'removed without retired: kept');
  t.is(await phoneAfterAck(dir, group, [], kept, removed!.version, 3000), undefined, 'a restart with nothing changed: nothing given');
  const retired = await phoneAfterAck(dir, group, ['cm-c'], kept, removed!.version, 4000);
  t.truthy(retired, 'retired added: the floor rose above what the phone holds');
  t.deepEqual(ids(retired!.list), ['cm-a', 'cm-b', 'cm-r']);
});

test('retired cannot erase a remote site: only the ids named are owned; a list without owns (an operator\'s) is signed unchanged', (t) => {
  const s = signRetired(sign, ['cm-c']);
  const body = (e: ReturnType<typeof sign>) => JSON.parse(Buffer.from(e.body, 'base64').toString('utf8')) as PointersBody;
  const withOwns = body(s({ version: 5, reason: 'failover', list: [ptr('cm-a')], owns: ['cm-a', 'cm-b'] }));
  t.deepEqual(withOwns.owns, ['cm-a', 'cm-b', 'cm-c']);
  t.deepEqual(ids(mergeGroupList([ptr('cm-b'), ptr('cm-r'), ptr('cm-c'), ptr('cm-a')], withOwns.list, withOwns.owns)), ['cm-a', 'cm-r'], 'cm-b and cm-c owned, cm-r foreign: kept in its slot');
  t.is(body(s({ version: 5, reason: 'admin', list: [ptr('cm-a')] })).owns, undefined);
  t.deepEqual(body(s({ version: 5, reason: 'failover', list: [ptr('cm-a')], owns: ['cm-a', 'cm-c'] })).owns, ['cm-a', 'cm-c'], 'no id twice');
  t.is(signRetired(sign, []), sign, 'nothing retired: the signer itself');
});

test('a changed group\'s floor goes above every version this member issued before (its lease), so a phone holding one is given the new group (the group simulation, seed 16)', async (t) => {
  const dir = tempDir(t);
  const { groupFloor } = await import('../../../src/callmanager/group-floor.js');
  const o = { dir, cmId: 'cm-a', pointersVersion: 1 };
  t.is((await groupFloor({ ...o, group: ['cm-a', 'cm-b', 'cm-c'].map(ptr), now: 1000 })).floor, 1);
  // Before the restart this member issued lists up to 60,496 (its clock ran ahead); now it reads 53,169.
  const changed = await groupFloor({ ...o, group: ['cm-a', 'cm-c'].map(ptr), retired: ['cm-b'], now: 53_169, issued: 60_496 });
  t.true(changed.changed);
  t.is(changed.floor, 60_497);
  const same = await groupFloor({ ...o, group: ['cm-a', 'cm-c'].map(ptr), retired: ['cm-b'], now: 54_000, issued: 70_000 });
  t.deepEqual(same, { floor: 60_497, changed: false }, 'no change: the stored floor, no flash write');
});
