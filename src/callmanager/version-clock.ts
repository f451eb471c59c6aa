/**
 * Where every list version a call manager issues comes from: a hybrid logical
 * clock (Kulkarni et al., "Logical Physical Clocks", 2014) in one number.
 *
 *     issue()    → last = next(max(last + 1, wall ms)) in this member's residue class
 *     observe(v) → last = max(last, v)            (bounded, see below)
 *
 * Why: phones refuse any list whose version is not above the one they hold. With
 * plain wall-clock versions a call manager whose clock is behind its peers' issues
 * lists below what their phones hold — every rebalance push refused and re-sent
 * while the skew lasts, a failover demotion taken for "already held". Observing
 * what phones report (`pointersVersion` in every keep-alive) and what peers have
 * issued (`version` in their load) puts every new version above everything this
 * call manager has seen, whatever its clock says; the wall clock only keeps the
 * numbers near real time (so an operator's `ipphone-admin pointers`, versioned by
 * its own clock, still orders sensibly against them, and versions from before an
 * upgrade stay comparable).
 *
 * Why not a counter with an epoch: a counter needs every member to agree on the
 * epoch and a phone to compare two numbers; and the first list of a new epoch
 * would have to win over a higher counter of the old one. The HLC needs no
 * agreement and keeps the single-integer `version` of the contract.
 *
 * Residue classes: two members observing the same maximum would otherwise issue
 * the same next number for different lists, and a phone holding one would take
 * the other for a replay (the responder also reads "holds version V" as "holds
 * this list"). Member `slot` of a group of `slots` issues only numbers ≡ slot
 * (mod slots): versions of different members never collide (members must agree
 * on the group order — they do, it is the config's priority order).
 *
 * Bound (issue 15): nothing moves the versions past this host's WALL CLOCK + a day,
 * measured from the wall clock alone. The old check was measured from
 * `max(last, wall)`, so every report could add another day: a confined phone
 * sending 30 keep-alives, each a day further ahead, dragged a call manager's next
 * list 30 days ahead, and its peers — judging that implausible — split from it.
 * Now there are three limits, all from `wall = clock.now()`:
 *
 * - {@link MAX_AHEAD_MS} (24 h, the contract): no version is ISSUED above
 *   `wall + 24 h`. If the clock already stands there (a peer reported the very
 *   edge and an hour of versions was issued above it), `issue()` returns the
 *   ceiling's number again rather than cross it: the contract is kept, the list
 *   may be refused as "not newer" by phones holding that number, `clamped` counts it.
 * - {@link PEER_AHEAD_MS} (23 h): a peer's version (its load) is observed up to
 *   `wall + 23 h`, leaving an hour of versions (3.6 million) below the ceiling.
 * - {@link PHONE_AHEAD_MS} (12 h): a phone's report is observed up to
 *   `wall + 12 h`. A phone is the least trusted source; a peer dragged to the
 *   phones' limit is still within ours whenever the two clocks are less than
 *   11 h apart, so a dragged member never splits from its group.
 *
 * A day is far beyond the minutes NTP-less servers drift; what a phone can do now
 * is move a group's versions at most 12 h ahead of real time — once, not a day per
 * message. What it reports is further rate-limited per phone (report-limiter.ts).
 */
import type { Clock } from '../lib/clock.js';

/** No version is issued more than this ahead of the wall clock (ms; the contract's 24 h). */
export const MAX_AHEAD_MS = 24 * 3600_000;
/** A peer's version is observed up to this ahead of the wall clock (ms). */
export const PEER_AHEAD_MS = MAX_AHEAD_MS - 3600_000;
/** A phone's version is observed up to this ahead of the wall clock (ms). */
export const PHONE_AHEAD_MS = MAX_AHEAD_MS / 2;

/** Who reported a version: the bound it is judged by. */
export type VersionSource = 'phone' | 'peer';

export interface VersionClockOptions {
  clock: Pick<Clock, 'now'>;
  /**
   * Versions issued are above this (the configured `pointersVersion`, a persisted
   * lease) — unless it is beyond `wall + maxAheadMs`: then from the ceiling.
   */
  start: number;
  /** This member's index in the group (default 0). */
  slot?: number;
  /** Group size (default 1: no residue classes). */
  slots?: number;
  /** See the file comment; default {@link MAX_AHEAD_MS}. The observation bounds scale with it. */
  maxAheadMs?: number;
  /** Called with every new `last` (issued or observed): persistence reserves ahead of it. */
  onAdvance?: (last: number) => void;
}

export class VersionClock {
  readonly #clock: Pick<Clock, 'now'>;
  readonly #slot: number;
  readonly #slots: number;
  readonly #maxAhead: number;
  readonly #ahead: Record<VersionSource, number>;
  readonly #onAdvance: ((last: number) => void) | undefined;
  #last: number;
  /** Observations ignored for being too far ahead. */
  ignored = 0;
  /** Versions issued at the ceiling (wall + maxAheadMs) instead of above it. */
  clamped = 0;

  constructor(o: VersionClockOptions) {
    this.#clock = o.clock;
    this.#slots = Math.max(1, Math.floor(o.slots ?? 1));
    this.#slot = ((Math.floor(o.slot ?? 0) % this.#slots) + this.#slots) % this.#slots;
    this.#maxAhead = o.maxAheadMs ?? MAX_AHEAD_MS;
    this.#ahead = { peer: (this.#maxAhead * PEER_AHEAD_MS) / MAX_AHEAD_MS, phone: (this.#maxAhead * PHONE_AHEAD_MS) / MAX_AHEAD_MS };
    this.#onAdvance = o.onAdvance;
    this.#last = Math.min(Math.max(0, Math.floor(o.start)), this.#ceiling());
  }

  /** The highest version this call manager may issue now. */
  #ceiling(): number {
    return Math.floor(this.#clock.now()) + this.#maxAhead;
  }

  /** The highest version issued or observed. */
  get last(): number {
    return this.#last;
  }

  /**
   * A new version, above every version issued or observed so far — and never
   * above `wall + maxAheadMs` (then the ceiling's number, counted in `clamped`).
   */
  issue(): number {
    const ceiling = this.#ceiling();
    const base = Math.max(this.#last + 1, Math.floor(this.#clock.now()));
    let v = base + this.#up(base);
    if (v > ceiling) {
      // The largest number of our residue class at or below the ceiling.
      v = ceiling - ((((ceiling - this.#slot) % this.#slots) + this.#slots) % this.#slots);
      this.clamped++;
    }
    if (v > this.#last) {
      this.#last = v;
      this.#onAdvance?.(v);
    }
    return v;
  }

  /** Steps from `n` up to the next number of this member's residue class. */
  #up(n: number): number {
    return (this.#slot - (n % this.#slots) + this.#slots) % this.#slots;
  }

  /** True when `v` is a version this clock would observe from `source` now (a safe integer within its bound). */
  plausible(v: number, source: VersionSource = 'peer'): boolean {
    return Number.isSafeInteger(v) && v <= Math.floor(this.#clock.now()) + this.#ahead[source];
  }

  /**
   * Take note of a version seen elsewhere (a phone's, a peer's). Returns false
   * when it was ignored for being further ahead of the WALL CLOCK than `source`
   * may report ({@link PHONE_AHEAD_MS}, {@link PEER_AHEAD_MS}).
   */
  observe(v: number, source: VersionSource = 'peer'): boolean {
    if (!this.plausible(v, source)) {
      this.ignored++;
      return false;
    }
    if (v <= this.#last) return true;
    this.#last = v;
    this.#onAdvance?.(v);
    return true;
  }
}
