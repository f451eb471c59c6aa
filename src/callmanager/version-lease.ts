/**
 * Keeps a call manager's list versions growing across restarts: a persisted
 * high-water mark ("lease"), as database sequences cache a block of numbers.
 *
 * The state directory holds `{stateDir}/versions-{cmId}.a|b` (store/ab-slots.ts)
 * with `{ "reserved": R }`: no version above R was issued by an earlier run. A new
 * run starts above R. While it runs, whenever its last version comes within
 * half a lease of R, a new R = last + LEASE is written (in the background, one
 * write at a time). So a restart — a crash included — never issues below its
 * previous run, and flash sees about one write per half lease (30 s of versions
 * tracking the clock, or 30,000 versions in a burst), not one per list. A run
 * that outpaces its write keeps issuing (refusing service would be worse) and
 * says so in the log.
 *
 * A reservation beyond `wall + 24 h + LEASE` at start cannot have come from
 * versions this call manager may issue (version-clock.ts: never above wall +
 * 24 h): it was written while versions were dragged ahead (before issue 15's
 * fix) or while this host's clock ran far ahead. It is discarded, with a
 * warning: carrying it forward would keep every later version beyond the
 * contract's bound for as long as the clock takes to catch up. (Phones that
 * already hold such versions are brought back with `ipphone-admin pointers
 * --rebase`, docs/operations.md.)
 *
 * Without a usable default directory (stateDir null, not running as the unit)
 * the lease starts at 0 with a warning: the clock alone then orders restarts,
 * as before — the boot sequence makes the same choice (boot-seq.ts).
 */
import { errorMessage, IpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { AbSlots, slotInteger } from '../store/ab-slots.js';
import type { DurableFs } from '../store/durable-file.js';
import { DEFAULT_CM_STATE_DIR } from '../config/cm-config.js';
import { MAX_AHEAD_MS } from './version-clock.js';

/** Versions reserved by one write (ms of wall clock, or versions). */
export const VERSION_LEASE = 60_000;

const parse = (payload: Buffer): number | null => slotInteger(payload, 'reserved', 0);

export interface VersionLeaseOptions {
  dir: string;
  cmId: string;
  log: Logger;
  fs?: DurableFs;
  /** Default {@link VERSION_LEASE}. */
  lease?: number;
  /** Wall clock at start, ms: the first reservation covers the clock too. */
  now: number;
  /** A reservation above `now + maxAheadMs + lease` is discarded; default {@link MAX_AHEAD_MS}. */
  maxAheadMs?: number;
}

export class VersionLease {
  readonly #slots: AbSlots | null;
  readonly #log: Logger;
  readonly #lease: number;
  #reserved = 0;
  #previous = 0;
  #writing: Promise<void> | null = null;
  #wanted = 0;
  /** Slot writes done by this run. */
  writes = 0;
  /** The reservation found at start and discarded as too far ahead (0: none). */
  discarded = 0;

  private constructor(slots: AbSlots | null, log: Logger, lease: number) {
    this.#slots = slots;
    this.#log = log;
    this.#lease = lease;
  }

  /**
   * Read the previous run's reservation and reserve this run's first lease
   * above it (awaited: before the call manager issues anything). Throws
   * STORE_IO naming the directory when it cannot be read or written.
   */
  static async open(o: VersionLeaseOptions): Promise<VersionLease> {
    const slots = new AbSlots({
      dir: o.dir,
      name: `versions-${o.cmId}`,
      ...(o.fs ? { fs: o.fs } : {}),
      maxPayloadBytes: 256,
      validate: (p) => (parse(p) === null ? 'not { "reserved": non-negative integer }' : null),
    });
    const lease = new VersionLease(slots, o.log, o.lease ?? VERSION_LEASE);
    try {
      const loaded = await slots.load();
      const stored = loaded.payload === null ? 0 : (parse(loaded.payload) ?? 0);
      const limit = Math.floor(o.now) + (o.maxAheadMs ?? MAX_AHEAD_MS) + lease.#lease;
      if (stored > limit) {
        o.log.warn({ reserved: stored, now: Math.floor(o.now), aheadMs: stored - Math.floor(o.now) }, 'persisted list version reservation is beyond the wall clock + 24 h: discarded');
        lease.discarded = stored;
      }
      lease.#previous = stored > limit ? 0 : stored;
      const first = Math.max(lease.#previous, Math.floor(o.now)) + lease.#lease;
      await slots.write(Buffer.from(JSON.stringify({ reserved: first })));
      lease.#reserved = lease.#wanted = first;
      lease.writes++;
    } catch (err) {
      throw new IpphoneError(`stateDir: cannot read the list versions in ${o.dir}: ${errorMessage(err)}`, 'STORE_IO', { path: o.dir }, { cause: err });
    }
    return lease;
  }

  /** A lease that keeps nothing (no usable directory). */
  static none(log: Logger): VersionLease {
    return new VersionLease(null, log, VERSION_LEASE);
  }

  /** No earlier run issued a version above this: this run's versions start above it. */
  get previous(): number {
    return this.#previous;
  }

  /** No version above this is issued before a new reservation is on flash (unless it outruns the write). */
  get reserved(): number {
    return this.#reserved;
  }

  /** Settle when the reservation being written is on flash (tests, shutdown). */
  async flushed(): Promise<void> {
    while (this.#writing) await this.#writing;
  }

  /** The clock reached `last`: reserve ahead when it comes within half a lease. */
  advance(last: number): void {
    if (this.#slots === null || last + this.#lease / 2 < Math.max(this.#reserved, this.#wanted)) return;
    this.#wanted = last + this.#lease;
    if (last > this.#reserved) this.#log.warn({ last, reserved: this.#reserved }, 'list versions outran their persisted reservation');
    this.#writing ??= this.#write();
  }

  async #write(): Promise<void> {
    const slots = this.#slots!;
    try {
      while (this.#wanted > this.#reserved) {
        const target = this.#wanted;
        await slots.write(Buffer.from(JSON.stringify({ reserved: target })));
        this.#reserved = target;
        this.writes++;
      }
    } catch (err) {
      // Kept trying at the next advance; meanwhile a restart may reuse up to a lease of versions.
      this.#wanted = this.#reserved;
      this.#log.error({ err: errorMessage(err), reserved: this.#reserved }, 'cannot persist the list version reservation');
    } finally {
      this.#writing = null;
    }
  }
}

/**
 * The lease for a call manager's config, with {@link bootSeqFor}'s rule: an
 * explicit `stateDir` must work; the default directory may be unusable (then
 * no lease, with a warning).
 */
export async function versionLeaseFor(c: { cmId: string; stateDir: string | null }, now: number, log: Logger, defaultDir = DEFAULT_CM_STATE_DIR, fs?: DurableFs): Promise<VersionLease> {
  const dir = c.stateDir ?? defaultDir;
  try {
    const lease = await VersionLease.open({ dir, cmId: c.cmId, log, now, ...(fs ? { fs } : {}) });
    log.info({ previous: lease.previous, reserved: lease.reserved, stateDir: dir }, 'list versions resume above the previous run');
    return lease;
  } catch (err) {
    if (c.stateDir !== null) throw err;
    log.warn({ stateDir: dir, err: errorMessage(err) }, 'default state directory not usable: list versions from the clock alone');
    return VersionLease.none(log);
  }
}
