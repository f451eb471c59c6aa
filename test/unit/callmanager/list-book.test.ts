import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Pointer, PointersBody } from '../../../src/protocol/types.js';
import { ListBook, type PointersSigner } from '../../../src/callmanager/list-book.js';

const group: Pointer[] = ['cm-a', 'cm-b', 'cm-c', 'cm-d'].map((id, i) => ({
  id,
  broker: 'mqtt://127.0.0.1:1883',
  services: `http://127.0.0.1:${8081 + i}/services`,
}));

const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);

function countingSigner(): { sign: PointersSigner; bodies: PointersBody[] } {
  const bodies: PointersBody[] = [];
  return {
    bodies,
    sign: (body) => {
      bodies.push(structuredClone(body));
      return signEnvelope(body, priv, 'ops-1');
    },
  };
}

function make(clock = new FakeClock(1_000_000), baseVersion = 1) {
  const s = countingSigner();
  return { book: new ListBook({ group, baseVersion, clock, sign: s.sign }), clock, ...s };
}

const ids = (l: readonly Pointer[]): string[] => l.map((p) => p.id);

test('all online: group order and the configured version', (t) => {
  const { book } = make(undefined, 7);
  const l = book.forPhone('p1');
  t.deepEqual(ids(l.list), ['cm-a', 'cm-b', 'cm-c', 'cm-d']);
  t.is(l.version, 7);
  t.is(l.reason, 'failover');
});

test('offline peers move to the end, relative order kept', (t) => {
  const { book } = make();
  t.true(book.setOffline(['cm-c', 'cm-a']));
  t.deepEqual(ids(book.forPhone('p1').list), ['cm-b', 'cm-d', 'cm-a', 'cm-c']);
  t.true(book.setOffline(['cm-b']));
  t.deepEqual(ids(book.forPhone('p1').list), ['cm-a', 'cm-c', 'cm-d', 'cm-b']);
  t.true(book.setOffline([]));
  t.deepEqual(ids(book.forPhone('p1').list), ['cm-a', 'cm-b', 'cm-c', 'cm-d']);
});

test('versions strictly increase on every change, are at least the clock, and not on a no-op', (t) => {
  const { book, clock } = make(new FakeClock(5000), 1);
  const seen = [book.version];
  t.true(book.setOffline(['cm-b']));
  seen.push(book.version);
  t.is(book.version, 5000, 'max(previous + 1, now)');
  t.false(book.setOffline(['cm-b']), 'same set is no change');
  t.is(book.version, 5000);
  // same millisecond: previous + 1 wins
  t.true(book.setOffline([]));
  seen.push(book.version);
  t.true(book.setOffline(['cm-c']));
  seen.push(book.version);
  clock.advance(10_000);
  t.true(book.setOffline(['cm-c', 'cm-d']));
  seen.push(book.version);
  t.deepEqual(seen, [1, 5000, 5001, 5002, 15000]);
});

test('one signature per distinct list, reused for every phone and ack', (t) => {
  const { book, bodies } = make();
  const a = book.forPhone('p1');
  const b = book.forPhone('p2');
  book.forPhone('p1');
  book.groupList();
  t.is(bodies.length, 1);
  t.is(a, b, 'same object shared');
  book.setOffline(['cm-a']);
  t.is(bodies.length, 1, 'signing is lazy');
  for (let i = 0; i < 100; i++) book.forPhone(`p${i}`);
  t.is(bodies.length, 2);
  t.deepEqual(bodies[1], { version: book.version, reason: 'failover', list: book.groupList().list, owns: ids(group) });
});

test('the envelope verifies and its body matches the list', (t) => {
  const { book } = make();
  book.setOffline(['cm-b']);
  const l = book.forPhone('p1');
  const body = JSON.parse(openEnvelope(l.envelope, trusted).toString('utf8')) as PointersBody;
  t.deepEqual(body, { version: l.version, reason: 'failover', list: [group[0], group[2], group[3], group[1]], owns: ids(group) });
  t.is(l.envelopeJson, JSON.stringify(l.envelope));
  t.is(l.ackTailShort, `,"pointersVersion":${l.version}}`);
  t.is(l.ackTailFull, `,"pointers":${l.envelopeJson},"pointersVersion":${l.version}}`);
});

test('setPhoneList gives one phone its own, higher version; others keep the group list', (t) => {
  const { book, bodies } = make(new FakeClock(100), 50);
  const reorder = [group[1]!, group[0]!, group[2]!, group[3]!];
  const own = book.setPhoneList('p1', reorder, 'rebalance');
  t.true(own.version > 50);
  t.is(own.reason, 'rebalance');
  t.deepEqual(ids(own.list), ['cm-b', 'cm-a', 'cm-c', 'cm-d']);
  t.is(book.forPhone('p1'), own);
  t.true(book.hasOverride('p1'));
  t.is(book.forPhone('p2').version, 50);
  t.is(bodies.length, 2);
  // a second override is higher still
  const again = book.setPhoneList('p1', group, 'rebalance');
  t.true(again.version > own.version);
});

test('an override keeps its order but gets offline peers last and a new version when the set changes', (t) => {
  const { book } = make(new FakeClock(100), 50);
  const own = book.setPhoneList('p1', [group[1]!, group[0]!, group[2]!, group[3]!], 'rebalance');
  book.setOffline(['cm-b']);
  const after = book.forPhone('p1');
  t.true(after.version > own.version);
  t.true(book.version > own.version, 'group list also above the override');
  t.deepEqual(ids(after.list), ['cm-a', 'cm-c', 'cm-d', 'cm-b']);
  t.is(after.reason, 'rebalance');
  book.clearPhoneList('p1');
  t.false(book.hasOverride('p1'));
  t.is(book.forPhone('p1'), book.groupList());
});
