/**
 * Issue #10, "Versions are each host's wall clock": call managers whose clocks
 * differ by minutes. Each test is named after the rule it proves; clocks are
 * injected (FakeClock), one per call manager.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { AckPayload, Pointer, PointersBody } from '../../../src/protocol/types.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';

const group: Pointer[] = ['cm-a', 'cm-b', 'cm-c'].map((id, i) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1:${8081 + i}/services` }));
const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);
const T0 = 1_764_000_000_000;
const FIVE_MIN = 5 * 60_000;

function cm(cmId: string, clock: FakeClock, lazyRestore = true) {
  const book = new ListBook({ group, baseVersion: 1, clock, sign: (b) => signEnvelope(b, priv, 'ops-1'), lazyRestore });
  const r = new Responder({ cmId, book, table: new PhoneTable(1000), clock });
  return { book, r };
}

const ka = (o: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 0, busy: false, ...o }));

test('version-above-what-the-phone-holds: a CM 5 min behind issues a rebalance list the phone accepts', (t) => {
  const ahead = cm('cm-b', new FakeClock(T0 + FIVE_MIN));
  const behind = cm('cm-a', new FakeClock(T0));
  // The phone took a rebalance list from the CM whose clock is ahead, then moved to the one behind.
  const held = ahead.book.setPhoneList('p1', [group[0]!, group[1]!, group[2]!], 'rebalance').version;
  t.not(typeof behind.r.handle(ka({ pointersVersion: held })), 'string');
  const next = behind.book.setPhoneList('p1', [group[2]!, group[0]!, group[1]!], 'rebalance');
  t.true(next.version > held, `rebalance version ${next.version} above the held ${held} (was refused as a replay, re-sent while the skew lasts)`);
});

test('demotion-reaches-arrivals: a phone arriving from a failed peer whose clock ran ahead gets the demoted list', (t) => {
  const peerClock = new FakeClock(T0 + FIVE_MIN);
  const peer = cm('cm-c', peerClock);
  const here = cm('cm-a', new FakeClock(T0));
  const held = peer.book.setPhoneList('p1', [group[2]!, group[0]!, group[1]!], 'rebalance').version;
  here.book.setOffline(['cm-c']);
  const res = here.r.handle(ka({ pointersVersion: held, prev: 'cm-c' }));
  if (typeof res === 'string') return t.fail(res);
  const ack = JSON.parse(res.ack) as AckPayload;
  t.truthy(ack.pointers, 'the ack carries the list (was: pointersVersion alone, the phone kept the dead peer first)');
  t.truthy(res.push, 'and it is pushed (QoS 1)');
  const body = JSON.parse(openEnvelope(ack.pointers!, trusted).toString('utf8')) as PointersBody;
  t.true(body.version > held);
  t.is(body.list.at(-1)?.id, 'cm-c', 'the failed peer last');
  // The next keep-alive, holding it, gets the short ack.
  const again = here.r.handle(ka({ seq: 2, pointersVersion: body.version }));
  if (typeof again === 'string') return t.fail(again);
  t.is((JSON.parse(again.ack) as AckPayload).pointers, undefined);
});

test('version-from-peers-load: a CM observing a peer ahead issues above it before any phone reports it', async (t) => {
  const ahead = cm('cm-b', new FakeClock(T0 + FIVE_MIN));
  const behind = cm('cm-a', new FakeClock(T0));
  ahead.book.setOffline(['cm-c']);
  t.true(behind.book.observe(ahead.book.lastVersion));
  behind.book.setOffline(['cm-c']);
  t.true(behind.book.version > ahead.book.version);
});

test('observation-is-bounded: a version more than a day ahead is ignored and does not freeze later versions', (t) => {
  const clock = new FakeClock(T0);
  const { book, r } = cm('cm-a', clock);
  r.handle(ka({ pointersVersion: Number.MAX_SAFE_INTEGER - 1 }));
  t.is(r.implausible, 1);
  book.setOffline(['cm-b']);
  t.true(book.version < T0 + 60_000, 'still near the clock');
});
