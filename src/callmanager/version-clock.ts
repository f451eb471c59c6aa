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
 * Bound: an observation more than `maxAheadMs` above `max(last, wall)` is ignored
 * (reported false): a phone or peer cannot push the clock to 2^53 and freeze every
 * later version. The bound is a day — far beyond the minutes NTP-less servers drift.
 */
import type { Clock } from '../lib/clock.js';

/** Default bound of an accepted observation ahead of this host's time (ms). */
export const MAX_OBSERVED_AHEAD_MS = 24 * 3600_000;

export interface VersionClockOptions {
  clock: Pick<Clock, 'now'>;
  /** Versions issued are above this (the configured `pointersVersion`, a persisted lease). */
  start: number;
  /** This member's index in the group (default 0). */
  slot?: number;
  /** Group size (default 1: no residue classes). */
  slots?: number;
  /** See the file comment; default {@link MAX_OBSERVED_AHEAD_MS}. */
  maxAheadMs?: number;
  /** Called with every new `last` (issued or observed): persistence reserves ahead of it. */
  onAdvance?: (last: number) => void;
}

export class VersionClock {
  readonly #clock: Pick<Clock, 'now'>;
  readonly #slot: number;
  readonly #slots: number;
  readonly #maxAhead: number;
  readonly #onAdvance: ((last: number) => void) | undefined;
  #last: number;
  /** Observations ignored for being too far ahead. */
  ignored = 0;

  constructor(o: VersionClockOptions) {
    this.#clock = o.clock;
    this.#slots = Math.max(1, Math.floor(o.slots ?? 1));
    this.#slot = ((Math.floor(o.slot ?? 0) % this.#slots) + this.#slots) % this.#slots;
    this.#maxAhead = o.maxAheadMs ?? MAX_OBSERVED_AHEAD_MS;
    this.#onAdvance = o.onAdvance;
    this.#last = Math.max(0, Math.floor(o.start));
  }

  /** The highest version issued or observed. */
  get last(): number {
    return this.#last;
  }

  /** A new version, above every version issued or observed so far. */
  issue(): number {
    const base = Math.max(this.#last + 1, Math.floor(this.#clock.now()));
    const v = base + ((this.#slot - (base % this.#slots) + this.#slots) % this.#slots);
    this.#last = v;
    this.#onAdvance?.(v);
    return v;
  }

  /**
   * Take note of a version seen elsewhere (a phone's, a peer's). Returns false
   * when it was ignored for being more than `maxAheadMs` ahead.
   */
  observe(v: number): boolean {
    if (v <= this.#last) return true;
    if (v > Math.max(this.#last, Math.floor(this.#clock.now())) + this.#maxAhead || !Number.isSafeInteger(v)) {
      this.ignored++;
      return false;
    }
    this.#last = v;
    this.#onAdvance?.(v);
    return true;
  }
}
