import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { AckPayload, Pointer, PointersBody } from '../../../src/protocol/types.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { parseKeepalive, Responder, shouldPush, type PushInput } from '../../../src/callmanager/responder.js';

const group: Pointer[] = ['cm-a', 'cm-b'].map((id, i) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1:${8081 + i}/services` }));
const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);

function setup(cmId = 'cm-b') {
  const clock = new FakeClock(10_000);
  let signs = 0;
  const book = new ListBook({
    group,
    baseVersion: 3,
    clock,
    sign: (b) => {
      signs++;
      return signEnvelope(b, priv, 'ops-1');
    },
  });
  const table = new PhoneTable(1000);
  const r = new Responder({ cmId, book, table, clock });
  return { clock, book, table, r, signs: () => signs };
}

const ka = (o: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 0, busy: false, ...o }));

test('ack with the signed list when the phone lacks the version; it parses and verifies', (t) => {
  const { r } = setup();
  const res = r.handle(ka({ seq: 42, pointersVersion: 2 }));
  if (typeof res === 'string') return t.fail(res);
  const ack = JSON.parse(res.ack) as AckPayload;
  t.deepEqual(Object.keys(ack), ['cm', 'seq', 'pointers', 'pointersVersion']);
  t.is(ack.cm, 'cm-b');
  t.is(ack.seq, 42);
  t.is(ack.pointersVersion, 3);
  const body = JSON.parse(openEnvelope(ack.pointers!, trusted).toString('utf8')) as PointersBody;
  t.deepEqual(body, { version: 3, reason: 'failover', list: group, owns: ['cm-a', 'cm-b'] });
  t.is(res.phone, 'p1');
  t.is(res.push, undefined);
});

test('ack with pointersVersion alone when the phone holds it (or newer)', (t) => {
  const { r } = setup();
  for (const held of [3, 99]) {
    const res = r.handle(ka({ seq: 7, pointersVersion: held }));
    if (typeof res === 'string') return t.fail(res);
    t.deepEqual(JSON.parse(res.ack), { cm: 'cm-b', seq: 7, pointersVersion: 3 });
  }
});

test('cm id with characters JSON must escape still gives valid JSON', (t) => {
  const { r } = setup('cm"x\\y');
  const res = r.handle(ka({ pointersVersion: 3 }));
  if (typeof res === 'string') return t.fail(res);
  t.is((JSON.parse(res.ack) as AckPayload).cm, 'cm"x\\y');
});

test('signs once for many keep-alives', (t) => {
  const { r, signs } = setup();
  for (let i = 0; i < 500; i++) r.handle(ka({ phone: `p${i}`, seq: i }));
  t.is(signs(), 1);
  t.is(r.keepalives, 500);
});

test('invalid keep-alives are counted and refused with a reason, never thrown', (t) => {
  const { r, table, clock } = setup();
  const bad: Buffer[] = [
    Buffer.from('not json'),
    Buffer.from('[1,2]'),
    Buffer.from('null'),
    ka({ phone: 'a/b' }),
    ka({ phone: '' }),
    ka({ seq: -1 }),
    ka({ seq: 1.5 }),
    ka({ pointersVersion: 'x' }),
    ka({ busy: 'no' }),
    ka({ probe: 1 }),
    ka({ prev: 5 }),
    ka({ intervalMs: 0 }),
    Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 0, busy: false, pad: 'x'.repeat(2000) })),
    Buffer.from([0xff, 0xfe, 0x00]),
  ];
  for (const b of bad) t.is(typeof r.handle(b), 'string', b.toString('utf8').slice(0, 40));
  t.is(r.invalid, bad.length);
  t.is(r.keepalives, 0);
  t.is(table.count(clock.elapsed()), 0);
});

test('parseKeepalive keeps the extension fields', (t) => {
  const v = parseKeepalive(ka({ probe: true, prev: 'cm-a', intervalMs: 500 }));
  t.like(v, { phone: 'p1', probe: true, prev: 'cm-a', intervalMs: 500 });
  t.like(parseKeepalive(ka({ prev: null })), { prev: null });
});

test('probes are answered but do not home the phone', (t) => {
  const { r, table, clock } = setup();
  const res = r.handle(ka({ probe: true }));
  t.not(typeof res, 'string');
  t.is(table.count(clock.elapsed()), 0);
  r.handle(ka({}));
  t.is(table.count(clock.elapsed()), 1);
});

const rows: Array<[string, PushInput, boolean]> = [
  ['new arrival, peer down, old version', { probe: false, newArrival: true, peersOffline: 1, phoneVersion: 1, listVersion: 5 }, true],
  ['probe', { probe: true, newArrival: true, peersOffline: 1, phoneVersion: 1, listVersion: 5 }, false],
  ['already homed', { probe: false, newArrival: false, peersOffline: 1, phoneVersion: 1, listVersion: 5 }, false],
  ['no peer down', { probe: false, newArrival: true, peersOffline: 0, phoneVersion: 1, listVersion: 5 }, false],
  ['phone holds the version', { probe: false, newArrival: true, peersOffline: 2, phoneVersion: 5, listVersion: 5 }, false],
  ['phone holds newer', { probe: false, newArrival: true, peersOffline: 2, phoneVersion: 9, listVersion: 5 }, false],
];
for (const [name, input, want] of rows) {
  test(`push decision: ${name} → ${String(want)}`, (t) => t.is(shouldPush(input), want));
}

test('a phone arriving from a dead peer gets a failover push once; counted by reason', (t) => {
  const { r, book } = setup();
  book.setOffline(['cm-a']);
  const first = r.handle(ka({ prev: 'cm-a', pointersVersion: 3 }));
  if (typeof first === 'string') return t.fail(first);
  t.truthy(first.push);
  t.is(first.push!.reason, 'failover');
  t.deepEqual(first.push!.list.map((p) => p.id), ['cm-b', 'cm-a']);
  t.is(r.pushes.get('failover'), 1);
  const second = r.handle(ka({ prev: 'cm-a', seq: 2, pointersVersion: 3 }));
  if (typeof second === 'string') return t.fail(second);
  t.is(second.push, undefined, 'homed now: ack only');
  t.is(r.pushes.get('failover'), 1);
});

test('per-phone topic: the topic id is trusted; a payload naming another phone is refused (invalid, no ack, no table entry)', (t) => {
  const { r, table, clock } = setup();
  const ok = r.handle(ka({ phone: 'p1', seq: 3 }), 'p1');
  if (typeof ok === 'string') return t.fail(ok);
  t.is(ok.phone, 'p1');
  t.is((JSON.parse(ok.ack) as AckPayload).seq, 3);

  const forged = r.handle(ka({ phone: 'p2', seq: 4 }), 'p1');
  t.is(typeof forged, 'string');
  t.regex(forged as string, /keep-alive for phone "p2" on the topic of phone "p1"/);
  t.is(r.invalid, 1);
  t.is(r.keepalives, 1);
  t.is(table.count(clock.elapsed()), 1, 'p2 never entered the table');

  // A topic level that is no valid id cannot match a valid payload id either.
  t.is(typeof r.handle(ka({ phone: 'p1' }), 'p1+x'), 'string');
  t.is(r.invalid, 2);
  // The shared topic (no topic id) keeps the contract's behaviour: the payload names the phone.
  const shared = r.handle(ka({ phone: 'p2', seq: 5 }));
  if (typeof shared === 'string') return t.fail(shared);
  t.is(shared.phone, 'p2');
  t.is(table.count(clock.elapsed()), 2);
});

test('a phone arriving from a retired member is given the group list even holding our version or more: that member signed what it holds (issue 16, removal)', (t) => {
  const { book, table, clock } = setup();
  const r = new Responder({ cmId: 'cm-b', book, table, clock, retired: new Set(['cm-x']) });
  const version = (res: ReturnType<Responder['handle']>): number | undefined => {
    if (typeof res === 'string') throw new Error(res);
    const ack = JSON.parse(res.ack) as AckPayload;
    return ack.pointers === undefined ? undefined : (JSON.parse(Buffer.from(ack.pointers.body, 'base64').toString('utf8')) as PointersBody).version;
  };
  // At our list's version (3, the floor): a full ack above it.
  const atOurs = version(r.handle(ka({ phone: 'p1', prev: 'cm-x', pointersVersion: 3 })));
  t.true(atOurs !== undefined && atOurs > 3, String(atOurs));
  // Above it (the retired member's clock ran ahead): a list above what it holds.
  const ahead = version(r.handle(ka({ phone: 'p2', prev: 'cm-x', pointersVersion: 9000 })));
  t.true(ahead !== undefined && ahead > 9000, String(ahead));
  // Taken: its next keep-alive reports it and gets a short ack.
  t.is(version(r.handle(ka({ phone: 'p2', seq: 2, prev: 'cm-x', pointersVersion: ahead }))), undefined);
  // Below the floor: the group list, as for anyone.
  t.is(version(r.handle(ka({ phone: 'p3', prev: 'cm-x', pointersVersion: 1 }))), book.forPhone('p3').version);
  // From a member still in the group, holding our version: a short ack, as before.
  t.is(version(r.handle(ka({ phone: 'p4', prev: 'cm-a', pointersVersion: 3 }))), undefined);
});
