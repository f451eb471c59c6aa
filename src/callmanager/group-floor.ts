/**
 * The floor of a call manager's group list across restarts: the version below
 * which a phone is given the group list in its ack.
 *
 * The group list carries the configured `pointersVersion` so that every call
 * manager of the group agrees and a restart rewrites no phone's flash. But a
 * phone holding that version (or a later one) is never given the list again —
 * so a changed group (a member added, removed, moved to another broker) never
 * reached phones unless the operator also raised `pointersVersion`. Here the
 * start compares the group with the one stored in the state directory
 * (`{stateDir}/group-{cmId}.a|b`, store/ab-slots.ts): unchanged → the stored
 * floor (no flash writes); changed → a new floor above everything before
 * (`max(stored + 1, pointersVersion, now)`), stored before the call manager
 * connects, so every phone homed here gets the new group in its next ack.
 * Without a usable state directory the floor is `pointersVersion` (as before).
 *
 * A stored floor beyond the wall clock + 24 h (stored while this host's clock
 * ran far ahead) is not carried forward: the group list would be issued beyond
 * the contract's bound (version-clock.ts) for as long as the clock takes to
 * catch up. It is replaced by `max(pointersVersion, now)` and stored, with a
 * warning (phones that took the far list are rebased: docs/operations.md).
 *
 * Floors raised when a peer's group changes (the group simulation, seed
 * 600,012). A removal is a rolling restart: a member restarted with the new
 * group raises its floor above what IT issued, but a member still running the
 * old group goes on signing lists naming the removed member — at versions
 * above that floor (versions follow the wall clock). A phone holding one and
 * later homed on the restarted member reported a version at or above its floor
 * and was never given the new group. So every member announces, in the state
 * it already signs (protocol/cm-state.ts `group`, `floor`), a digest of its
 * group ({@link groupDigest}) and its floor; a member that verifies a peer's
 * state with its OWN digest and a higher floor takes that floor (the list
 * book's group entry, ListBook.raiseFloor) and stores it here
 * ({@link storeRaisedFloor}), so a restart keeps it. Each member's floor is
 * above every list it issued (and every version it observed: the version lease
 * covers both) before its restart; once the last member has restarted, the
 * highest floor is above every old-group list any remaining member issued or
 * saw, and every member takes it.
 *
 * Version arithmetic lives in {@link nextFloor} alone (issue #10 "versions"
 * may replace its rule).
 */
import { createHash } from 'node:crypto';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Pointer } from '../protocol/types.js';
import { AbSlots } from '../store/ab-slots.js';
import type { DurableFs } from '../store/durable-file.js';
import { MAX_AHEAD_MS } from './version-clock.js';

export interface GroupFloorOptions {
  dir: string;
  cmId: string;
  group: readonly Pointer[];
  pointersVersion: number;
  /**
   * The highest version this call manager may have issued before (its version lease's
   * reservation, version-lease.ts): a changed group's floor goes above it, or a phone
   * holding such a list — issued while the clock ran ahead, say — is never given the
   * new group (the group simulation, seed 16: a removed member stayed in its list).
   */
  issued?: number;
  /** Former members named in the lists' `owns` (config `retired`): a change reaches phones too. */
  retired?: readonly string[];
  /** Wall clock now, ms. */
  now: number;
  fs?: DurableFs;
}

/** What identifies the group for the phones: members, order, brokers, services. */
export function groupFingerprint(group: readonly Pointer[], retired: readonly string[] = []): string {
  // `sip` only when present: a group without SIP keeps the fingerprint it had before members could carry one.
  const members = JSON.stringify(group.map((p) => (p.sip === undefined ? [p.id, p.broker, p.services] : [p.id, p.broker, p.services, p.sip])));
  // Retired ids likewise only when there are some: the lists' `owns` changes with them (retired.ts).
  return retired.length === 0 ? members : `${members} retired ${JSON.stringify([...retired].sort())}`;
}

/**
 * A short digest of {@link groupFingerprint} for the signed state (16 bytes of
 * SHA-256, base64url: 22 characters). Members of one group have equal digests
 * exactly when their configs agree on members, order, brokers, services and retired ids.
 */
export function groupDigest(group: readonly Pointer[], retired: readonly string[] = []): string {
  return createHash('sha256').update(groupFingerprint(group, retired)).digest().subarray(0, 16).toString('base64url');
}

/** The new floor after a group change. */
export function nextFloor(stored: number | null, pointersVersion: number, now: number, issued = 0): number {
  return Math.max((stored ?? 0) + 1, pointersVersion, Math.floor(now), issued + 1);
}

function parse(p: Buffer): { group: string; floor: number } | null {
  try {
    const o = JSON.parse(p.toString('utf8')) as { group?: unknown; floor?: unknown };
    return typeof o.group === 'string' && typeof o.floor === 'number' && Number.isSafeInteger(o.floor) && o.floor >= 1 ? { group: o.group, floor: o.floor } : null;
  } catch {
    return null;
  }
}

function groupSlots(o: Pick<GroupFloorOptions, 'dir' | 'cmId' | 'fs'>): AbSlots {
  return new AbSlots({
    dir: o.dir,
    name: `group-${o.cmId}`,
    ...(o.fs ? { fs: o.fs } : {}),
    maxPayloadBytes: 64 * 1024,
    validate: (p) => (parse(p) === null ? 'not { group, floor }' : null),
  });
}

/** The group list's floor for this start; stores it when the group changed. Throws on a store error. */
export async function groupFloor(o: GroupFloorOptions): Promise<{ floor: number; changed: boolean; discarded?: number }> {
  const slots = groupSlots(o);
  const loaded = await slots.load();
  const prev = loaded.payload === null ? null : parse(loaded.payload);
  const group = groupFingerprint(o.group, o.retired);
  if (prev !== null && prev.floor > Math.floor(o.now) + MAX_AHEAD_MS) {
    const floor = Math.max(o.pointersVersion, Math.floor(o.now));
    await slots.write(Buffer.from(JSON.stringify({ group, floor })));
    return { floor, changed: prev.group !== group, discarded: prev.floor };
  }
  if (prev !== null && prev.group === group && prev.floor >= o.pointersVersion) return { floor: prev.floor, changed: false };
  // First start with a state directory: the configured version is what phones were given.
  const floor = prev === null ? o.pointersVersion : nextFloor(prev.floor, o.pointersVersion, o.now, o.issued);
  await slots.write(Buffer.from(JSON.stringify({ group, floor })));
  return { floor, changed: prev !== null };
}

/** {@link groupFloor} for a call manager's start: a state directory that does not work gives `pointersVersion`, with a warning. */
export async function groupFloorFor(o: GroupFloorOptions, log: Logger): Promise<number> {
  try {
    const r = await groupFloor(o);
    if (r.discarded !== undefined) log.warn({ stored: r.discarded, floor: r.floor }, 'stored group list version is beyond the wall clock + 24 h: discarded');
    if (r.changed) log.info({ floor: r.floor }, 'group changed since the last start: every phone gets the new group list');
    return r.floor;
  } catch (err) {
    log.warn({ stateDir: o.dir, err: errorMessage(err) }, 'group floor not kept: group changes reach phones only with a higher pointersVersion');
    return o.pointersVersion;
  }
}

/**
 * Store `floor` as this group's floor, adopted from a peer running the same
 * group (see the file comment): the next start finds it stored with the group
 * unchanged and keeps it. Writes only when it is above the floor stored for
 * this group (one slot write per adoption, none for a repeat). Throws on a
 * store error.
 */
export async function storeRaisedFloor(o: Pick<GroupFloorOptions, 'dir' | 'cmId' | 'group' | 'retired' | 'fs'>, floor: number): Promise<boolean> {
  const slots = groupSlots(o);
  const loaded = await slots.load();
  const prev = loaded.payload === null ? null : parse(loaded.payload);
  const group = groupFingerprint(o.group, o.retired);
  if (prev !== null && prev.group === group && prev.floor >= floor) return false;
  await slots.write(Buffer.from(JSON.stringify({ group, floor })));
  return true;
}
