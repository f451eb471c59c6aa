/**
 * Liveness that cannot be forged or replayed: what a phone or a peer call
 * manager may conclude from a `P/cm/{cmId}/state` message (format:
 * cm-state.ts), and from the answer to a challenge it sent. Modelled on
 * Sparkplug B 3.0's bdSeq and STATE rules; each rule has a name, and the unit
 * tests (test/unit/protocol/cm-liveness.test.ts) are named after them.
 *
 * Per call manager the verifier holds the last state it believed — its run
 * `(bdSeq, conn, nonce)`, its order `seq` within the run, online or not,
 * whether the will of that connection was seen — and the highest boot
 * sequence it ever believed (`maxBdSeq`). Only an accepted state changes that.
 *
 * - `liveness-state-must-be-signed`: a state without a signature by a trusted
 *   key (UNSIGNED, KEY_UNKNOWN, SIGNATURE_INVALID) or malformed, `seq`
 *   missing included (PAYLOAD_INVALID), is refused.
 * - `liveness-empty-retained-refused`: a zero-length message (a retained state
 *   cleared) is refused (STATE_EMPTY); it says nothing about the run.
 * - `liveness-body-cm-matches-topic`: the body names the call manager of the
 *   topic (WRONG_CM): one call manager's genuine state cannot speak for another.
 * - `liveness-online-field-matches-body`: the top-level `online` watchers read
 *   equals the signed one (PAYLOAD_INVALID).
 * - `liveness-online-requires-not-older`: an online is taken when its run is
 *   newer than every run ever believed of that call manager (a restart: its
 *   bdSeq above `maxBdSeq`), or the first seen; within the run held it must be
 *   strictly newer (`liveness-seq-strictly-newer`). An online of an older
 *   run is not believed: it is challenged (`liveness-unordered-online-challenged`).
 * - `liveness-offline-requires-run-match`: an offline — a will or one the call
 *   manager reports while it lives — is taken only when it is of the run held
 *   (a will: of exactly its connection, bdSeq, conn and nonce). Of an older
 *   run or connection it is a replay (STATE_STALE); the same `(bdSeq, conn)`
 *   with another nonce is another process's (STATE_RUN_MISMATCH); of a run
 *   never seen online — nothing seen yet, or a newer run whose online was
 *   missed — it is ignored (STATE_RUN_UNKNOWN, `quiet`: that is also how a
 *   genuine will retained from before the receiver started looks; keep-alive
 *   loss still catches a dead call manager).
 * - `liveness-seq-strictly-newer`: within the run held, a state is accepted
 *   only when its `seq` is greater than the one held; anything else is a
 *   replay (STATE_STALE). What equals the state held, or repeats an older
 *   state with the same `online` as held, is not news (`quiet`: a retained
 *   state delivered again, the call manager republishing over a forgery).
 *   The same `(bdSeq, conn)` with another nonce is another process's
 *   (STATE_RUN_MISMATCH).
 * - `liveness-will-is-final`: a will (`will: true`) of the connection held is
 *   accepted whatever its `seq` (it was signed at CONNECT, before the states
 *   of that connection); once it is, nothing of that connection is believed
 *   again (STATE_STALE; the will itself again is `quiet`). The next
 *   connection or run is.
 * - `liveness-unordered-online-challenged`: an online that cannot be ordered —
 *   of a run older than the one held, or not above the highest bdSeq ever
 *   believed — is not believed (STATE_STALE, `quiet`); the verifier returns a
 *   fresh random `challenge` for the caller to publish on
 *   `P/cm/{cmId}/challenge/{me}` (at most one per {@link CHALLENGE_GAP_MS}
 *   per call manager) and `retryInMs`, when to call {@link LivenessVerifier.retry}
 *   should no answer come (a challenge lost, or none sent inside the gap):
 *   at most {@link CHALLENGE_TRIES} challenges per unordered online, backing
 *   off. An offline that cannot be ordered is refused (STATE_STALE): it is
 *   never the way back.
 * - `liveness-answer-binds-challenge`: an answer is believed only when it is
 *   a trusted signature over one of our own challenges sent less than
 *   {@link CHALLENGE_TTL_MS} ago, each usable once (CHALLENGE_UNKNOWN
 *   otherwise); then its run replaces the one held, whatever their boot
 *   sequences, and `maxBdSeq` is kept.
 * - `liveness-refused-changes-nothing`: a refused state leaves what is held as
 *   it was (only a challenge may be recorded).
 *
 * Why the challenge is sound where ordering alone is not. A reinstalled call
 * manager (empty state directory, a clock that was ahead before) starts with a
 * lower bdSeq than its dead run; a replayed online of a dead run can also be
 * lower, or higher than the run now held. No ordering of boot sequences tells
 * those apart: both are genuine signatures of something that once was. What
 * only the live process can make is a signature over a value it has never
 * seen before: 16 random bytes from the receiver, valid for a few seconds and
 * once. So an online that cannot be ordered only triggers the question, and
 * the answer — not the trigger — is believed: a dead run never answers (its
 * key is still there, its process is not), a replay of an answer carries a
 * challenge already used or someone else's, and the run the answer names is
 * the one that lives. `maxBdSeq` keeps every run ever believed from being
 * taken back without a challenge after the receiver took a lower one. The
 * challenge must be unpredictable (node:crypto by default; inject only in
 * tests): an answer to a challenge guessed in advance, obtained from the live
 * run (anyone may ask on its own topic), could be replayed after it died. The
 * call manager answers at a bounded rate, one pending challenge per challenger
 * (callmanager/challenge-queue.ts), so a hostile phone can neither make it sign
 * without bound nor crowd out others.
 *
 * Pure apart from the Ed25519 check (openEnvelope, whose cache makes the same
 * state arriving at every phone of a fleet cost one verification) and the
 * challenge's random bytes (injected).
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { systemClock, type Clock } from '../lib/clock.js';
import { errorMessage, isIpphoneError, type ErrorCode } from '../lib/errors.js';
import { decodeSignedCmState, parseCmStateBody, type CmStateBody } from './cm-state.js';
import { openEnvelope, type TrustedKeys } from './envelope.js';

/** One state of a run of a call manager: its boot sequence, connection number, nonce and order within the run. */
export type CmRunId = Pick<CmStateBody, 'bdSeq' | 'conn' | 'nonce' | 'seq'>;

export type LivenessVerdict =
  /**
   * Accepted: act on `online`. `answered` when it came as the answer to our challenge;
   * `announced` when the body carries its group digest and floor (cm-state.ts).
   */
  | { ok: true; online: boolean; run: CmRunId; answered?: true; announced?: { group: string; floor: number } }
  /**
   * Refused: change nothing. `quiet` marks what is normal to see (an offline of
   * a run not seen online, a state held delivered again), for which receivers
   * raise no `rejected` event. `challenge`: publish it on
   * `P/cm/{cm}/challenge/{me}`; the live call manager answers it.
   */
  | { ok: false; code: ErrorCode; reason: string; quiet: boolean; challenge?: string; retryInMs?: number };

/**
 * What {@link LivenessVerifier.retry} says: a challenge to publish now, and/or
 * when to ask again; neither when nothing is left to ask.
 */
export interface ChallengeRetry {
  challenge?: string;
  retryInMs?: number;
}

/** Most call managers remembered; beyond it the oldest entry is forgotten (a group has at most 64). */
const MAX_REMEMBERED = 256;
/** Least time between two challenges to one call manager (ms). */
export const CHALLENGE_GAP_MS = 1000;
/** How long a challenge may be answered (ms). */
export const CHALLENGE_TTL_MS = 10_000;
/** Challenges kept per call manager (the newest); an older one's answer is refused. */
const MAX_OUTSTANDING = 4;
/** Random bytes of a challenge (base64url: 22 characters). */
const CHALLENGE_BYTES = 16;
/** Challenges per unordered online at most: 1, 2, 4, 8 s apart (then it is given up: a dead run does not answer). */
export const CHALLENGE_TRIES = 5;

/** -1, 0, 1 as run `a` is older than, the same connection as, newer than `b` (by bdSeq, then conn). */
export function compareRun(a: Pick<CmRunId, 'bdSeq' | 'conn'>, b: Pick<CmRunId, 'bdSeq' | 'conn'>): -1 | 0 | 1 {
  if (a.bdSeq !== b.bdSeq) return a.bdSeq < b.bdSeq ? -1 : 1;
  if (a.conn !== b.conn) return a.conn < b.conn ? -1 : 1;
  return 0;
}

/** What is held for one call manager. */
interface Held extends CmRunId {
  online: boolean;
  /** The will of this connection was seen: nothing of it is believed again. */
  final: boolean;
  /** The highest bdSeq ever believed of this call manager. */
  maxBdSeq: number;
  /** Our challenges not yet answered, oldest first. */
  challenges: { value: string; at: number }[];
  lastChallengeAt: number;
  /** An online we could not order awaits an answer: challenges sent for it (0: none yet, the gap was not over). */
  pending: { tries: number } | null;
}

export interface LivenessOptions {
  /** Monotonic time for challenges (`elapsed`); default the system clock. */
  clock?: Pick<Clock, 'elapsed'>;
  /** Default node:crypto `randomBytes`. */
  randomBytes?: (n: number) => Buffer;
}

const refuse = (code: ErrorCode, reason: string, quiet = false, challenge?: string): LivenessVerdict => ({ ok: false, code, reason, quiet, ...(challenge !== undefined ? { challenge } : {}) });
const show = (r: Pick<CmRunId, 'bdSeq' | 'conn' | 'seq'>): string => `bdSeq ${r.bdSeq} conn ${r.conn} seq ${r.seq}`;
const runOf = (b: CmStateBody): CmRunId => ({ bdSeq: b.bdSeq, conn: b.conn, nonce: b.nonce, seq: b.seq });

export class LivenessVerifier {
  #keys: TrustedKeys;
  readonly #held = new Map<string, Held>();
  readonly #clock: Pick<Clock, 'elapsed'>;
  readonly #random: (n: number) => Buffer;

  /** @param keys the trusted keys (a phone's `trust.keys`; a call manager's own key plus `trust.keys`) */
  constructor(keys: TrustedKeys, o: LivenessOptions = {}) {
    this.#keys = keys;
    this.#clock = o.clock ?? systemClock;
    this.#random = o.randomBytes ?? cryptoRandomBytes;
  }

  /** Replace the trusted keys (a remote config change); what is held is kept. */
  setKeys(keys: TrustedKeys): void {
    this.#keys = keys;
  }

  /** The state of `cm` held (last believed), if any. */
  seen(cm: string): CmRunId | undefined {
    const h = this.#held.get(cm);
    return h === undefined ? undefined : { bdSeq: h.bdSeq, conn: h.conn, nonce: h.nonce, seq: h.seq };
  }

  /** Judge a state message that arrived on `P/cm/{cm}/state`. Never throws. */
  check(cm: string, payload: Buffer): LivenessVerdict {
    const opened = this.#open(cm, payload);
    if ('ok' in opened) return opened;
    const body = opened;
    const h = this.#held.get(cm);
    if (body.will === true) return this.#will(cm, body, h);
    if (h === undefined) {
      if (!body.online) return refuse('STATE_RUN_UNKNOWN', `offline of ${show(body)}, but no run of ${cm} was seen online`, true);
      return this.#take(cm, body, undefined);
    }
    if (body.bdSeq === h.bdSeq) return this.#sameRun(cm, body, h);
    if (body.bdSeq > h.maxBdSeq) {
      // A restart: its online is taken as it comes; its offline says nothing of a run never seen online.
      if (body.online) return this.#take(cm, body, h);
      return refuse('STATE_RUN_UNKNOWN', `offline of ${show(body)}, a run not seen online (held ${show(h)})`, true);
    }
    // Older than the run held, or not above every run ever believed: cannot be ordered.
    const why = body.bdSeq < h.bdSeq ? `of a run older than the one held (${show(h)})` : `of bdSeq ${body.bdSeq}, not above the highest ever believed (${h.maxBdSeq}) though above the run held (${show(h)})`;
    if (!body.online) return refuse('STATE_STALE', `offline of ${show(body)} ${why}: a replay`);
    if (h.pending === null || h.pending.tries >= CHALLENGE_TRIES) h.pending = { tries: 0 };
    const r = this.#ask(h);
    const v = refuse('STATE_STALE', `online of ${show(body)} ${why}: ${r.challenge !== undefined ? 'challenged' : 'a challenge is outstanding'}`, true, r.challenge);
    return r.retryInMs !== undefined && !v.ok ? { ...v, retryInMs: r.retryInMs } : v;
  }

  /**
   * Ask again about an online of `cm` we could not order, when no answer
   * came: call it `retryInMs` after a verdict or a retry said so. A challenge
   * may be lost (a reconnect, a call manager not yet subscribed), or one was
   * not sent inside the gap; at most {@link CHALLENGE_TRIES} per unordered
   * online, backing off. Nothing once any state of `cm` was taken since.
   */
  retry(cm: string): ChallengeRetry {
    const h = this.#held.get(cm);
    if (h === undefined || h.pending === null) return {};
    return this.#ask(h);
  }

  #ask(h: Held): ChallengeRetry {
    const p = h.pending!;
    if (p.tries >= CHALLENGE_TRIES) return {};
    const now = this.#clock.elapsed();
    const wait = h.lastChallengeAt + CHALLENGE_GAP_MS * 2 ** Math.max(0, p.tries - 1) - now;
    if (p.tries > 0 && wait > 0) return { retryInMs: wait };
    const challenge = this.#challenge(h);
    if (challenge === undefined) return { retryInMs: h.lastChallengeAt + CHALLENGE_GAP_MS - now };
    p.tries++;
    return p.tries < CHALLENGE_TRIES ? { challenge, retryInMs: CHALLENGE_GAP_MS * 2 ** (p.tries - 1) } : { challenge };
  }

  /**
   * Judge a message on `P/cm/{cm}/challenge/{me}/answer`: believed only when
   * it carries one of our challenges, unexpired and unused. Never throws.
   */
  answer(cm: string, payload: Buffer): LivenessVerdict {
    const opened = this.#open(cm, payload);
    if ('ok' in opened) return opened;
    const body = opened;
    if (body.challenge === undefined) return refuse('CHALLENGE_UNKNOWN', `answer of ${show(body)} carries no challenge`);
    const h = this.#held.get(cm);
    const now = this.#clock.elapsed();
    const i = h?.challenges.findIndex((c) => c.value === body.challenge && now - c.at <= CHALLENGE_TTL_MS) ?? -1;
    if (h === undefined || i < 0) return refuse('CHALLENGE_UNKNOWN', `answer of ${show(body)} carries a challenge we did not send, sent more than ${CHALLENGE_TTL_MS} ms ago, or already answered`);
    h.challenges.splice(i, 1);
    // The live process answered: nothing more to ask. Within the run held, only a newer state is news.
    h.pending = null;
    if (body.bdSeq === h.bdSeq && body.seq <= h.seq) return refuse('STATE_STALE', `answer of ${show(body)}: the run held (${show(h)}) is as new`, true);
    const v = this.#take(cm, body, h);
    return v.ok ? { ...v, answered: true } : v;
  }

  #open(cm: string, payload: Buffer): CmStateBody | Extract<LivenessVerdict, { ok: false }> {
    let body: CmStateBody;
    try {
      const st = decodeSignedCmState(payload);
      body = parseCmStateBody(openEnvelope(st.envelope, this.#keys));
      if (body.online !== st.online) return refuse('PAYLOAD_INVALID', `state says online ${st.online} but its signed body says ${body.online}`) as Extract<LivenessVerdict, { ok: false }>;
    } catch (err) {
      return refuse(isIpphoneError(err) ? err.code : 'PAYLOAD_INVALID', errorMessage(err)) as Extract<LivenessVerdict, { ok: false }>;
    }
    if (body.cm !== cm) return refuse('WRONG_CM', `state signed for call manager ${JSON.stringify(body.cm)} arrived on the topic of ${JSON.stringify(cm)}`) as Extract<LivenessVerdict, { ok: false }>;
    return body;
  }

  /** liveness-will-is-final. */
  #will(cm: string, body: CmStateBody, h: Held | undefined): LivenessVerdict {
    if (h === undefined) return refuse('STATE_RUN_UNKNOWN', `will of ${show(body)}, but no run of ${cm} was seen online`, true);
    const order = compareRun(body, h);
    if (order < 0) return refuse('STATE_STALE', `will of ${show(body)} is of an earlier run or connection than the one held (${show(h)}): a replayed will`);
    if (order > 0) return refuse('STATE_RUN_UNKNOWN', `will of ${show(body)}, a run or connection not seen (held ${show(h)})`, true);
    if (body.nonce !== h.nonce) return refuse('STATE_RUN_MISMATCH', `will of ${show(body)} carries another nonce than the connection held`);
    if (h.final) return refuse('STATE_STALE', `will of ${show(body)} again: that connection is over`, true);
    h.final = true;
    h.online = false;
    h.seq = Math.max(h.seq, body.seq);
    return { ok: true, online: false, run: runOf(body) };
  }

  /** liveness-seq-strictly-newer (and the will's finality) within the run held. */
  #sameRun(cm: string, body: CmStateBody, h: Held): LivenessVerdict {
    if (body.conn === h.conn && body.nonce !== h.nonce) return refuse('STATE_RUN_MISMATCH', `state of ${show(body)} carries another nonce than the connection held`);
    if (body.seq <= h.seq) {
      const again = body.seq === h.seq && body.conn === h.conn && body.online === h.online;
      if (again) return refuse('STATE_STALE', `state of ${show(body)}: the state held, again`, true);
      // An older state saying what we hold says nothing; one saying otherwise is a replay meant to move us.
      return refuse('STATE_STALE', `${body.online ? 'online' : 'offline'} of ${show(body)} is not newer than the state held (${show(h)}, ${h.online ? 'online' : 'offline'}): a replay`, body.online === h.online);
    }
    if (body.conn < h.conn) return refuse('STATE_STALE', `state of ${show(body)} is of an earlier connection than the one held (${show(h)})`);
    if (h.final && body.conn === h.conn) return refuse('STATE_STALE', `state of ${show(body)}: the will of connection ${h.conn} was seen, nothing of it is believed again`);
    return this.#take(cm, body, h);
  }

  /** Hold `body`'s state (a new run, a newer state, an answer). */
  #take(cm: string, body: CmStateBody, h: Held | undefined): LivenessVerdict {
    const next: Held = {
      ...runOf(body),
      online: body.online,
      final: false,
      maxBdSeq: Math.max(h?.maxBdSeq ?? 0, body.bdSeq),
      challenges: h?.challenges ?? [],
      lastChallengeAt: h?.lastChallengeAt ?? -Infinity,
      pending: null,
    };
    this.#held.delete(cm);
    if (this.#held.size >= MAX_REMEMBERED) this.#held.delete(this.#held.keys().next().value!);
    this.#held.set(cm, next);
    return { ok: true, online: body.online, run: runOf(body), ...(body.group !== undefined && body.floor !== undefined ? { announced: { group: body.group, floor: body.floor } } : {}) };
  }

  /** A new challenge for `h`'s call manager, or undefined inside the gap. */
  #challenge(h: Held): string | undefined {
    const now = this.#clock.elapsed();
    if (now - h.lastChallengeAt < CHALLENGE_GAP_MS) return undefined;
    h.lastChallengeAt = now;
    const value = this.#random(CHALLENGE_BYTES).toString('base64url');
    h.challenges = [...h.challenges.filter((c) => now - c.at <= CHALLENGE_TTL_MS), { value, at: now }].slice(-MAX_OUTSTANDING);
    return value;
  }
}
