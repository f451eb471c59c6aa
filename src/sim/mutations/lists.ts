/**
 * Mutations of the list and version rules (issue 15 §1, §6): `erase-remote`
 * (a call manager's lists drop the pointers its group does not own) and
 * `dragged-version` (the version clock follows phones' reports unbounded).
 * See src/sim/mutations.ts.
 *
 * Both patch the prototypes of the product's own classes for one run; the
 * product's state lives in private (`#`) fields, out of reach of a patch, so
 * each defect is put back through the public methods the product itself
 * calls, as described at each mutation. No shipped file knows about them.
 */
import { ListBook, type SignedList } from '../../callmanager/list-book.js';
import { ReportLimiter } from '../../callmanager/report-limiter.js';
import { Responder } from '../../callmanager/responder.js';
import { MAX_AHEAD_MS, PEER_AHEAD_MS, PHONE_AHEAD_MS, VersionClock, type VersionSource } from '../../callmanager/version-clock.js';
import type { Envelope } from '../../protocol/types.js';
import { ProcessClock } from '../clock.js';
import { signer } from '../group.js';
import type { Mutation } from '../mutations.js';

/** Re-signed envelopes of `erase-remote`, by the product's envelope JSON (bounded like the product's cache). */
const ERASED_MAX = 4096;

/**
 * `erase-remote`, issue 15 §6: before the fix, `ListBook.#boundSig` signed a
 * phone-bound body (`phone`, `expires`) without `owns`, so the phone took the
 * group's list as its whole list (protocol/list-merge.ts) and dropped the
 * remote site's pointer. Put back at `ListBook.prototype.forPhone` — every
 * bound list the product hands out (acks, pushes, `above`, rebalance orders)
 * passes there: its envelope is re-signed lazily, when read, over the same
 * body less `owns`, with the simulated group's key (every simulated call
 * manager signs with it, src/sim/group.ts). Unbound lists (`groupList`) keep
 * `owns`, as they did then.
 */
function eraseRemote(): () => void {
  const forPhone = Object.getOwnPropertyDescriptor(ListBook.prototype, 'forPhone')!;
  const original = ListBook.prototype.forPhone;
  const resigned = new Map<string, { envelope: Envelope; envelopeJson: string }>();
  const erase = (l: SignedList): { envelope: Envelope; envelopeJson: string } => {
    const json = l.envelopeJson;
    const hit = resigned.get(json);
    if (hit !== undefined) return hit;
    const body = JSON.parse(Buffer.from(l.envelope.body, 'base64').toString('utf8')) as Record<string, unknown>;
    let out = { envelope: l.envelope, envelopeJson: json };
    if (body.phone !== undefined) {
      const { version, reason, list, phone, expires } = body;
      const envelope = signer({ version, reason, list, phone, expires } as Parameters<typeof signer>[0]);
      out = { envelope, envelopeJson: JSON.stringify(envelope) };
    }
    if (resigned.size >= ERASED_MAX) resigned.delete(resigned.keys().next().value!);
    resigned.set(json, out);
    return out;
  };
  ListBook.prototype.forPhone = function (this: ListBook, phoneId: string): SignedList {
    const l = original.call(this, phoneId);
    return {
      version: l.version,
      floor: l.floor,
      reason: l.reason,
      list: l.list,
      ackTailShort: l.ackTailShort,
      get envelope() {
        return erase(l).envelope;
      },
      get envelopeJson() {
        return erase(l).envelopeJson;
      },
      get ackTailFull() {
        return `,"pointers":${erase(l).envelopeJson},"pointersVersion":${l.version}}`;
      },
    };
  };
  return () => {
    Object.defineProperty(ListBook.prototype, 'forPhone', forPhone);
    resigned.clear();
  };
}

/** How far ahead of the wall clock each source's version is observed now (version-clock.ts, default scale). */
const AHEAD: Record<VersionSource, number> = { phone: PHONE_AHEAD_MS, peer: PEER_AHEAD_MS };

/**
 * `dragged-version`, issue 15 §1, the whole of it reverted:
 *
 * - the clock's bound was measured from `max(last, wall)`, not from the wall
 *   clock alone, and was a day for every source: each report a day further
 *   ahead than the last was taken, so a phone dragged the clock a day per
 *   message; and nothing capped what `issue()` gave (no ceiling);
 * - the responder observed every keep-alive, probes included;
 * - no rate limit on how often a phone moves the clock (report-limiter.ts).
 *
 * The clock's state is private, so the old rule is the product's own
 * `VersionClock` judged at a shifted wall clock: during its `plausible` (which
 * `observe` calls) the host's wall reads `max(last, wall) + 24 h − ahead(source)`,
 * so "≤ wall' + ahead(source)" is the old "≤ max(last, wall) + 24 h"; during its
 * `issue` the wall reads `max(wall, last)`, so the ceiling `wall' + 24 h` is never
 * reached and `issue` is the old `max(last + 1, wall)` in the member's residue
 * class. Its real `last`, residue class and `onAdvance` (the lease on flash)
 * stay in use. The wall is shifted by patching the simulated `ProcessClock`
 * (the clock every simulated call manager is given) for the length of that one
 * synchronous call. Probes are fed to the book where the responder asks for the
 * probing phone's list (`ListBook.forPhone`, which the old responder reached
 * right after observing). Not reverted: the start-up discards of stored versions
 * beyond the wall clock (version-lease.ts, group-floor.ts, the constructor's
 * clamp): they act only at a restart, after a drag.
 */
function draggedVersion(): () => void {
  const undo: (() => void)[] = [];
  const patch = <T extends object>(proto: T, key: keyof T & string, value: unknown): void => {
    const d = Object.getOwnPropertyDescriptor(proto, key)!;
    Object.defineProperty(proto, key, { ...d, value });
    undo.push(() => Object.defineProperty(proto, key, d));
  };
  const now = ProcessClock.prototype.now;
  /** Run `fn` with every simulated wall clock read through `shift` (only the clock's own call reads one). */
  const shifted = <T>(shift: (wall: number) => number, fn: () => T): T => {
    ProcessClock.prototype.now = function (this: ProcessClock): number {
      return shift(now.call(this));
    };
    try {
      return fn();
    } finally {
      ProcessClock.prototype.now = now;
    }
  };
  const plausible = VersionClock.prototype.plausible;
  const issue = VersionClock.prototype.issue;
  patch(VersionClock.prototype, 'plausible', function (this: VersionClock, v: number, source: VersionSource = 'peer'): boolean {
    const last = this.last;
    return shifted((wall) => Math.max(last, Math.floor(wall)) + MAX_AHEAD_MS - AHEAD[source], () => plausible.call(this, v, source));
  });
  patch(VersionClock.prototype, 'issue', function (this: VersionClock): number {
    const last = this.last;
    return shifted((wall) => Math.max(last, Math.floor(wall)), () => issue.call(this));
  });
  patch(ReportLimiter.prototype, 'allow', function (this: ReportLimiter): boolean {
    return true;
  });
  // Probes: the old responder observed them too. The version of the probe being handled is
  // observed when the responder asks for that phone's list, its first use of the book for a probe.
  let probe: { phone: string; version: number } | undefined;
  const handle = Responder.prototype.handle;
  patch(Responder.prototype, 'handle', function (this: Responder, payload: Buffer, topicPhone?: string) {
    probe = probeOf(payload);
    try {
      return handle.call(this, payload, topicPhone);
    } finally {
      probe = undefined;
    }
  });
  const forPhone = ListBook.prototype.forPhone;
  patch(ListBook.prototype, 'forPhone', function (this: ListBook, phoneId: string): SignedList {
    if (probe !== undefined && probe.phone === phoneId) {
      this.observe(probe.version, 'phone');
      probe = undefined;
    }
    return forPhone.call(this, phoneId);
  });
  return () => {
    for (const u of undo.reverse()) u();
    ProcessClock.prototype.now = now;
  };
}

/** The phone and version of a probe keep-alive, else undefined (the responder judges the rest). */
function probeOf(payload: Buffer): { phone: string; version: number } | undefined {
  try {
    const ka = JSON.parse(payload.toString('utf8')) as { probe?: unknown; phone?: unknown; pointersVersion?: unknown };
    return ka.probe === true && typeof ka.phone === 'string' && typeof ka.pointersVersion === 'number' ? { phone: ka.phone, version: ka.pointersVersion } : undefined;
  } catch {
    return undefined;
  }
}

export const LIST_MUTATIONS = {
  'erase-remote': {
    about: "issue 15 §6: a call manager's phone-bound lists are signed without `owns`, so phones drop the remote site's pointer",
    expect: ['lists-signed'],
    apply: eraseRemote,
  },
  'dragged-version': {
    about: "issue 15 §1: the version clock's bound is measured from the last version (a day further per report), probes feed it, no rate limit, no ceiling",
    expect: ['versions-bounded'],
    apply: draggedVersion,
  },
} satisfies Record<string, Mutation>;
