/**
 * Issue 18: the lists a peer's failure needs are signed ahead, while idle
 * (ListBook's failover plans, presigner.ts), and every security property of a
 * list signed at the change is kept: the list names its phone and expires, keeps
 * the group in `owns`, its version is above what phones hold and never beyond
 * wall + 24 h, and a plan is used only for exactly the change it was made for.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { openPointers } from '../../../src/protocol/codec.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Pointer, PointersBody } from '../../../src/protocol/types.js';
import { LIST_LIFETIME_MS, ListBook } from '../../../src/callmanager/list-book.js';
import { VersionClock, MAX_AHEAD_MS } from '../../../src/callmanager/version-clock.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';
import { Presigner, REPLAN_QUIET_MS, SLICE_MS } from '../../../src/callmanager/presigner.js';

const group: Pointer[] = ['cm-a', 'cm-b', 'cm-c'].map((id, i) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1:${8081 + i}/services` }));
const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);
const T0 = 1_764_000_000_000;

function make(o: { lazyRestore?: boolean; start?: number } = {}) {
  const clock = new FakeClock(T0);
  let signs = 0;
  const versions = new VersionClock({ clock, start: o.start ?? 1, slot: 1, slots: 3 });
  const book = new ListBook({ group, baseVersion: 1, clock, bind: true, lazyRestore: o.lazyRestore ?? true, versions, sign: (b) => (signs++, signEnvelope(b, priv, 'ops-1')) });
  return { clock, book, versions, signs: () => signs };
}
const body = (json: string): PointersBody => JSON.parse(openEnvelope(JSON.parse(json) as Parameters<typeof openEnvelope>[0], trusted).toString('utf8')) as PointersBody;
const ids = (b: PointersBody): string[] => b.list.map((p) => p.id);

test('presigned-failover-list-costs-no-signature-at-the-change: the planned list is handed out as signed ahead', (t) => {
  const { book, signs } = make();
  t.true(book.planFailover());
  for (let i = 0; i < 100; i++) t.true(book.presign('cm-a', `p${i}`));
  t.is(book.planned, 100);
  const before = signs();
  t.true(book.setOffline(['cm-a']));
  t.is(book.plansAdopted, 1);
  const json = book.forPhone('p7').envelopeJson;
  t.is(signs(), before, 'nothing signed at the change nor when the list is handed out');
  const b = body(json);
  t.deepEqual(ids(b), ['cm-b', 'cm-c', 'cm-a'], 'the failed peer last');
  t.is(b.phone, 'p7', 'bound to its phone');
  t.is(b.reason, 'failover');
  t.deepEqual(b.owns, ['cm-a', 'cm-b', 'cm-c'], 'the group in owns: remote pointers kept');
  t.is(b.expires, T0 + LIST_LIFETIME_MS);
  t.is(b.version, book.version);
  t.notThrows(() => openPointers(JSON.parse(json), trusted, { phoneId: 'p7', heldVersion: 1, now: T0 }));
  // A phone nobody planned for is signed at its arrival, as before.
  void book.forPhone('stranger').envelopeJson;
  t.is(signs(), before + 1);
});

test('presigned-list-is-refused-by-another-phone: each plan signature names its phone', (t) => {
  const { book } = make();
  book.planFailover();
  book.presign('cm-a', 'p1');
  book.setOffline(['cm-a']);
  const env = JSON.parse(book.forPhone('p1').envelopeJson);
  t.throws(() => openPointers(env, trusted, { phoneId: 'p2', heldVersion: 0, now: T0 }), { message: /p1|phone/ });
});

test('plan-version-is-above-everything-observed: a version observed above the plans makes them stale and the change is issued afresh', (t) => {
  const { book, signs } = make();
  book.planFailover();
  const planned = book.publishedVersion;
  book.presign('cm-a', 'p1');
  t.true(book.plansCurrent);
  book.observe(book.lastVersion + 10, 'peer');
  t.false(book.plansCurrent, 'a peer issued above the plans: its phones may hold more');
  t.is(book.planned, 0);
  const n = signs();
  book.setOffline(['cm-a']);
  t.is(book.plansAdopted, 0);
  t.true(book.version > book.lastVersion - 1 && book.version > planned);
  void book.forPhone('p1').envelopeJson;
  t.is(signs(), n + 1, 'signed at the change, as without plans');
});

test('plan-used-only-for-the-change-planned: another peer going offline, or two at once, is issued afresh', (t) => {
  const { book } = make();
  book.planFailover();
  book.presign('cm-a', 'p1');
  book.setOffline(['cm-a', 'cm-c']);
  t.is(book.plansAdopted, 0, 'two peers at once: not the planned change');
  const other = make();
  other.book.planFailover();
  other.book.presign('cm-a', 'p1');
  other.book.setOffline(['cm-c']);
  t.is(other.book.plansAdopted, 0, 'no plan for cm-c');
  t.deepEqual(ids(body(other.book.forPhone('p1').envelopeJson)), ['cm-a', 'cm-b', 'cm-c']);
});

test('plan-stale-after-an-issue: an override, a re-issue above, or a change since the plan drops it', (t) => {
  for (const move of [(b: ListBook) => b.setPhoneList('p9', group, 'rebalance'), (b: ListBook) => b.above('p9', b.lastVersion + 3), (b: ListBook) => b.setOffline(['cm-c'])]) {
    const { book } = make();
    book.planFailover();
    book.presign('cm-a', 'p1');
    move(book);
    t.false(book.plansCurrent);
    t.false(book.presign('cm-a', 'p2'), 'no signing against a stale plan');
  }
});

test('presign-skips-phones-with-their-own-list: an override is re-arranged at the change, not planned', (t) => {
  const { book } = make();
  book.setPhoneList('p1', [group[2]!, group[0]!, group[1]!], 'rebalance');
  book.planFailover();
  t.false(book.presign('cm-a', 'p1'));
  t.false(book.presign('cm-b-unknown', 'p2'), 'not a group member');
  t.true(book.presign('cm-c', 'p2'));
});

test('published-version-hides-the-plan: peers do not see a version no list carries, so their plans stay current', (t) => {
  const a = make();
  const before = a.book.lastVersion;
  a.book.planFailover();
  t.true(a.book.lastVersion > before);
  t.is(a.book.publishedVersion, before, 'the load carries the version before the plan');
  a.book.presign('cm-a', 'p1');
  a.book.setOffline(['cm-a']);
  t.is(a.book.publishedVersion, a.book.version, 'once adopted the version is on lists and published');
});

test('plan-versions-bounded: a plan is never issued beyond wall + 24 h, and none is made at the ceiling', (t) => {
  const clock = new FakeClock(T0);
  const versions = new VersionClock({ clock, start: T0 + MAX_AHEAD_MS });
  const book = new ListBook({ group, baseVersion: 1, clock, bind: true, versions, sign: (b) => signEnvelope(b, priv, 'ops-1') });
  t.false(book.planFailover(), 'at the ceiling no version above the last can be issued: no plan');
  t.false(book.presign('cm-a', 'p1'));
  const ok = make();
  ok.book.planFailover();
  ok.book.presign('cm-a', 'p1');
  ok.book.setOffline(['cm-a']);
  t.true(body(ok.book.forPhone('p1').envelopeJson).version <= T0 + MAX_AHEAD_MS);
});

test('presigned-list-renewed-like-any-bound-list: an old plan signature is re-signed, same version, with half its lifetime left', (t) => {
  const { book, clock, signs } = make();
  book.planFailover();
  book.presign('cm-a', 'p1');
  t.false(book.presign('cm-a', 'p1'), 'fresh: not signed again');
  clock.advance(LIST_LIFETIME_MS / 2 + 1);
  const n = signs();
  t.true(book.presign('cm-a', 'p1'), 'renewed ahead');
  t.is(signs(), n + 1);
  clock.advance(LIST_LIFETIME_MS / 2 + 1);
  book.setOffline(['cm-a']);
  const b = body(book.forPhone('p1').envelopeJson);
  t.true(b.expires! - clock.now() >= LIST_LIFETIME_MS / 2, 'handed out with at least half its lifetime left (re-signed at hand-out)');
});

test('failover-arrival-takes-the-planned-list: the responder pushes the presigned envelope to a phone arriving from the failed peer; one holding a higher version gets a list above it', (t) => {
  const { book, clock, signs } = make();
  const table = new PhoneTable(1000);
  const r = new Responder({ cmId: 'cm-b', book, table, clock });
  book.planFailover();
  book.presign('cm-a', 'p1');
  book.presign('cm-a', 'p2');
  const planned = book.lastVersion;
  book.setOffline(['cm-a']);
  const n = signs();
  const ka = (phone: string, v: number) => Buffer.from(JSON.stringify({ phone, seq: 1, pointersVersion: v, busy: false, prev: 'cm-a', intervalMs: 1000 }));
  const res = r.handle(ka('p1', 1));
  if (typeof res === 'string') return t.fail(res);
  t.truthy(res.push);
  t.is(signs(), n, 'planned: no signature');
  t.is(body(res.push!.envelopeJson).version, planned);
  const high = r.handle(ka('p2', planned + 5));
  if (typeof high === 'string') return t.fail(high);
  t.true(body(high.ack.includes('"pointers":') ? JSON.stringify(JSON.parse(high.ack).pointers) : high.push!.envelopeJson).version > planned + 5, 'above what it holds');
});

test('presigner-signs-phones-of-live-peers-from-their-statuses, in bounded slices, after the state was quiet', (t) => {
  const { book, clock } = make();
  const p = new Presigner({ book, self: 'cm-b', peers: ['cm-a', 'cm-c'], clock, sliceSignatures: 10 });
  for (let i = 0; i < 25; i++) p.onStatus(`pa${i}`, Buffer.from(JSON.stringify({ online: true, home: 'cm-a', state: 'homed' })));
  p.onStatus('pc', Buffer.from(JSON.stringify({ online: true, home: 'cm-c' })));
  p.onStatus('pb', Buffer.from(JSON.stringify({ online: true, home: 'cm-b' })));
  p.onStatus('gone', Buffer.from(JSON.stringify({ online: true, home: 'cm-a' })));
  p.onStatus('gone', Buffer.from(JSON.stringify({ online: false })));
  t.is(p.tracked, 27);
  t.false(p.slice(), 'no plan before the state has been quiet');
  clock.advance(REPLAN_QUIET_MS);
  t.true(p.slice());
  t.is(p.signed, 10, 'one slice, its budget');
  while (p.slice()) clock.advance(SLICE_MS);
  t.is(p.signed, 26, 'every phone of a live peer; not our own (lazy restore: they keep their list), not the one gone');
  t.is(book.planned, 26);
  book.setOffline(['cm-a']);
  t.is(book.plansAdopted, 1);
});

test('presigner-bounded: statuses beyond the tracking bound are ignored', (t) => {
  const { book, clock } = make();
  const p = new Presigner({ book, self: 'cm-b', peers: ['cm-a'], clock, trackMax: 5 });
  for (let i = 0; i < 9; i++) p.onStatus(`p${i}`, Buffer.from('{"online":true,"home":"cm-a"}'));
  t.is(p.tracked, 5);
  t.is(p.ignored, 4);
});

test('presigner-own-phones-without-lazy-restore: a classic group plans its own phones for each peer too', (t) => {
  const { book, clock } = make({ lazyRestore: false });
  const p = new Presigner({ book, self: 'cm-b', peers: ['cm-a', 'cm-c'], clock });
  p.onStatus('pb', Buffer.from('{"online":true,"home":"cm-b"}'));
  clock.advance(REPLAN_QUIET_MS);
  p.slice();
  clock.advance(REPLAN_QUIET_MS);
  p.slice();
  t.is(p.signed, 2, 'one per peer');
});
