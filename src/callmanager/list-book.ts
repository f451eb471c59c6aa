import type { Clock } from '../lib/clock.js';
import { cleanPointer, MAX_POINTERS } from '../protocol/pointers.js';
import type { Envelope, Pointer, PointerReason, PointersBody } from '../protocol/types.js';
import { VersionClock, type VersionSource } from './version-clock.js';

/**
 * The pointer lists this call manager hands out, each signed once.
 *
 * By default every phone gets the GROUP LIST: the group in config order with
 * every offline peer moved to the end (relative order kept). A phone may get
 * its own list instead (`setPhoneList`, for the rebalancer); such an override
 * keeps its order but, like the group list, has offline peers moved last.
 *
 * Every list names the whole group in its body's `owns`: the phone keeps the
 * pointers it holds outside the group (protocol/list-merge.ts) — a call
 * manager reorders its group, it never drops a remote site. A list holds at
 * most {@link MAX_POINTERS} pointers (what a phone accepts): a bigger group
 * sends each phone its top members (offline ones are the first to go).
 *
 * Versions: while no peer was ever seen offline the group list carries the
 * configured `pointersVersion` (or the floor the call manager's start chose,
 * group-floor.ts), so every CM of a group agrees and a CM restart does not
 * make phones rewrite their flash. Every later change gets ONE new version
 * (shared by the group list and every override it re-arranges: versions order
 * one phone's lists; they need not differ between phones) from one place,
 * {@link VersionClock.issue} — a hybrid logical clock: above the wall clock,
 * everything issued and everything observed (phones' keep-alive versions and
 * peers' through {@link ListBook.observe}), so versions are ordered between CMs
 * of the group whatever their clocks say — and never more than 24 h ahead of this
 * host's wall clock, whatever anyone reports (version-clock.ts, issue 15).
 *
 * Binding (`bind`): each phone gets its list signed for it — the body carries
 * `phone` and `expires` (now + {@link LIST_LIFETIME_MS}) — so a captured list is
 * refused by every other phone and, once expired, by its own phone after a wipe.
 * Signatures are made lazily, when a phone needs the list's envelope (an ack's
 * full tail, a push), cached per phone (bounded), and RENEWED — re-signed, same
 * version and content — when less than half the lifetime is left, so a list a
 * call manager hands out always has at least 12 h to run. A phone judges
 * `expires` only when a list arrives, never for the list it holds: a call manager
 * out of reach for days does not take a phone's list away.
 *
 * Failover plans (`planFailover`, `presign`; issue 18): when a peer dies, every
 * phone it had arrives here within a second, and each needs its own signature —
 * thousands of Ed25519 signatures in the critical second. So, while idle, the
 * book signs ahead the list each known phone of a live peer would get if that
 * peer went offline: ONE version is issued for all plans (the next group list
 * takes exactly one of them), each plan is the group arranged with that peer
 * offline too, each signature names its phone and expires like any bound list.
 * `setOffline` adopts a plan only when it is exactly the change planned and
 * nothing has moved since: the group list is the one planned against and no
 * version above the plan's was issued or observed (`versions.last` is still the
 * plan's version) — then the plan's version is above everything this book knows
 * phones hold, as a version issued at the change would be. Anything else drops
 * the plans and the change is issued and signed as before. A phone holding a
 * version at or above the plan's still gets a list re-issued above it
 * ({@link ListBook.above}). Nothing planned is published before the change.
 */

/** Lifetime of a bound list's signature (ms): 24 h, renewed with less than half left. */
export const LIST_LIFETIME_MS = 24 * 3600_000;
/** Per-list bound signatures kept (phones mid-update); older ones are re-made on demand. */
const BOUND_CACHE_MAX = 4096;
/** Most phones signed ahead in all failover plans together (bounded memory and idle work). */
export const PLAN_PHONES_MAX = 100_000;

/** Signs a pointer-list body; injected so tests can count signatures. */
export type PointersSigner = (body: PointersBody) => Envelope;

/** One signed list, shared by every phone that gets it. */
export interface SignedList {
  readonly version: number;
  /** Lowest version a phone may hold and keep what it has (≤ version). */
  readonly floor: number;
  readonly reason: PointerReason;
  readonly list: readonly Pointer[];
  readonly envelope: Envelope;
  /** `JSON.stringify(envelope)`, built once for the hot path. */
  readonly envelopeJson: string;
  /** Ack tail after `{"cm":…,"seq":N` when the phone lacks this version: `,"pointers":…,"pointersVersion":V}`. */
  readonly ackTailFull: string;
  /** Ack tail when the phone holds this version: `,"pointersVersion":V}`. */
  readonly ackTailShort: string;
}

interface Entry {
  version: number;
  /** Bound signatures of this entry, by phone (see ListBookOptions.bind). */
  bound?: Map<string, BoundSig>;
  /** Most bound signatures kept (default BOUND_CACHE_MAX; more for an adopted failover plan). */
  boundMax?: number;
  /** Phones holding a version below this must be given this list; see ListBookOptions.lazyRestore. */
  floor: number;
  reason: PointerReason;
  list: Pointer[];
  signed: SignedList | undefined;
}

/** The list of one failover plan: the group with one more peer offline, signed ahead per phone. */
interface Plan {
  /** The offline set after the change planned. */
  offline: Set<string>;
  list: Pointer[];
  bound: Map<string, BoundSig>;
}

interface Override {
  /** The order the rebalancer asked for, before offline peers are moved last. */
  base: Pointer[];
  entry: Entry;
}

export interface ListBookOptions {
  /** The group in default priority order (this CM included). */
  group: readonly Pointer[];
  /** Version of the group list while every peer is online (config `pointersVersion`, ≥ 0). */
  baseVersion: number;
  clock: Clock;
  sign: PointersSigner;
  /**
   * Hand changed lists out lazily (used with rebalancing): a change of the
   * offline set does not raise the floor, so phones already homed here keep
   * the lists they hold — which may be another member's rebalance order, that
   * this call manager cannot know. The demoted list still reaches every phone
   * arriving from a failed peer (pushed), and the restored list reaches those
   * phones gradually when the peer returns (Responder.release). Without it,
   * every change reaches every phone in its next ack (classic groups).
   */
  lazyRestore?: boolean;
  /**
   * Bind each phone's list to it (`phone`, `expires`; see the file comment).
   * Off: one unbound signature per list, shared by every phone (older behaviour).
   */
  bind?: boolean;
  /** The version source; default a {@link VersionClock} on `clock` starting at `baseVersion`. */
  versions?: VersionClock;
}

interface BoundSig {
  expires: number;
  envelopeJson: string;
  envelope: Envelope;
}

export class ListBook {
  readonly #group: Pointer[];
  readonly #clock: Clock;
  readonly #sign: PointersSigner;
  readonly #lazyRestore: boolean;
  readonly #bind: boolean;
  readonly #versions: VersionClock;
  #offline = new Set<string>();
  #groupEntry: Entry;
  readonly #overrides = new Map<string, Override>();
  /** Every group member's id, for the bodies' `owns`. */
  readonly #owns: string[];
  /** Failover plans by peer id, all at {@link #planVersion}, made against {@link #planBase}. */
  readonly #plans = new Map<string, Plan>();
  #planVersion = NaN;
  #planBase: Entry | undefined;
  #planned = 0;
  /** `versions.last` before the plans' version was issued (see publishedVersion). */
  #beforePlan = 0;
  /** Failover plans adopted by `setOffline` (counted for tests and the bench). */
  plansAdopted = 0;

  constructor(opts: ListBookOptions) {
    this.#group = opts.group.map(copyPointer);
    this.#owns = this.#group.map((p) => p.id);
    this.#clock = opts.clock;
    this.#sign = opts.sign;
    this.#lazyRestore = opts.lazyRestore ?? false;
    this.#bind = opts.bind ?? false;
    this.#versions = opts.versions ?? new VersionClock({ clock: opts.clock, start: opts.baseVersion });
    this.#groupEntry = { version: opts.baseVersion, floor: opts.baseVersion, reason: 'failover', list: this.#arrange(this.#group), signed: undefined };
  }

  /** Ids of group members currently considered offline. */
  get offline(): ReadonlySet<string> {
    return this.#offline;
  }

  /** Version of the current group list. */
  get version(): number {
    return this.#groupEntry.version;
  }

  /** Floor of the group list: a phone holding a lower version is given it (group-floor.ts). */
  get floor(): number {
    return this.#groupEntry.floor;
  }

  /**
   * Raise the group list's floor to `floor`, a peer's floor for the same group
   * (group-floor.ts, "Floors raised when a peer's group changes"): every phone
   * holding less is given the group list in its next ack, as after a restart
   * with a changed group. The list's version goes to `floor` when it is below:
   * `floor` itself while no peer is offline (the list every member of the group
   * gives at its floor, as with `pointersVersion`), else a version issued above
   * it. Later versions are issued above it. 'same' when the floor is already as
   * high; 'implausible' (nothing changed) when `floor` is beyond what a peer may
   * report (version-clock.ts PEER_AHEAD_MS).
   */
  raiseFloor(floor: number): 'raised' | 'same' | 'implausible' {
    const e = this.#groupEntry;
    if (floor <= e.floor) return 'same';
    if (!this.#versions.observe(floor, 'peer')) return 'implausible';
    this.#dropPlans();
    if (e.version >= floor) {
      // Same list, same version: its signatures stay good; only the floor moves.
      this.#groupEntry = { ...e, floor, signed: e.signed === undefined ? undefined : { ...e.signed, floor } };
      return 'raised';
    }
    const version = this.#offline.size === 0 ? floor : this.#issue();
    this.#groupEntry = { version, floor, reason: e.reason, list: e.list, signed: undefined };
    return 'raised';
  }

  /**
   * Replace the offline set. Returns true when it changed, in which case the
   * group list and every override get a new, higher version.
   */
  setOffline(ids: Iterable<string>): boolean {
    const next = new Set(ids);
    if (next.size === this.#offline.size && [...next].every((id) => this.#offline.has(id))) return false;
    const demoted = [...next].some((id) => !this.#offline.has(id));
    const plan = this.#planFor(next);
    const planVersion = this.#planVersion;
    this.#dropPlans();
    this.#offline = next;
    const version = plan !== undefined ? planVersion : this.#issue();
    const floor = this.#lazyRestore ? this.#groupEntry.floor : version;
    this.#groupEntry = { version, floor, reason: 'failover', list: this.#arrange(this.#group), signed: undefined };
    if (plan !== undefined) {
      this.#groupEntry.bound = plan.bound;
      this.#groupEntry.boundMax = plan.bound.size + BOUND_CACHE_MAX;
      this.plansAdopted++;
    }
    for (const o of this.#overrides.values()) {
      // A phone's own list is known to be what it holds: a demotion reaches it at once (it
      // may still be about to move to the peer that just died); a restoration waits for release.
      // Same version as the group list: one step per change, whatever the number of overrides.
      o.entry = { version, floor: this.#lazyRestore && !demoted ? o.entry.floor : version, reason: o.entry.reason, list: this.#arrange(o.base), signed: undefined };
    }
    return true;
  }

  /**
   * True while the failover plans are current: made against the present group
   * list, and no version above theirs issued or observed since.
   */
  get plansCurrent(): boolean {
    return this.#planBase === this.#groupEntry && this.#versions.last === this.#planVersion;
  }

  /** Phones signed ahead in the current plans. */
  get planned(): number {
    return this.plansCurrent ? this.#planned : 0;
  }

  /** True when lists change lazily (ListBookOptions.lazyRestore). */
  get lazyRestore(): boolean {
    return this.#lazyRestore;
  }

  /**
   * Start failover plans afresh: drop the old ones and issue the one version
   * every plan of the present state carries. False when no plan can be made now
   * (the version clock stands at its ceiling and could not issue above itself).
   */
  planFailover(): boolean {
    this.#dropPlans();
    const before = this.#versions.last;
    const v = this.#issue();
    // At the ceiling (wall + 24 h) issue() hands out the ceiling's number again: not above the last.
    if (v <= before || this.#versions.last !== v) return false;
    this.#beforePlan = before;
    this.#planVersion = v;
    this.#planBase = this.#groupEntry;
    return true;
  }

  /**
   * Sign ahead the list `phone` gets here once `peer` goes offline (see the file
   * comment). Signs nothing, returning false, when the plans are not current
   * ({@link planFailover} first), `peer` is not an online group member, the phone
   * has its own list here (an override is re-arranged at the change), it is
   * already signed with at least half its lifetime left, or
   * {@link PLAN_PHONES_MAX} phones are signed ahead.
   */
  presign(peer: string, phone: string): boolean {
    if (!this.#bind || !this.plansCurrent || !this.#owns.includes(peer) || this.#offline.has(peer) || this.#overrides.has(phone)) return false;
    let plan = this.#plans.get(peer);
    if (plan === undefined) {
      const offline = new Set([...this.#offline, peer]);
      plan = { offline, list: this.#arrangeWith(this.#group, offline), bound: new Map() };
      this.#plans.set(peer, plan);
    }
    const now = Math.floor(this.#clock.now());
    const hit = plan.bound.get(phone);
    if (hit !== undefined && hit.expires - now > LIST_LIFETIME_MS / 2) return false;
    if (hit === undefined && this.#planned >= PLAN_PHONES_MAX) return false;
    const expires = now + LIST_LIFETIME_MS;
    const envelope = this.#sign({ version: this.#planVersion, reason: 'failover', list: plan.list, owns: this.#owns, phone, expires });
    plan.bound.set(phone, { expires, envelope, envelopeJson: JSON.stringify(envelope) });
    if (hit === undefined) this.#planned++;
    return true;
  }

  /** The current plan for exactly the offline set `next`, if there is one. */
  #planFor(next: ReadonlySet<string>): Plan | undefined {
    if (!this.plansCurrent) return undefined;
    for (const plan of this.#plans.values()) {
      if (plan.offline.size === next.size && [...next].every((id) => plan.offline.has(id))) return plan;
    }
    return undefined;
  }

  #dropPlans(): void {
    this.#plans.clear();
    this.#planVersion = NaN;
    this.#planBase = undefined;
    this.#planned = 0;
  }

  /** The group list, signed (signs at most once per version). */
  groupList(): SignedList {
    return this.#signed(this.#groupEntry);
  }

  /** The list `phoneId` should hold: its override if it has one, else the group list (bound to it with `bind`). */
  forPhone(phoneId: string): SignedList {
    const o = this.#overrides.get(phoneId);
    const entry = o === undefined ? this.#groupEntry : o.entry;
    return this.#bind ? new BoundList(entry, () => this.#boundSig(entry, phoneId)) : this.#signed(entry);
  }

  /** The highest version issued or observed. */
  get lastVersion(): number {
    return this.#versions.last;
  }

  /**
   * The version to publish in the load, for peers to observe: {@link lastVersion},
   * less the plans' version while they are current. That version is on no list
   * yet; were it published, a peer observing it would find its own plans stale,
   * remake them above it, and each member's plans would keep outdating the
   * other's. A peer issuing below it is harmless: its phones then hold less than
   * our plans' version and take the planned list.
   */
  get publishedVersion(): number {
    return this.plansCurrent ? this.#beforePlan : this.#versions.last;
  }

  /**
   * A version seen elsewhere — a phone's keep-alive, a peer's load: every later
   * list is issued above it. False when ignored as too far ahead of the wall
   * clock for `source` (version-clock.ts).
   */
  observe(version: number, source: VersionSource = 'peer'): boolean {
    return this.#versions.observe(version, source);
  }

  /** Would {@link observe} take `version` from `source` now? */
  plausible(version: number, source: VersionSource = 'peer'): boolean {
    return this.#versions.plausible(version, source);
  }

  /**
   * The list for `phoneId`, re-issued above `held` when its version is not: for a
   * phone that must take our list (arriving from a failed peer) though it holds a
   * higher version from a peer whose clock ran ahead. Same content; the floor stays,
   * so phones already holding the list are not made to take it again.
   */
  above(phoneId: string, held: number): SignedList {
    const o = this.#overrides.get(phoneId);
    const entry = o === undefined ? this.#groupEntry : o.entry;
    if (entry.version <= held) {
      this.#versions.observe(held, 'phone');
      const version = this.#versions.issue();
      const fresh: Entry = { version, floor: entry.floor, reason: entry.reason, list: entry.list, signed: undefined };
      if (o === undefined) this.#groupEntry = fresh;
      else o.entry = fresh;
    }
    return this.forPhone(phoneId);
  }

  /** A bound signature of `entry` for `phone` with at least half its lifetime left. */
  #boundSig(entry: Entry, phone: string): BoundSig {
    const now = Math.floor(this.#clock.now());
    const cache = (entry.bound ??= new Map());
    const hit = cache.get(phone);
    if (hit !== undefined && hit.expires - now > LIST_LIFETIME_MS / 2) return hit;
    const expires = now + LIST_LIFETIME_MS;
    // `owns` as in the unbound body: without it the phone takes the list as its whole list and
    // drops the pointers it holds outside the group (a remote site; list-merge.ts, issue 15).
    const envelope = this.#sign({ version: entry.version, reason: entry.reason, list: entry.list, owns: this.#owns, phone, expires });
    const sig: BoundSig = { expires, envelope, envelopeJson: JSON.stringify(envelope) };
    if (hit === undefined && cache.size >= (entry.boundMax ?? BOUND_CACHE_MAX)) cache.delete(cache.keys().next().value!);
    cache.set(phone, sig);
    return sig;
  }

  /** Phones with their own list. */
  overridden(): IterableIterator<string> {
    return this.#overrides.keys();
  }

  /** True when `phoneId` has its own list. */
  hasOverride(phoneId: string): boolean {
    return this.#overrides.has(phoneId);
  }

  /**
   * Give one phone its own list (e.g. a rebalance reorder). Its version is
   * higher than anything issued before, so the phone accepts it. Offline peers
   * are still moved last. Returns the signed list to push.
   */
  setPhoneList(phoneId: string, list: readonly Pointer[], reason: PointerReason): SignedList {
    const base = list.map(copyPointer);
    const version = this.#issue();
    const entry: Entry = { version, floor: version, reason, list: this.#arrange(base), signed: undefined };
    this.#overrides.set(phoneId, { base, entry });
    return this.forPhone(phoneId);
  }

  /** Drop a phone's own list; it gets the group list again from the next change on. */
  clearPhoneList(phoneId: string): void {
    this.#overrides.delete(phoneId);
  }

  /** Number of overrides held (bounded: the rebalancer clears a phone's once it has left). */
  get overrides(): number {
    return this.#overrides.size;
  }

  /** Every version this book gives a list comes from here (version-clock.ts). */
  #issue(): number {
    return this.#versions.issue();
  }

  /** `list` with offline members moved to the end (relative order kept), cut to what a phone accepts. */
  #arrange(list: readonly Pointer[]): Pointer[] {
    return this.#arrangeWith(list, this.#offline);
  }

  #arrangeWith(list: readonly Pointer[], offline: ReadonlySet<string>): Pointer[] {
    const up = list.filter((p) => !offline.has(p.id));
    const down = list.filter((p) => offline.has(p.id));
    return [...up, ...down].slice(0, MAX_POINTERS).map(copyPointer);
  }

  #signed(entry: Entry): SignedList {
    if (entry.signed !== undefined) return entry.signed;
    const body: PointersBody = { version: entry.version, reason: entry.reason, list: entry.list, owns: this.#owns };
    const envelope = this.#sign(body);
    const envelopeJson = JSON.stringify(envelope);
    entry.signed = {
      version: entry.version,
      floor: entry.floor,
      reason: entry.reason,
      list: entry.list,
      envelope,
      envelopeJson,
      ackTailFull: `,"pointers":${envelopeJson},"pointersVersion":${entry.version}}`,
      ackTailShort: `,"pointersVersion":${entry.version}}`,
    };
    return entry.signed;
  }
}

/**
 * One phone's view of a list entry with `bind`: version, floor and the short ack
 * tail come from the entry; the envelope (and so the full tail) is signed for
 * this phone only when read.
 */
class BoundList implements SignedList {
  readonly version: number;
  readonly floor: number;
  readonly reason: PointerReason;
  readonly list: readonly Pointer[];
  readonly ackTailShort: string;
  readonly #sig: () => BoundSig;

  constructor(entry: Entry, sig: () => BoundSig) {
    this.#sig = sig;
    this.version = entry.version;
    this.floor = entry.floor;
    this.reason = entry.reason;
    this.list = entry.list;
    this.ackTailShort = `,"pointersVersion":${entry.version}}`;
  }

  get envelope(): Envelope {
    return this.#sig().envelope;
  }

  get envelopeJson(): string {
    return this.#sig().envelopeJson;
  }

  get ackTailFull(): string {
    return `,"pointers":${this.envelopeJson},"pointersVersion":${this.version}}`;
  }
}

/** A pointer's own fields (its `sip` too), so a list never shares objects with the config. */
const copyPointer = cleanPointer;
