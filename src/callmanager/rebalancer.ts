/**
 * The rebalancer of one call manager: keeps the group's view of loads, plans a
 * round every `periodMs` (see `rebalance.ts` for the rule and why it
 * converges), and sends the chosen phones a reordered list at no more than
 * `maxMovesPerSec`. Time is injected; the owner calls `tick(now)` and
 * `drain(now)` and performs `push` through its MQTT client.
 */
import type { Logger } from '../lib/log.js';
import type { LoadPayload } from '../protocol/types.js';
import { HOMED_INTERVALS, type HomedPhone } from './phone-table.js';
import { pickMoves, planRebalance, type MemberLoad, type Plan } from './rebalance.js';

export interface RebalancerOptions {
  self: string;
  /** Group members and their capacities (this CM included). */
  group: readonly { id: string; capacity: number }[];
  enabled: boolean;
  periodMs: number;
  threshold: number;
  maxMovesPerSec: number;
  cooldownMs: number;
  log: Logger;
  /** Phones homed here now. */
  homed(now: number): Iterable<HomedPhone>;
  /** True while a peer is known offline (its retained state). */
  isOffline(id: string): boolean;
  /** Send `phone` a list that puts `to` first; returns that list's version (see `onReport`). */
  push(phone: string, to: string): number | void;

  /** Let `phone` take the restored group list (see `restore`); returns the version it is released to. */
  release(phone: string): number | void;
  /**
   * The version of the list this member gives `phone` now (ListBook.forPhone): a
   * phone reporting it holds our own newer list (the group's changed again), so its
   * move goes on (see `onReport`).
   */
  listVersion?(phone: string): number;
  /** The move of `phone` is over (it left, or it stayed): drop its own list (ListBook.clearPhoneList). */
  forget?(phone: string): void;
  /** False while the broker is down: queued moves are dropped, not sent late from a stale plan. */
  connected?(): boolean;
}

/** A phone told to move is not picked again for this many periods. */
const MOVED_MEMORY_PERIODS = 20;
/**
 * A move not completed after this many periods — plus the time the phone's
 * departure takes to show in our table ({@link HOMED_INTERVALS} + 1 of its
 * keep-alive intervals) — is given up (the phone stayed).
 */
const INFLIGHT_PERIODS = 10;
/**
 * A phone released to its restored list falls back only after its own
 * hold-down (not known here; 120 s by default): its move counts as in flight
 * this many periods — unless its keep-alives report another list sooner
 * (`Rebalancer.onReport`).
 */
export const RELEASED_PERIODS = 40;
/** Periods to wait for a member that is not offline but has published no load yet. */
const INCOMPLETE_WAIT_PERIODS = 5;
/** Periods a completed move still counts for its target (its published load lags). */
const LEFT_GRACE_PERIODS = 3;

/** A move in flight: see `Rebalancer.#inflight`. */
interface Inflight {
  to: string;
  at: number;
  leftAt: number | null;
  released: boolean;
  intervalMs: number;
  /** Version of the list the move sent or released to the phone (undefined: not known, `onReport` ignores it). */
  version: number | undefined;
  /** The phone has reported holding that version. */
  taken: boolean;
}

export class Rebalancer {
  readonly #o: RebalancerOptions;
  readonly #loads = new Map<string, { phones: number; capacity: number }>();
  /**
   * phone → where and when it was told to move, and when it left our table.
   * A move counts for its target until the target has had time to publish a
   * load that includes it ({@link LEFT_GRACE_PERIODS} after it left us):
   * counting it twice for a moment only makes the next round move less.
   */
  readonly #inflight = new Map<string, Inflight>();
  /** Keep-alive interval of each homed phone at the last tick (for the in-flight window). */
  #intervals = new Map<string, number>();
  /** phone → when it was last told to move (bounded by MOVED_MEMORY_PERIODS). */
  readonly #moved = new Map<string, number>();
  /** Moves to send and restored lists to release (`release`: the phone will move to `to` itself), in order. */
  #queue: { phone: string; to: string; release?: boolean }[] = [];
  /** Our homed count at the last tick, and when it last grew. */
  #lastHomed: number | null = null;
  #lastGrewAt = -Infinity;
  /** When the set of members whose load we know last changed. */
  #viewChangedAt = -Infinity;
  #nextRoundAt = 0;
  /** Token bucket of moves; starts with one so a round begins at once. */
  #tokens = 1;
  #lastDrain: number | null = null;
  /** Moves sent, rounds planned, and the last plan, for metrics and tests. */
  moves = 0;
  rounds = 0;
  lastPlan: Plan | undefined;

  constructor(opts: RebalancerOptions) {
    this.#o = opts;
  }

  /** A member's retained load arrived at `now` (ms). */
  onLoad(id: string, load: LoadPayload, now: number): void {
    if (id === this.#o.self) return; // our own is measured, not read back
    if (!this.#loads.has(id)) this.#viewChangedAt = now;
    this.#loads.set(id, { phones: load.phones, capacity: load.capacity });
  }

  /** Phones still homed here that were told to leave. */
  get inflight(): number {
    let n = 0;
    for (const m of this.#inflight.values()) if (m.leftAt === null) n++;
    return n;
  }

  /** The moves in flight (still homed here), oldest first, at most `max`, for the console. */
  inflightMoves(now: number, max = 50): { phone: string; to: string; ageMs: number }[] {
    const out: { phone: string; to: string; ageMs: number }[] = [];
    for (const [phone, m] of this.#inflight) {
      if (out.length >= max) break;
      if (m.leftAt === null) out.push({ phone, to: m.to, ageMs: Math.max(0, now - m.at) });
    }
    return out;
  }

  get queued(): number {
    return this.#queue.length;
  }

  /** True while a move of `phone` is in flight (the owner then passes its keep-alives' versions to `onReport`). */
  awaits(phone: string): boolean {
    return this.#inflight.has(phone);
  }

  /**
   * A non-probe keep-alive of `phone`, homed here, says it holds list `version`.
   * A move in flight ends as soon as the phone holds a list other than the one
   * the move gave it — above it before it took ours, or any other once it had:
   * an operator's list or another member's push superseded ours, and the phone
   * goes where that list says, not to the move's target. Counted on as incoming
   * to the target until the time-out (a release's is {@link RELEASED_PERIODS}:
   * two minutes), the move skewed every plan meanwhile and left the group
   * unbalanced (the group simulation, seed 7189). A version this member gives
   * the phone now (`listVersion`: the group's list changed again) is still ours:
   * the move goes on.
   */
  onReport(phone: string, version: number, now: number): void {
    const m = this.#inflight.get(phone);
    if (m === undefined || m.version === undefined || version === m.version) {
      if (m !== undefined && version === m.version) m.taken = true;
      return;
    }
    if (!m.taken && version < m.version) return; // ours not taken yet: it still holds the list before it
    if (this.#o.listVersion?.(phone) === version) {
      m.version = version;
      m.taken = true;
      return;
    }
    this.#inflight.delete(phone);
    this.#o.forget?.(phone);
    this.#o.log.debug({ phone, to: m.to, version, ours: m.version, ageMs: now - m.at }, 'rebalance move superseded by another list');
  }

  /** Housekeeping and, when due, one planning round. */
  tick(now: number): void {
    const o = this.#o;
    const here = new Set<string>();
    const intervals = new Map<string, number>();
    for (const p of o.homed(now)) {
      here.add(p.phone);
      if (p.intervalMs !== undefined) intervals.set(p.phone, p.intervalMs);
    }
    this.#intervals = intervals;
    for (const [phone, m] of this.#inflight) {
      const iv = intervals.get(phone) ?? m.intervalMs;
      m.intervalMs = iv;
      // A move to a member that went offline is over: the list we give the phone now demotes it
      // (ListBook), so the phone is not on its way there. Counted on as incoming to that member once
      // it is back, the move skewed every plan until its time-out (the group simulation, seed
      // 700,037: a release to cm-a re-issued as cm-c's failover list while broker A was down kept
      // cm-c from moving its surplus for two minutes after cm-a returned).
      let over = false;
      if (o.isOffline(m.to)) over = true;
      else if (here.has(phone)) {
        // It left and is back (a fault, an operator's list moved it again): a new arrival, that move
        // is over — counted on as incoming to its target, it skewed every plan for the rest of the
        // released time-out (the group simulation, seed 100,095). Or it stayed — but only once its
        // departure would have shown in our table by now.
        over = m.leftAt !== null || now - m.at > (m.released ? RELEASED_PERIODS : INFLIGHT_PERIODS) * o.periodMs + (HOMED_INTERVALS + 1) * iv;
      } else if (m.leftAt === null) m.leftAt = now;
      else over = now - m.leftAt > LEFT_GRACE_PERIODS * o.periodMs;
      if (over) {
        this.#inflight.delete(phone);
        o.forget?.(phone);
      }
    }
    for (const [phone, at] of this.#moved) if (now - at > MOVED_MEMORY_PERIODS * o.periodMs) this.#moved.delete(phone);
    if (this.#lastHomed !== null && here.size > this.#lastHomed) this.#lastGrewAt = now;
    this.#lastHomed = here.size;
    if (!o.enabled || now < this.#nextRoundAt || this.#queue.length > 0) return;
    this.#nextRoundAt = now + o.periodMs;
    // While phones are still arriving here the group is in motion and the loads we read lag
    // behind: moving phones out now could undo another member's round. Wait until it settles.
    if (now - this.#lastGrewAt < o.cooldownMs) return;
    this.#round(now, here.size);
  }

  #round(now: number, homedHere: number): void {
    const o = this.#o;
    // Moves in flight count as done: off our load and onto their target's, until
    // the phone has left our table (by then the target's published load has it).
    const incoming = new Map<string, number>();
    for (const m of this.#inflight.values()) incoming.set(m.to, (incoming.get(m.to) ?? 0) + 1);
    const members: MemberLoad[] = [];
    let missing = 0;
    for (const g of o.group) {
      if (g.id === o.self) {
        members.push({ id: g.id, phones: Math.max(0, homedHere - this.inflight), capacity: g.capacity });
        continue;
      }
      const l = this.#loads.get(g.id);
      if (o.isOffline(g.id)) continue;
      if (l === undefined) {
        missing++;
        continue;
      }
      members.push({ id: g.id, phones: l.phones + (incoming.get(g.id) ?? 0), capacity: l.capacity > 0 ? l.capacity : g.capacity });
    }
    // A member that is up but has not published a load yet (it is just starting) would skew
    // every fair share: wait a few periods for it after the view last changed.
    if (missing > 0 && now - this.#viewChangedAt < INCOMPLETE_WAIT_PERIODS * o.periodMs) return;
    const plan = planRebalance(members, o.threshold);
    this.lastPlan = plan;
    o.log.debug({ members, spread: plan.spread, imbalanced: plan.imbalanced }, 'rebalance check');
    if (!plan.imbalanced) return;
    const exclude = new Set([...this.#inflight.keys(), ...this.#moved.keys()]);
    const picks = pickMoves(o.self, plan, o.homed(now), exclude);
    if (picks.length === 0) return;
    this.rounds++;
    this.#queue.push(...picks);
    this.#nextRoundAt = now + o.periodMs + o.cooldownMs;
    o.log.info(
      { spread: Math.round(plan.spread * 1000) / 1000, fair: plan.fair, transfers: plan.transfers.filter((t) => t.from === o.self), picked: picks.length },
      'rebalance round',
    );
  }

  /**
   * A peer came back: release the restored list to these phones at the move
   * rate (they fall back after their hold-down as it reaches them), before
   * any further planning.
   */
  restore(phones: readonly { phone: string; to: string }[]): void {
    const queued = new Set(this.#queue.map((m) => m.phone));
    for (const p of phones) if (!queued.has(p.phone)) this.#queue.push({ phone: p.phone, to: p.to, release: true });
  }

  /** Send queued moves at no more than maxMovesPerSec. Returns how many are still queued. */
  drain(now: number): number {
    const o = this.#o;
    if (o.connected !== undefined && !o.connected()) {
      // A move sent now would wait in the client's queue and arrive from a plan the
      // group has moved past: drop the moves (releases only mark phones, they stay).
      const dropped = this.#queue.filter((m) => m.release !== true).length;
      if (dropped > 0) {
        this.#queue = this.#queue.filter((m) => m.release === true);
        o.log.info({ dropped }, 'broker down: queued rebalance moves dropped');
      }
      this.#lastDrain = now;
      return this.#queue.length;
    }
    const elapsed = this.#lastDrain === null ? 0 : Math.max(0, now - this.#lastDrain);
    this.#lastDrain = now;
    this.#tokens = Math.min(Math.max(1, o.maxMovesPerSec), this.#tokens + (elapsed / 1000) * o.maxMovesPerSec);
    const had = this.#queue.length;
    while (this.#queue.length > 0 && this.#tokens >= 1) {
      const m = this.#queue.shift()!;
      this.#tokens -= 1;
      if (m.release === true) {
        const version = o.release(m.phone);
        // It will fall back to the first pointer of its restored list: count it for that member now.
        if (m.to !== o.self) this.#inflight.set(m.phone, { to: m.to, at: now, leftAt: null, released: true, intervalMs: this.#intervals.get(m.phone) ?? 0, version: version ?? undefined, taken: false });
        continue;
      }
      if (o.isOffline(m.to)) continue; // target died meanwhile: the next round re-plans
      const version = o.push(m.phone, m.to);
      this.#inflight.set(m.phone, { to: m.to, at: now, leftAt: null, released: false, intervalMs: this.#intervals.get(m.phone) ?? 0, version: version ?? undefined, taken: false });
      this.#moved.set(m.phone, now);
      this.moves++;
    }
    // A round just finished: cool down before planning again, so published loads catch up.
    if (had > 0 && this.#queue.length === 0) this.#nextRoundAt = Math.max(this.#nextRoundAt, now + o.cooldownMs);
    return this.#queue.length;
  }
}
