import test from 'ava';
import { FakeClock, seededRandom } from '../../../src/lib/clock.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { decodeAck, openPointers } from '../../../src/protocol/codec.js';
import { MAX_POINTERS, validatePointerList } from '../../../src/protocol/pointers.js';
import type { Pointer, PointersBody } from '../../../src/protocol/types.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';
import { initialState, next, type MachineConfig } from '../../../src/agent/machine.js';

/** Issue #10, "Lists": what a call manager's lists may do to a phone's list. */

const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);
const ptr = (id: string): Pointer => ({ id, broker: `mqtt://${id}.example:1883`, services: `http://${id}.example/services` });
const ids = (l: readonly Pointer[]): string[] => l.map((p) => p.id);
const cfg: MachineConfig = { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 200, holdMs: 30_000, backoffBaseMs: 1000, backoffMaxMs: 60_000 };

function book(group: Pointer[], clock = new FakeClock(1_000_000), lazyRestore = false) {
  let signs = 0;
  const b = new ListBook({
    group,
    baseVersion: 1,
    clock,
    lazyRestore,
    sign: (body: PointersBody) => {
      signs++;
      return signEnvelope(body, priv, 'ops-1');
    },
  });
  return { b, clock, signs: () => signs };
}

test('acks erase pointers outside the group: a phone [cm-a, cm-b, cm-r] keeps cm-r after the group ack, and fails over to it', (t) => {
  const { b, clock } = book([ptr('cm-a'), ptr('cm-b')]);
  b.setOffline(['cm-b']); // any change: the phone (at version 1) lacks the list
  const r = new Responder({ cmId: 'cm-a', book: b, table: new PhoneTable(1000), clock });
  const res = r.handle(Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 1, busy: false })));
  if (typeof res === 'string') return t.fail(res);
  const ack = decodeAck(Buffer.from(res.ack));
  const body = openPointers(ack.pointers!, trusted, { phoneId: 'p1', heldVersion: 1, now: clock.now() });
  t.deepEqual(body.owns, ['cm-a', 'cm-b']);
  // The phone, homed on cm-a, takes the list as the agent does.
  let s = initialState(cfg, [ptr('cm-a'), ptr('cm-b'), ptr('cm-r')], 1);
  const random = seededRandom(3);
  let now = 0;
  const sentTo = new Set<string>();
  let lastSeq = 0;
  const step = (input: Parameters<typeof next>[1]): void => {
    const r = next(s, input, { now, random });
    s = r.state;
    for (const f of r.effects) if (f.type === 'send') (sentTo.add(f.to), (lastSeq = f.seq));
  };
  step({ type: 'start' });
  for (const p of s.list) step({ type: 'broker-up', broker: p.broker });
  step({ type: 'ack', cm: 'cm-a', seq: lastSeq });
  t.is(s.home, 'cm-a');
  sentTo.clear();
  step({ type: 'list', version: body.version, reason: body.reason, list: body.list, via: 'ack', owns: body.owns });
  t.deepEqual(ids(s.list), ['cm-a', 'cm-b', 'cm-r']);
  // Both group members dead: the phone still has cm-r to go to.
  step({ type: 'cm-state', cm: 'cm-a', online: false });
  step({ type: 'cm-state', cm: 'cm-b', online: false });
  t.is(s.move?.target, 'cm-r', 'the phone goes to cm-r');
});

test('groups over 16 members: every list (group list and override) is one a phone accepts; the owns name all', (t) => {
  const group = Array.from({ length: 40 }, (_, i) => ptr(`cm-${String(i).padStart(2, '0')}`));
  const { b, clock } = book(group);
  const check = (l: { list: readonly Pointer[]; envelope: Parameters<typeof openPointers>[0] }, held: number): PointersBody => {
    t.true(l.list.length <= MAX_POINTERS);
    t.deepEqual(validatePointerList(l.list), []);
    const body = openPointers(l.envelope, trusted, { phoneId: 'p1', heldVersion: held, now: clock.now() });
    t.is(body.owns?.length, 40);
    return body;
  };
  check(b.groupList(), 0);
  b.setOffline(['cm-00', 'cm-03']);
  const g = check(b.groupList(), 1);
  t.false(ids(g.list).includes('cm-00'), 'offline members are the first to go');
  t.is(g.list[0]!.id, 'cm-01');
  const own = b.setPhoneList('p1', [group[30]!, ...group.filter((p) => p.id !== 'cm-30')], 'rebalance');
  const o = check(own, 1);
  t.is(o.list[0]!.id, 'cm-30', 'the rebalance target stays first');
});

test('a peer change re-arms overrides with ONE new version, not one per override (versions stay with the clock)', (t) => {
  const group = ['cm-a', 'cm-b', 'cm-c'].map(ptr);
  const { b, clock } = book(group, new FakeClock(1_000_000), true);
  for (let i = 0; i < 100; i++) b.setPhoneList(`p${i}`, [group[1]!, group[0]!, group[2]!], 'rebalance');
  clock.advance(1000);
  const before = Math.floor(clock.now());
  b.setOffline(['cm-c']);
  t.is(b.version, before, 'the change takes the clock, not clock + 100');
  for (let i = 0; i < 100; i++) t.is(b.forPhone(`p${i}`).version, b.version);
  t.deepEqual(ids(b.forPhone('p7').list), ['cm-b', 'cm-a', 'cm-c']);
  b.clearPhoneList('p7');
  t.is(b.overrides, 99);
});
