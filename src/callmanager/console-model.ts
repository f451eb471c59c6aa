/**
 * What the operator console (issue 12, shared/CONTRACT.md `GET /`) shows: the
 * group as this call manager sees it, the most recent rehomes, and what it
 * heard of each phone. Pure state from inputs: messages arrive already read
 * off the network (untrusted: strings are cut to a length, numbers checked),
 * time comes from the injected clock, and memory is bounded whatever the
 * fleet does (a ring of rehomes, at most {@link PHONES_MAX} phones).
 *
 * A phone's `rehomed` events are its own word (the ACL lets every phone
 * publish on its own event topic), so no phone may speak for more than its
 * share (issue 15 §5: one confined phone forged 60 and took the whole recent
 * list and `ipphone_cm_rehomes_total` from 2 to 62). Per phone, a token
 * bucket admits {@link REHOME_BURST} rehomes at once and one more every
 * {@link REHOME_REFILL_MS} — a real phone's failover and its fallback after
 * the hold-down both pass — and the rest are counted as limited, not shown
 * and not counted as rehomes. And the recent list holds at most
 * {@link REHOMES_PER_PHONE} of one phone: its newest push out its own oldest,
 * never another phone's.
 */
import type { Clock } from '../lib/clock.js';
import { REHOME_REASONS } from '../protocol/types.js';

/** Rehomes kept for the page (newest first). */
export const REHOMES_MAX = 50;
/** Phones whose status and events are kept; the least recently heard is dropped first. */
export const PHONES_MAX = 4096;
/** Events kept per phone. */
export const EVENTS_PER_PHONE = 5;
/** Rehomes of one phone kept in the recent list (its newest replace its oldest). */
export const REHOMES_PER_PHONE = 2;
/** Rehomes one phone may report at once before its bucket is empty. */
export const REHOME_BURST = 2;
/** One more rehome of a phone is believed every this many ms (monotonic). */
export const REHOME_REFILL_MS = 30_000;
/** Phones whose rehome buckets are held; the least recently heard is dropped first (it starts full again). */
export const REHOME_BUCKETS_MAX = 8192;
/** Longest string kept from the network (phone ids, reasons, member ids). */
export const TEXT_MAX = 128;
/** The rehome summary counts the believed rehomes of this long (ms, monotonic), in {@link SUMMARY_SLOT_MS} steps. */
export const SUMMARY_WINDOW_MS = 10 * 60_000;
/** Granularity of the summary's window: a rehome leaves the summary between WINDOW and WINDOW + SLOT after it. */
export const SUMMARY_SLOT_MS = 60_000;
const KNOWN_REASONS: ReadonlySet<string> = new Set(REHOME_REASONS);

/** One group member as shown. */
export interface MemberView {
  id: string;
  online: boolean;
  /** True for the call manager serving the page. */
  self: boolean;
  /**
   * Phones it serves now: from its last load (or measured, for this one); null before any load
   * was seen, and null while it is offline — an offline member serves no phone, and the phones it
   * had are counted again where they rehome (issue 17: counted twice, the group looked twice its size).
   */
  phones: number | null;
  /** The phones of its last load or measure, kept while it is offline to show what it had (stale, counted nowhere). */
  lastPhones: number | null;
  capacity: number;
  servicesRps: number | null;
  /** phones ÷ capacity, 0…(more than 1 when overloaded); null while unknown or offline. */
  load: number | null;
  /** Wall time (ms since the epoch) its load was last seen or measured; null before. */
  loadAt: number | null;
}

/** A rebalance move this call manager sent and the phone has not yet completed. */
export interface MoveView {
  phone: string;
  to: string;
  ageMs: number;
}

/** One completed rehome, from a phone's `rehomed` event. */
export interface RehomeView {
  /** Wall time it was heard (ms since the epoch). */
  at: number;
  phone: string;
  from: string | null;
  to: string;
  reason: string;
  detectMs: number | null;
  rehomeMs: number | null;
}

export interface PhoneEventView {
  at: number;
  type: string;
  /** The event as received (strings cut to {@link TEXT_MAX}), for the lookup box. */
  detail: Record<string, string | number | boolean | null>;
}

/** What the console knows of one phone (its retained status, its recent events). */
export interface PhoneView {
  id: string;
  status: Record<string, string | number | boolean | null> | null;
  statusAt: number | null;
  events: PhoneEventView[];
}

/** The group's totals: over the members online only (an offline member's last figure is stale). */
export interface GroupTotals {
  members: number;
  online: number;
  /** Phones served by the online members whose load is known. */
  phones: number;
  /** Capacity of the online members. */
  capacity: number;
}

/** The group part of the page: members and moves (sent as one `members` change). */
export interface GroupView {
  cmId: string;
  members: MemberView[];
  totals: GroupTotals;
  moves: MoveView[];
  movesQueued: number;
}

/**
 * Believed rehomes of the last {@link SUMMARY_WINDOW_MS}, counted by reason (issue 17: a
 * 50-phone failover was 50 rows and no summary). Reasons outside the protocol's list count as
 * `other`. `byReason` is sorted by count, largest first, then by name.
 */
export interface RehomeSummary {
  windowMs: number;
  total: number;
  byReason: { reason: string; count: number }[];
}

/** Everything the page starts from (the `snapshot`). */
export interface ConsoleSnapshot extends GroupView {
  at: number;
  rehomes: RehomeView[];
  summary: RehomeSummary;
}

/** A peer's member input: its state and its last load. */
interface PeerRow {
  online: boolean;
  phones: number | null;
  servicesRps: number | null;
  loadAt: number | null;
}

/** Measured by the running call manager itself, at each refresh. */
export interface SelfMeasure {
  connected: boolean;
  phones: number;
  servicesRps: number;
}

type Flat = Record<string, string | number | boolean | null>;

/** A string from the network: cut to {@link TEXT_MAX}, control characters replaced. */
export function cleanText(v: unknown): string | null {
  if (typeof v !== 'string') return null;
  // eslint-disable-next-line no-control-regex
  return v.slice(0, TEXT_MAX).replace(/[\u0000-\u001f\u007f]/g, '\uFFFD');
}

function finite(v: unknown): number | null {
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** The scalar fields of an untrusted JSON object, strings cleaned; at most 32 of them. */
function flat(o: Record<string, unknown>): Flat {
  const out: Flat = {};
  let n = 0;
  for (const [k, v] of Object.entries(o)) {
    if (n++ >= 32) break;
    const key = cleanText(k)!;
    if (typeof v === 'string') out[key] = cleanText(v);
    else if (typeof v === 'number') out[key] = finite(v);
    else if (typeof v === 'boolean' || v === null) out[key] = v;
    else if (Array.isArray(v)) out[key] = `[${v.length} items]`;
    else out[key] = '{…}';
  }
  return out;
}

export interface ConsoleModelOptions {
  cmId: string;
  /** Every member in group order, with its configured capacity. */
  group: readonly { id: string; capacity: number }[];
  /** Wall time for `at` fields; monotonic time for the per-phone rehome limit. */
  clock: Pick<Clock, 'now' | 'elapsed'>;
}

export class ConsoleModel {
  readonly #o: ConsoleModelOptions;
  readonly #peers = new Map<string, PeerRow>();
  #self: SelfMeasure = { connected: false, phones: 0, servicesRps: 0 };
  #selfAt: number | null = null;
  #moves: MoveView[] = [];
  #queued = 0;
  readonly #rehomes: RehomeView[] = [];
  /** Insertion order = least recently heard first (re-inserted on each message). */
  readonly #phones = new Map<string, PhoneView>();
  /** Per-phone rehome buckets: tokens left and when last refilled (monotonic); least recently heard first. */
  readonly #rehomeBuckets = new Map<string, { tokens: number; at: number }>();
  /** `rehomed` events not believed: over their phone's limit ({@link REHOME_BURST}, {@link REHOME_REFILL_MS}). */
  rehomesLimited = 0;
  /** Believed rehomes per reason, per {@link SUMMARY_SLOT_MS} slot of monotonic time (oldest first; bounded by the window). */
  readonly #summarySlots: { slot: number; counts: Map<string, number> }[] = [];

  constructor(opts: ConsoleModelOptions) {
    this.#o = opts;
    for (const g of opts.group) if (g.id !== opts.cmId) this.#peers.set(g.id, { online: true, phones: null, servicesRps: null, loadAt: null });
  }

  /** This call manager's own figures, measured now. */
  measureSelf(m: SelfMeasure): void {
    this.#self = { ...m };
    this.#selfAt = this.#o.clock.now();
  }

  /** The peers the call manager counts offline now (verified states, unreachable brokers). */
  setOffline(offline: ReadonlySet<string>): void {
    for (const [id, row] of this.#peers) row.online = !offline.has(id);
  }

  /** A peer's load (already decoded). Unknown ids are ignored. */
  peerLoad(id: string, load: { phones: number; servicesRps: number }): void {
    const row = this.#peers.get(id);
    if (row === undefined) return;
    row.phones = load.phones;
    row.servicesRps = load.servicesRps;
    row.loadAt = this.#o.clock.now();
  }

  /** The rebalancer's moves in flight and queue length. */
  setMoves(moves: readonly MoveView[], queued: number): void {
    this.#moves = moves.slice(0, 50).map((m) => ({ ...m }));
    this.#queued = queued;
  }

  /**
   * A phone's event (`P/phone/{id}/event`, untrusted JSON). Returns the rehome
   * it records, if it was a `rehomed` event, for the live feed.
   */
  phoneEvent(phoneId: string, payload: unknown): RehomeView | undefined {
    const id = cleanText(phoneId);
    if (id === null || id === '' || typeof payload !== 'object' || payload === null || Array.isArray(payload)) return undefined;
    const o = payload as Record<string, unknown>;
    const at = this.#o.clock.now();
    const type = cleanText(o.type) ?? '(none)';
    const phone = this.#phone(id);
    phone.events.unshift({ at, type, detail: flat(o) });
    if (phone.events.length > EVENTS_PER_PHONE) phone.events.length = EVENTS_PER_PHONE;
    if (type !== 'rehomed') return undefined;
    if (!this.#takeRehome(id)) {
      this.rehomesLimited++;
      return undefined;
    }
    const r: RehomeView = { at, phone: id, from: cleanText(o.from), to: cleanText(o.to) ?? '?', reason: cleanText(o.reason) ?? '?', detectMs: finite(o.detectMs), rehomeMs: finite(o.rehomeMs) };
    this.#rehomes.unshift(r);
    let own = 0;
    for (let i = 0; i < this.#rehomes.length; i++) {
      if (this.#rehomes[i]!.phone !== id || ++own <= REHOMES_PER_PHONE) continue;
      this.#rehomes.splice(i, 1);
      break;
    }
    if (this.#rehomes.length > REHOMES_MAX) this.#rehomes.length = REHOMES_MAX;
    this.#countRehome(r.reason);
    return r;
  }

  /** A phone's retained status (untrusted JSON); an empty retained message clears it. */
  phoneStatus(phoneId: string, payload: unknown): void {
    const id = cleanText(phoneId);
    if (id === null || id === '') return;
    if (payload === null) {
      const p = this.#phones.get(id);
      if (p !== undefined) p.status = null;
      return;
    }
    if (typeof payload !== 'object' || Array.isArray(payload)) return;
    const phone = this.#phone(id);
    phone.status = flat(payload as Record<string, unknown>);
    phone.statusAt = this.#o.clock.now();
  }

  /** What is known of one phone, or undefined. */
  phone(id: string): PhoneView | undefined {
    const p = this.#phones.get(id);
    return p === undefined ? undefined : structuredClone(p);
  }

  /** Phones held (for bounded-memory checks). */
  get phonesKnown(): number {
    return this.#phones.size;
  }

  /** Members in group order, and the moves. */
  group(): GroupView {
    const o = this.#o;
    const members = o.group.map((g): MemberView => {
      if (g.id === o.cmId) {
        const s = this.#self;
        const phones = s.connected ? s.phones : null;
        return { id: g.id, online: s.connected, self: true, phones, lastPhones: s.phones, capacity: g.capacity, servicesRps: s.connected ? s.servicesRps : null, load: phones === null ? null : phones / g.capacity, loadAt: this.#selfAt };
      }
      const r = this.#peers.get(g.id)!;
      const phones = r.online ? r.phones : null;
      return { id: g.id, online: r.online, self: false, phones, lastPhones: r.phones, capacity: g.capacity, servicesRps: r.online ? r.servicesRps : null, load: phones === null ? null : phones / g.capacity, loadAt: r.loadAt };
    });
    const online = members.filter((m) => m.online);
    const totals: GroupTotals = { members: members.length, online: online.length, phones: online.reduce((n, m) => n + (m.phones ?? 0), 0), capacity: online.reduce((n, m) => n + m.capacity, 0) };
    return { cmId: o.cmId, members, totals, moves: this.#moves.map((m) => ({ ...m })), movesQueued: this.#queued };
  }

  /** Believed rehomes of the last {@link SUMMARY_WINDOW_MS} by reason. */
  summary(): RehomeSummary {
    this.#expireSlots();
    const counts = new Map<string, number>();
    for (const s of this.#summarySlots) for (const [reason, n] of s.counts) counts.set(reason, (counts.get(reason) ?? 0) + n);
    const byReason = [...counts].map(([reason, count]) => ({ reason, count })).sort((a, b) => b.count - a.count || (a.reason < b.reason ? -1 : a.reason > b.reason ? 1 : 0));
    return { windowMs: SUMMARY_WINDOW_MS, total: byReason.reduce((n, r) => n + r.count, 0), byReason };
  }

  /** The whole page state. */
  snapshot(): ConsoleSnapshot {
    return { ...this.group(), at: this.#o.clock.now(), rehomes: this.#rehomes.map((r) => ({ ...r })), summary: this.summary() };
  }

  #countRehome(reason: string): void {
    const key = KNOWN_REASONS.has(reason) ? reason : 'other';
    const slot = Math.floor(this.#o.clock.elapsed() / SUMMARY_SLOT_MS);
    let last = this.#summarySlots.at(-1);
    if (last === undefined || last.slot !== slot) this.#summarySlots.push((last = { slot, counts: new Map() }));
    last.counts.set(key, (last.counts.get(key) ?? 0) + 1);
    this.#expireSlots();
  }

  /** Drop the slots wholly older than the window. */
  #expireSlots(): void {
    const oldest = Math.floor((this.#o.clock.elapsed() - SUMMARY_WINDOW_MS) / SUMMARY_SLOT_MS);
    while (this.#summarySlots.length > 0 && this.#summarySlots[0]!.slot < oldest) this.#summarySlots.shift();
  }

  /** True when phone `id` may report one more rehome now (and takes it from its bucket). */
  #takeRehome(id: string): boolean {
    const now = this.#o.clock.elapsed();
    const b = this.#rehomeBuckets.get(id) ?? { tokens: REHOME_BURST, at: now };
    this.#rehomeBuckets.delete(id);
    b.tokens = Math.min(REHOME_BURST, b.tokens + Math.max(0, now - b.at) / REHOME_REFILL_MS);
    b.at = now;
    const ok = b.tokens >= 1;
    if (ok) b.tokens -= 1;
    this.#rehomeBuckets.set(id, b);
    if (this.#rehomeBuckets.size > REHOME_BUCKETS_MAX) this.#rehomeBuckets.delete(this.#rehomeBuckets.keys().next().value!);
    return ok;
  }

  /** The row of `id`, made the most recently heard (the oldest dropped beyond {@link PHONES_MAX}). */
  #phone(id: string): PhoneView {
    let p = this.#phones.get(id);
    if (p !== undefined) this.#phones.delete(id);
    else p = { id, status: null, statusAt: null, events: [] };
    this.#phones.set(id, p);
    if (this.#phones.size > PHONES_MAX) this.#phones.delete(this.#phones.keys().next().value!);
    return p;
  }
}
