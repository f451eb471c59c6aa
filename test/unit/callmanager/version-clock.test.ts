import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { VersionClock } from '../../../src/callmanager/version-clock.js';
import { VERSION_LEASE, VersionLease } from '../../../src/callmanager/version-lease.js';

function tempDir(t: { teardown(fn: () => void): void }): string {
  const d = mkdtempSync(join(tmpdir(), 'ipphone-versions-'));
  t.teardown(() => rmSync(d, { recursive: true, force: true }));
  return d;
}

test('hlc-issue: above the clock, above everything issued and observed', (t) => {
  const clock = new FakeClock(1000);
  const v = new VersionClock({ clock, start: 5 });
  t.is(v.issue(), 1000);
  t.is(v.issue(), 1001, 'same ms: last + 1');
  t.true(v.observe(50_000));
  t.is(v.issue(), 50_001, 'observed ahead of the clock');
  clock.advance(100_000);
  t.is(v.issue(), 101_000, 'the clock again once it passes');
});

test('hlc-residue: members of a group never issue the same version, even observing the same maximum', (t) => {
  const clock = new FakeClock(1000);
  const members = [0, 1, 2].map((slot) => new VersionClock({ clock, start: 0, slot, slots: 3 }));
  const seen = new Set<number>();
  for (let round = 0; round < 50; round++) {
    const max = Math.max(...members.map((m) => m.last));
    for (const m of members) m.observe(max);
    for (const [slot, m] of members.entries()) {
      const v = m.issue();
      t.is(v % 3, slot);
      t.false(seen.has(v), `version ${v} issued twice`);
      seen.add(v);
    }
  }
});

test('hlc-clock-back: a wall clock stepped back an hour does not lower versions', (t) => {
  let now = 10_000_000;
  const v = new VersionClock({ clock: { now: () => now }, start: 0 });
  const a = v.issue();
  now -= 3600_000;
  t.true(v.issue() > a);
});

test('lease-restart-above-previous-run: a restart (its clock 5 min behind) issues above every version of the run before', async (t) => {
  const dir = tempDir(t);
  const log = silentLogger();
  const t0 = 1_764_000_000_000;
  const lease1 = await VersionLease.open({ dir, cmId: 'cm-a', log, now: t0 });
  const run1 = new VersionClock({ clock: { now: () => t0 }, start: lease1.previous, onAdvance: (l) => lease1.advance(l) });
  let last = 0;
  // A burst of 100,000 versions (rebalance overrides), more than one lease.
  for (let i = 0; i < 100_000; i++) last = run1.issue();
  await lease1.flushed();
  t.true(lease1.reserved >= last, 'the reservation on flash covers every version issued');
  t.true(lease1.writes <= 6, `few writes (${lease1.writes}) for 100,000 versions`);
  const lease2 = await VersionLease.open({ dir, cmId: 'cm-a', log, now: t0 - 5 * 60_000 });
  const run2 = new VersionClock({ clock: { now: () => t0 - 5 * 60_000 }, start: lease2.previous });
  t.true(run2.issue() > last, 'first version of the new run above the last of the old');
  t.true(lease2.previous - last <= VERSION_LEASE, 'skips at most one lease');
});
