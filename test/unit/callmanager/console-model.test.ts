import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { cleanText, ConsoleModel, SUMMARY_SLOT_MS, SUMMARY_WINDOW_MS, EVENTS_PER_PHONE, PHONES_MAX, REHOME_BUCKETS_MAX, REHOME_BURST, REHOME_REFILL_MS, REHOMES_MAX, REHOMES_PER_PHONE, TEXT_MAX } from '../../../src/callmanager/console-model.js';

const GROUP = [
  { id: 'cm-a', capacity: 100 },
  { id: 'cm-b', capacity: 200 },
  { id: 'cm-c', capacity: 50 },
];

function model(): { m: ConsoleModel; clock: FakeClock } {
  const clock = new FakeClock(1_700_000_000_000);
  return { m: new ConsoleModel({ cmId: 'cm-b', group: GROUP, clock }), clock };
}

test('members in group order: self measured, peers from their loads and the offline set', (t) => {
  const { m, clock } = model();
  t.deepEqual(
    m.group().members.map((x) => [x.id, x.online, x.self, x.phones, x.load]),
    [
      ['cm-a', true, false, null, null],
      ['cm-b', false, true, null, null],
      ['cm-c', true, false, null, null],
    ],
    'before anything: peers count online (as PeerTracker does), loads unknown, self not yet connected (so counting no phones)',
  );
  m.measureSelf({ connected: true, phones: 50, servicesRps: 1.5 });
  clock.advance(1000);
  m.peerLoad('cm-a', { phones: 25, servicesRps: 0.25 });
  m.peerLoad('cm-x', { phones: 9, servicesRps: 0 });
  m.setOffline(new Set(['cm-c']));
  const g = m.group();
  t.deepEqual(g.members, [
    { id: 'cm-a', online: true, self: false, phones: 25, lastPhones: 25, capacity: 100, servicesRps: 0.25, load: 0.25, loadAt: 1_700_000_001_000 },
    { id: 'cm-b', online: true, self: true, phones: 50, lastPhones: 50, capacity: 200, servicesRps: 1.5, load: 0.25, loadAt: 1_700_000_000_000 },
    { id: 'cm-c', online: false, self: false, phones: null, lastPhones: null, capacity: 50, servicesRps: null, load: null, loadAt: null },
  ]);
  t.is(g.cmId, 'cm-b');
  m.setOffline(new Set());
  t.true(m.group().members[2]!.online, 'back online when it leaves the offline set');
});

test('a rehomed event becomes a rehome (newest first) and a phone event; other events only the latter', (t) => {
  const { m, clock } = model();
  const r = m.phoneEvent('p-1', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', detectMs: 120, rehomeMs: 35 });
  t.deepEqual(r, { at: 1_700_000_000_000, phone: 'p-1', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', detectMs: 120, rehomeMs: 35 });
  clock.advance(5);
  t.is(m.phoneEvent('p-1', { type: 'rejected', topic: 'x', error: 'bad' }), undefined);
  clock.advance(5);
  m.phoneEvent('p-2', { type: 'rehomed', from: null, to: 'cm-a', reason: 'fallback', detectMs: 'fast', rehomeMs: Number.NaN });
  const snap = m.snapshot();
  t.deepEqual(snap.rehomes.map((x) => [x.phone, x.from, x.reason, x.detectMs, x.rehomeMs]), [
    ['p-2', null, 'fallback', null, null],
    ['p-1', 'cm-a', 'cm-offline', 120, 35],
  ]);
  t.deepEqual(m.phone('p-1')!.events.map((e) => e.type), ['rejected', 'rehomed']);
  t.deepEqual(m.phone('p-1')!.events[0]!.detail, { type: 'rejected', topic: 'x', error: 'bad' });
});

test('untrusted payloads: non-objects ignored, nested values summarised, strings cut and cleaned', (t) => {
  const { m } = model();
  t.is(m.phoneEvent('p-1', ['rehomed']), undefined);
  t.is(m.phoneEvent('p-1', null), undefined);
  t.is(m.phoneEvent('', { type: 'rehomed' }), undefined);
  t.is(m.phone('p-1'), undefined, 'nothing recorded for rejected payloads');
  const long = 'x'.repeat(1000);
  const r = m.phoneEvent('p-<script>', { type: 'rehomed', to: long, reason: 'a\nb\u0000c', list: [1, 2], o: { a: 1 } })!;
  t.is(r.to.length, TEXT_MAX);
  t.is(r.reason, 'a\uFFFDb\uFFFDc');
  t.is(r.phone, 'p-<script>', 'kept as text: the page escapes it');
  t.like(m.phone('p-<script>')!.events[0]!.detail, { list: '[2 items]', o: '{…}' });
  t.is(cleanText(42), null);
});

test('bounded: rehomes ring, events per phone, phones least recently heard dropped first', (t) => {
  const { m } = model();
  for (let i = 0; i < REHOMES_MAX + 10; i++) m.phoneEvent(`p-r${i}`, { type: 'rehomed', to: `cm-${i}`, reason: 'pushed' });
  t.is(m.snapshot().rehomes.length, REHOMES_MAX);
  t.is(m.snapshot().rehomes[0]!.to, `cm-${REHOMES_MAX + 9}`);
  for (let i = 0; i < EVENTS_PER_PHONE + 3; i++) m.phoneEvent('p-e', { type: 'rejected', n: i });
  t.is(m.phone('p-e')!.events.length, EVENTS_PER_PHONE);
  m.phoneStatus('p-old', { online: true });
  for (let i = 0; i < PHONES_MAX; i++) m.phoneStatus(`p-${i}`, { online: true });
  t.is(m.phonesKnown, PHONES_MAX);
  t.is(m.phone('p-old'), undefined, 'the least recently heard went first');
  t.truthy(m.phone(`p-${PHONES_MAX - 1}`));
});

test('status: kept with the time heard; an empty retained message clears it; copies handed out', (t) => {
  const { m, clock } = model();
  m.phoneStatus('p-1', { online: true, home: 'cm-a', pointersVersion: 7, sip: { registrar: 'cm-a' } });
  t.deepEqual(m.phone('p-1')!.status, { online: true, home: 'cm-a', pointersVersion: 7, sip: '{…}' });
  t.is(m.phone('p-1')!.statusAt, clock.now());
  m.phone('p-1')!.events.push({ at: 0, type: 'forged', detail: {} });
  t.is(m.phone('p-1')!.events.length, 0, 'a caller cannot change the model through what it was given');
  m.phoneStatus('p-1', null);
  t.is(m.phone('p-1')!.status, null);
  m.phoneStatus('p-1', 'online');
  t.is(m.phone('p-1')!.status, null, 'a string status is ignored');
});

test('moves: copied, at most 50', (t) => {
  const { m } = model();
  const moves = Array.from({ length: 60 }, (_, i) => ({ phone: `p-${i}`, to: 'cm-a', ageMs: i }));
  m.setMoves(moves, 7);
  moves[0]!.to = 'changed';
  const g = m.group();
  t.is(g.moves.length, 50);
  t.is(g.moves[0]!.to, 'cm-a');
  t.is(g.movesQueued, 7);
});

test('rehome-rate-limited-per-phone: 60 forged rehomed events of one phone are REHOME_BURST rehomes; one more each REHOME_REFILL_MS; the rest counted as limited', (t) => {
  const { m, clock } = model();
  const believed = Array.from({ length: 60 }, (_, i) => m.phoneEvent('p-forger', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', n: i })).filter((r) => r !== undefined);
  t.is(believed.length, REHOME_BURST);
  t.is(m.rehomesLimited, 60 - REHOME_BURST);
  t.is(m.phone('p-forger')!.events[0]!.type, 'rehomed', 'still shown in the phone\'s own events (bounded per phone)');
  t.truthy(m.phoneEvent('p-honest', { type: 'rehomed', to: 'cm-b', reason: 'cm-offline' }), 'another phone is not limited by it');
  clock.advance(REHOME_REFILL_MS - 1);
  t.is(m.phoneEvent('p-forger', { type: 'rehomed', to: 'cm-b', reason: 'x' }), undefined);
  clock.advance(1);
  t.truthy(m.phoneEvent('p-forger', { type: 'rehomed', to: 'cm-b', reason: 'x' }), 'a refused try does not spend the refill');
  t.is(m.phoneEvent('p-forger', { type: 'rehomed', to: 'cm-b', reason: 'x' }), undefined);
});

test('rehome-rate-limited-per-phone: a real failover and its fallback a hold-down later both count', (t) => {
  const { m, clock } = model();
  t.truthy(m.phoneEvent('p-1', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline' }));
  clock.advance(10_000);
  t.truthy(m.phoneEvent('p-1', { type: 'rehomed', from: 'cm-b', to: 'cm-a', reason: 'fallback' }));
  t.is(m.rehomesLimited, 0);
});

test('recent-rehomes-fair: at most REHOMES_PER_PHONE of one phone in the recent list; its newest replace its own oldest, never another phone\'s', (t) => {
  const { m, clock } = model();
  for (let i = 0; i < REHOMES_MAX; i++) m.phoneEvent(`p-${i}`, { type: 'rehomed', to: 'cm-b', reason: 'cm-offline' });
  const before = m.snapshot().rehomes.map((r) => r.phone);
  for (let i = 0; i < 20; i++) {
    clock.advance(REHOME_REFILL_MS);
    m.phoneEvent('p-forger', { type: 'rehomed', to: 'cm-b', reason: `forged-${i}` });
  }
  const after = m.snapshot().rehomes;
  t.is(after.length, REHOMES_MAX);
  t.deepEqual(after.slice(0, REHOMES_PER_PHONE).map((r) => [r.phone, r.reason]), [['p-forger', 'forged-19'], ['p-forger', 'forged-18']]);
  t.is(after.filter((r) => r.phone === 'p-forger').length, REHOMES_PER_PHONE);
  t.deepEqual(after.slice(REHOMES_PER_PHONE).map((r) => r.phone), before.slice(0, REHOMES_MAX - REHOMES_PER_PHONE), 'the others keep their places, only the oldest two aged out');
});

test('rehome-rate-limited-per-phone: bounded memory; a phone dropped from the buckets starts full again', (t) => {
  const { m } = model();
  for (let i = 0; i < REHOME_BURST; i++) m.phoneEvent('p-first', { type: 'rehomed', to: 'cm-b' });
  t.is(m.phoneEvent('p-first', { type: 'rehomed', to: 'cm-b' }), undefined);
  for (let i = 0; i < REHOME_BUCKETS_MAX; i++) m.phoneEvent(`p-${i}`, { type: 'rehomed', to: 'cm-b' });
  t.truthy(m.phoneEvent('p-first', { type: 'rehomed', to: 'cm-b' }), 'its bucket was the least recently heard, dropped');
});

test('offline-member-counts-no-phones: a member gone offline shows no phones (its last figure kept as lastPhones) and the totals count only online members', (t) => {
  const { m } = model();
  m.measureSelf({ connected: true, phones: 0, servicesRps: 0 });
  m.peerLoad('cm-a', { phones: 40, servicesRps: 2 });
  m.peerLoad('cm-c', { phones: 10, servicesRps: 0 });
  t.deepEqual(m.group().totals, { members: 3, online: 3, phones: 50, capacity: 350 });
  // cm-a dies: its 40 phones rehome to cm-b, whose own measure now counts them; cm-a's last load must not count them again.
  m.setOffline(new Set(['cm-a']));
  m.measureSelf({ connected: true, phones: 40, servicesRps: 3 });
  const a = m.group().members[0]!;
  t.like(a, { id: 'cm-a', online: false, phones: null, lastPhones: 40, load: null, servicesRps: null });
  t.deepEqual(m.group().totals, { members: 3, online: 2, phones: 50, capacity: 250 }, 'the group is 50 phones, not 90');
  t.is(m.snapshot().totals.phones, 50);
  // Back online with a fresh load: counted again.
  m.setOffline(new Set());
  m.peerLoad('cm-a', { phones: 0, servicesRps: 0 });
  t.like(m.group().members[0]!, { online: true, phones: 0, lastPhones: 0 });
  // This call manager cut off from its broker counts nothing either.
  m.measureSelf({ connected: false, phones: 40, servicesRps: 0 });
  t.like(m.group().members[1]!, { online: false, phones: null, lastPhones: 40 });
  t.is(m.group().totals.phones, 10);
});

test('rehome-summary-by-reason: a 50-phone failover is one line of counts per reason, largest first; unknown reasons count as other; the window forgets', (t) => {
  const { m, clock } = model();
  t.deepEqual(m.summary(), { windowMs: SUMMARY_WINDOW_MS, total: 0, byReason: [] });
  for (let i = 0; i < 48; i++) m.phoneEvent(`p-${i}`, { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'keepalive-loss', detectMs: 3000, rehomeMs: 10 });
  m.phoneEvent('p-48', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', detectMs: 500, rehomeMs: 8 });
  m.phoneEvent('p-49', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', detectMs: 500, rehomeMs: 8 });
  m.phoneEvent('p-50', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: '<made up>', detectMs: 1, rehomeMs: 1 });
  // One more of p-50 is within its burst (REHOME_BURST 2); the rest are over its limit: not believed, not counted.
  for (let i = 0; i < 5; i++) m.phoneEvent('p-50', { type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', detectMs: 1, rehomeMs: 1 });
  const s = m.snapshot().summary;
  t.deepEqual(s.byReason, [
    { reason: 'keepalive-loss', count: 48 },
    { reason: 'cm-offline', count: 3 },
    { reason: 'other', count: 1 },
  ]);
  t.is(s.total, 52);
  clock.advance(SUMMARY_WINDOW_MS - SUMMARY_SLOT_MS);
  m.phoneEvent('p-60', { type: 'rehomed', from: 'cm-b', to: 'cm-a', reason: 'fallback', detectMs: 0, rehomeMs: 5 });
  t.is(m.summary().total, 53, 'still inside the window');
  clock.advance(2 * SUMMARY_SLOT_MS + 1);
  t.deepEqual(m.summary().byReason, [{ reason: 'fallback', count: 1 }], 'the failover left the window, the later fallback did not');
});
