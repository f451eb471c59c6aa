import type { Clock, TimerHandle } from '../lib/clock.js';
import type { ListBook } from './list-book.js';

/**
 * Signs failover lists ahead, while idle (issue 18; ListBook's failover plans).
 *
 * When a peer dies every phone it had arrives here at once, each needing a list
 * signed for it: thousands of Ed25519 signatures in the very second the group
 * is judged by. Which phones a peer has is in their retained `status` (`home`),
 * which the call manager reads anyway (the console's subscription); this class
 * keeps phone → home from them and, in small slices, has the book sign each
 * such phone's list for its home's failure — so that at the will the ack and the
 * push are only written.
 *
 * Bounds: at most {@link TRACK_MAX} phones tracked (more statuses are ignored:
 * an open broker lets anyone publish statuses, and each costs a signature here),
 * at most {@link SLICE_SIGNATURES} signatures per {@link SLICE_MS} — a fraction of
 * a core — and plans remade at most once per {@link REPLAN_QUIET_MS} after the
 * state they were made for changed (a failover, a rebalance move, a version
 * observed above the plans'), so nothing is signed ahead in the middle of a
 * change. A phone the plans missed is signed when it arrives, as before.
 */

/** Phones tracked from statuses at most. */
export const TRACK_MAX = 100_000;
/** Signatures per slice at most. */
export const SLICE_SIGNATURES = 50;
/** ms between slices while there is work. */
export const SLICE_MS = 20;
/** ms between checks while there is none. */
export const IDLE_MS = 1000;
/** ms the plans must have been stale (nothing planned against a moving state) before they are remade. */
export const REPLAN_QUIET_MS = 5000;

export interface PresignerOptions {
  book: ListBook;
  /** This call manager's id (its own phones are planned only without lazy restore). */
  self: string;
  /** The group's other members. */
  peers: readonly string[];
  clock: Clock;
  /** Overrides for tests. */
  trackMax?: number;
  sliceSignatures?: number;
}

export class Presigner {
  readonly #o: PresignerOptions;
  readonly #peers: ReadonlySet<string>;
  /** Phone → the call manager its last status said it is homed on. */
  readonly #home = new Map<string, string>();
  /** Phones still to visit in this pass (snapshot of the tracked ones). */
  #pass: string[] = [];
  #at = 0;
  /** A status changed since the pass began: another pass after this one. */
  #dirty = false;
  #staleSince: number | undefined;
  #timer: TimerHandle | undefined;
  /** Signatures made ahead so far (all passes). */
  signed = 0;
  /** Statuses ignored because {@link TRACK_MAX} phones are tracked. */
  ignored = 0;

  constructor(o: PresignerOptions) {
    this.#o = o;
    this.#peers = new Set(o.peers);
  }

  /** Phones tracked now. */
  get tracked(): number {
    return this.#home.size;
  }

  /**
   * A phone's retained status (`P/phone/{phone}/status`): note its home. A status
   * that is not an online one with a `home` forgets the phone. Only the `home`
   * field is read (the console parses the rest).
   */
  onStatus(phone: string, payload: Buffer): void {
    const text = payload.length > 4096 ? '' : payload.toString('utf8');
    const home = /"online"\s*:\s*true/.test(text) ? /"home"\s*:\s*"([^"\\]{1,128})"/.exec(text)?.[1] : undefined;
    const was = this.#home.get(phone);
    if (home === undefined) {
      if (was !== undefined) this.#home.delete(phone);
      return;
    }
    if (was === home) return;
    if (was === undefined && this.#home.size >= (this.#o.trackMax ?? TRACK_MAX)) {
      this.ignored++;
      return;
    }
    this.#home.set(phone, home);
    this.#dirty = true;
  }

  start(): void {
    this.#schedule(IDLE_MS);
  }

  stop(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  #schedule(ms: number): void {
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#schedule(this.slice() ? SLICE_MS : IDLE_MS);
    }, ms);
  }

  /**
   * One slice of work: remake stale plans when they have been stale long enough,
   * then sign up to the slice's budget. True while work is left.
   */
  slice(): boolean {
    const book = this.#o.book;
    const now = this.#o.clock.elapsed();
    if (!book.plansCurrent) {
      this.#staleSince ??= now;
      if (now - this.#staleSince < REPLAN_QUIET_MS) return false;
      if (!book.planFailover()) return false;
      this.#staleSince = undefined;
      this.#pass = [];
      this.#at = 0;
      this.#dirty = true;
    }
    if (this.#at >= this.#pass.length) {
      if (!this.#dirty) return false;
      this.#dirty = false;
      this.#pass = [...this.#home.keys()];
      this.#at = 0;
    }
    const budget = this.#o.sliceSignatures ?? SLICE_SIGNATURES;
    const ownToo = !book.lazyRestore;
    const offline = book.offline;
    let made = 0;
    // Visits are cheap (a map lookup); a slice visits at most 20 phones a signature.
    for (let visits = 0; made < budget && this.#at < this.#pass.length && visits < budget * 20; visits++) {
      const phone = this.#pass[this.#at++]!;
      const home = this.#home.get(phone);
      if (home === undefined) continue;
      if (this.#peers.has(home)) {
        if (!offline.has(home) && book.presign(home, phone)) made++;
      } else if (ownToo && home === this.#o.self) {
        // Without lazy restore our own phones take every change too: theirs for each peer's failure.
        for (const peer of this.#peers) if (!offline.has(peer) && book.presign(peer, phone)) made++;
      }
    }
    this.signed += made;
    return this.#at < this.#pass.length || this.#dirty;
  }
}
