/**
 * Issue 15 §1, "a confined phone drags the group's list versions forward": what
 * phones and peers report moves a call manager's versions at most to ITS wall
 * clock + a bound, never a day further per message; nothing it issues is beyond
 * wall + 24 h (shared/CONTRACT.md). Clocks injected (FakeClock), no sleeps.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Pointer } from '../../../src/protocol/types.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { ReportLimiter, REPORT_GAP_MS } from '../../../src/callmanager/report-limiter.js';
import { Responder } from '../../../src/callmanager/responder.js';
import { MAX_AHEAD_MS, PEER_AHEAD_MS, PHONE_AHEAD_MS, VersionClock } from '../../../src/callmanager/version-clock.js';
import { VERSION_LEASE, VersionLease } from '../../../src/callmanager/version-lease.js';

const T0 = 1_764_000_000_000;
const DAY = 24 * 3600_000;
const group: Pointer[] = ['cm-a', 'cm-b'].map((id, i) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1:${8081 + i}/services` }));
const priv = parsePrivateKey(generateKeyPair().privatePem);

function cm(clock: FakeClock, reports?: ReportLimiter) {
  const versions = new VersionClock({ clock, start: 1, slot: 0, slots: 2 });
  const book = new ListBook({ group, baseVersion: 1, clock, bind: true, sign: (b) => signEnvelope(b, priv, 'ops-1'), versions });
  const r = new Responder({ cmId: 'cm-a', book, table: new PhoneTable(1000), clock, ...(reports ? { reports } : {}) });
  return { book, r, versions };
}
const ka = (o: Record<string, unknown>): Buffer => Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 1, busy: false, ...o }));

test('versions-bounded-by-wall-clock: 30 keep-alives each a day further ahead move the next list at most 12 h ahead (was: 30 days)', (t) => {
  const clock = new FakeClock(T0);
  const { book, r } = cm(clock);
  for (let i = 1; i <= 30; i++) {
    clock.advance(REPORT_GAP_MS); // not the rate limit: the bound alone is judged here
    r.handle(ka({ seq: i, pointersVersion: T0 + i * (DAY - 60_000) })); // each just within a day of the one before
  }
  book.setOffline(['cm-b']);
  t.true(book.version <= clock.now() + PHONE_AHEAD_MS, `next list ${((book.version - clock.now()) / 3600_000).toFixed(1)} h ahead`);
  t.true(book.lastVersion <= clock.now() + MAX_AHEAD_MS, 'the load advertises no more');
  t.true(r.implausible >= 29, 'the reports past the bound are counted implausible');
});

test('versions-bounded-by-wall-clock: a peer report is bounded from the wall clock, not from the last version', (t) => {
  const clock = new FakeClock(T0);
  const v = new VersionClock({ clock, start: 0 });
  t.true(v.observe(T0 + PEER_AHEAD_MS), 'a peer at the edge of its bound is taken');
  t.false(v.observe(T0 + PEER_AHEAD_MS + DAY - 1), 'one more day on top of it is not (was: taken, bounded from max(last, now))');
  t.true(v.issue() <= T0 + MAX_AHEAD_MS);
});

test('versions-bounded-by-wall-clock: issued versions never pass wall + 24 h, whatever the start or the issue rate', (t) => {
  const clock = new FakeClock(T0);
  const v = new VersionClock({ clock, start: T0 + 40 * DAY, slot: 1, slots: 3 });
  t.true(v.last <= T0 + MAX_AHEAD_MS, 'a start beyond the ceiling (an old lease, a wild pointersVersion) is cut to it');
  let max = 0;
  for (let i = 0; i < 10_000; i++) max = Math.max(max, v.issue());
  t.true(max <= T0 + MAX_AHEAD_MS, `max issued ${max - T0 - MAX_AHEAD_MS} ms past the ceiling`);
  t.is(max % 3, 1, 'still in its residue class');
  t.true(v.clamped > 0, 'counted');
  clock.advance(1000);
  t.true(v.issue() > max, 'rises again as the wall clock does');
});

test('probe-keepalives-feed-nothing: a probe keep-alive holding a version ahead does not move the clock', (t) => {
  const clock = new FakeClock(T0);
  const { book, r, versions } = cm(clock);
  const before = versions.last;
  const res = r.handle(ka({ probe: true, pointersVersion: T0 + 3600_000 }));
  t.not(typeof res, 'string');
  t.is(versions.last, before, 'probe ignored (was: observed)');
  book.setOffline(['cm-b']);
  t.true(book.version < T0 + 60_000, 'the next list tracks the clock');
});

test('version-reports-rate-limited-per-phone: a phone moves the clock at most once per gap; another phone is not held up', (t) => {
  const clock = new FakeClock(T0);
  const { r, versions } = cm(clock);
  r.handle(ka({ seq: 1, pointersVersion: T0 + 1000 }));
  t.is(versions.last, T0 + 1000);
  r.handle(ka({ seq: 2, pointersVersion: T0 + 2000 }));
  t.is(versions.last, T0 + 1000, 'a second report within the gap is not observed (was: each observed)');
  r.handle(ka({ phone: 'p2', seq: 1, pointersVersion: T0 + 3000 }));
  t.is(versions.last, T0 + 3000, 'another phone');
  clock.advance(REPORT_GAP_MS);
  r.handle(ka({ seq: 3, pointersVersion: T0 + 4000 }));
  t.is(versions.last, T0 + 4000, 'the same phone after the gap');
  t.is(r.reports.refused, 1);
});

test('version-reports-rate-limited-per-phone: invented phone ids share a per-second cap; memory stays bounded', (t) => {
  const lim = new ReportLimiter({ perSecond: 5, maxTracked: 100 });
  let allowed = 0;
  for (let i = 0; i < 1000; i++) if (lim.allow(`x${i}`, T0)) allowed++;
  t.is(allowed, 5, 'per second, all phones together');
  for (let s = 1; s <= 100; s++) for (let i = 0; i < 5; i++) lim.allow(`y${s}-${i}`, T0 + s * 1000);
  t.true(lim.tracked <= 100);
});

test('lease-beyond-wall-clock-discarded: a reservation 30 days ahead at start is not carried forward', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-versions-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const log = silentLogger();
  // A run dragged 30 days ahead (pre-fix) reserved above it.
  const dragged = await VersionLease.open({ dir, cmId: 'cm-a', log, now: T0 + 30 * DAY });
  t.true(dragged.reserved > T0 + 30 * DAY);
  const next = await VersionLease.open({ dir, cmId: 'cm-a', log, now: T0 });
  t.is(next.discarded, dragged.reserved, 'discarded (was: resumed above it)');
  t.is(next.previous, 0);
  t.true(next.reserved <= T0 + VERSION_LEASE);
  const v = new VersionClock({ clock: new FakeClock(T0), start: next.previous });
  t.true(v.issue() < T0 + 60_000);
  // A reservation within the bound is kept: restarts still never go below.
  const third = await VersionLease.open({ dir, cmId: 'cm-a', log, now: T0 - 5 * 60_000 });
  t.is(third.previous, next.reserved);
  t.is(third.discarded, 0);
});
