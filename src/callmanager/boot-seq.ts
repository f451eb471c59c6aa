/**
 * The call manager's boot sequence (`bdSeq` of its signed state, after
 * Sparkplug B 3.0): a number greater at every start, kept flash-safely in the
 * state directory as two A/B slots (`{stateDir}/bdseq-{cmId}.a|b`, store/ab-slots.ts).
 *
 * Each start takes `max(stored + 1, now)` (now in ms since the epoch) and
 * stores it before the call manager connects. The stored value keeps the
 * sequence growing when the clock steps back; the clock keeps it growing when
 * the state directory was lost (a reinstalled server) — without it a new run
 * would start at 1. Neither can help when both went wrong: a server that ran
 * with its clock ahead and was reinstalled with the right clock starts lower
 * than its dead run. Receivers cannot order that online and challenge it;
 * the live process answers and is taken back (protocol/cm-liveness.ts,
 * `liveness-unordered-online-challenged`).
 */
import { errorMessage, IpphoneError } from '../lib/errors.js';
import { AbSlots, slotInteger } from '../store/ab-slots.js';
import type { DurableFs } from '../store/durable-file.js';
import { DEFAULT_CM_STATE_DIR } from '../config/cm-config.js';
import type { Logger } from '../lib/log.js';

export interface BootSeqOptions {
  /** The state directory (created, mode 0700, when missing). */
  dir: string;
  cmId: string;
  /** Wall clock now, ms since the epoch. */
  now: number;
  /** Default node:fs. */
  fs?: DurableFs;
}

export interface BootSeq {
  bdSeq: number;
  /** The sequence stored by the previous start, or null when none was found. */
  previous: number | null;
  /** Why a slot could not be used (a torn write, say); informational. */
  problems: string[];
}

const parse = (payload: Buffer): number | null => slotInteger(payload, 'bdSeq', 1);

/**
 * Read the stored boot sequence, take the next one and store it durably.
 * Throws STORE_IO naming the directory when it cannot be created, read or
 * written (so the start fails with a reason, not at the first crash).
 */
export async function nextBootSeq(o: BootSeqOptions): Promise<BootSeq> {
  const slots = new AbSlots({
    dir: o.dir,
    name: `bdseq-${o.cmId}`,
    ...(o.fs ? { fs: o.fs } : {}),
    maxPayloadBytes: 256,
    validate: (p) => (parse(p) === null ? 'not { "bdSeq": positive integer }' : null),
  });
  try {
    const loaded = await slots.load();
    const previous = loaded.payload === null ? null : parse(loaded.payload);
    const bdSeq = Math.max((previous ?? 0) + 1, Math.floor(o.now));
    await slots.write(Buffer.from(JSON.stringify({ bdSeq })));
    return { bdSeq, previous, problems: loaded.invalid.filter((p) => p.kind !== 'missing').map((p) => `${p.slot}: ${p.detail}`) };
  } catch (err) {
    throw new IpphoneError(`stateDir: cannot keep the boot sequence in ${o.dir}: ${errorMessage(err)}`, 'STORE_IO', { path: o.dir }, { cause: err });
  }
}

/**
 * The boot sequence for a call manager's config: with `stateDir` set, that
 * directory must work (STORE_IO otherwise: the start fails naming it). With
 * `stateDir: null`, {@link DEFAULT_CM_STATE_DIR} is tried, and when it is not
 * usable (not running as the unit, say) the clock alone gives the sequence,
 * with a warning: still greater at every start while the clock does not step
 * back.
 */
export async function bootSeqFor(c: { cmId: string; stateDir: string | null }, now: number, log: Logger, defaultDir = DEFAULT_CM_STATE_DIR, fs?: DurableFs): Promise<number> {
  const dir = c.stateDir ?? defaultDir;
  try {
    const b = await nextBootSeq({ dir, cmId: c.cmId, now, ...(fs ? { fs } : {}) });
    log.info({ bdSeq: b.bdSeq, previous: b.previous, stateDir: dir, ...(b.problems.length ? { problems: b.problems } : {}) }, 'boot sequence');
    return b.bdSeq;
  } catch (err) {
    if (c.stateDir !== null) throw err;
    const bdSeq = Math.max(1, Math.floor(now));
    log.warn({ bdSeq, stateDir: dir, err: errorMessage(err) }, 'default state directory not usable: boot sequence from the clock alone');
    return bdSeq;
  }
}
