/**
 * Liveness that cannot be forged: what a phone or a peer call manager may
 * conclude from a `P/cm/{cmId}/state` message (format: cm-state.ts). Modelled
 * on Sparkplug B 3.0's bdSeq and STATE rules; each rule has a name, and the
 * unit tests (test/unit/protocol/cm-liveness.test.ts) are named after them.
 *
 * Per call manager the verifier remembers the run it last saw online — its
 * `(bdSeq, conn, nonce)` — and only an accepted online changes that memory:
 *
 * - `liveness-state-must-be-signed`: a state without a signature by a trusted
 *   key (UNSIGNED, KEY_UNKNOWN, SIGNATURE_INVALID) or malformed
 *   (PAYLOAD_INVALID) is refused.
 * - `liveness-empty-retained-refused`: a zero-length message (a retained state
 *   cleared) is refused (STATE_EMPTY); it says nothing about the run.
 * - `liveness-body-cm-matches-topic`: the body names the call manager of the
 *   topic (WRONG_CM): one call manager's genuine state cannot speak for another.
 * - `liveness-online-field-matches-body`: the top-level `online` watchers read
 *   equals the signed one (PAYLOAD_INVALID).
 * - `liveness-online-requires-not-older`: an online is accepted when its
 *   `(bdSeq, conn)` is not older than the run seen online; an older one is a
 *   replay (STATE_STALE).
 * - `liveness-offline-requires-run-match`: an offline is accepted only when it
 *   is of exactly the run (bdSeq, conn and nonce) seen online. Of an older run
 *   or connection it is a replayed will (STATE_STALE); the same run id with
 *   another nonce is another process's (STATE_RUN_MISMATCH); of a run never
 *   seen online — nothing seen yet, or a newer run whose online was missed — it
 *   is ignored (STATE_RUN_UNKNOWN, `quiet`: that is also how a genuine will
 *   retained from before the receiver started looks; keep-alive loss still
 *   catches a dead call manager).
 * - `liveness-refused-changes-nothing`: a refused state leaves the memory as it was.
 *
 * An online equal to the run seen (same bdSeq, conn, nonce) is accepted again:
 * that is how a call manager comes back from an offline it published itself
 * while it lived (e.g. its SIP server unreachable).
 *
 * Pure apart from the Ed25519 check (openEnvelope, whose cache makes the same
 * will arriving at every phone of a fleet cost one verification).
 */
import { errorMessage, isIpphoneError, type ErrorCode } from '../lib/errors.js';
import { decodeSignedCmState, parseCmStateBody, type CmStateBody } from './cm-state.js';
import { openEnvelope, type TrustedKeys } from './envelope.js';

/** One run of a call manager: its boot sequence, connection number and nonce. */
export type CmRunId = Pick<CmStateBody, 'bdSeq' | 'conn' | 'nonce'>;

export type LivenessVerdict =
  /** Accepted: act on `online`. */
  | { ok: true; online: boolean; run: CmRunId }
  /**
   * Refused: change nothing. `quiet` marks what is normal to see (an offline of
   * a run not seen online), for which receivers raise no `rejected` event.
   */
  | { ok: false; code: ErrorCode; reason: string; quiet: boolean };

/** Most call managers remembered; beyond it the oldest entry is forgotten (a group has at most 64). */
const MAX_REMEMBERED = 256;

/** -1, 0, 1 as run `a` is older than, the same connection as, newer than `b`. */
export function compareRun(a: Pick<CmRunId, 'bdSeq' | 'conn'>, b: Pick<CmRunId, 'bdSeq' | 'conn'>): -1 | 0 | 1 {
  if (a.bdSeq !== b.bdSeq) return a.bdSeq < b.bdSeq ? -1 : 1;
  if (a.conn !== b.conn) return a.conn < b.conn ? -1 : 1;
  return 0;
}

const refuse = (code: ErrorCode, reason: string, quiet = false): LivenessVerdict => ({ ok: false, code, reason, quiet });
const show = (r: CmRunId): string => `bdSeq ${r.bdSeq} conn ${r.conn}`;

export class LivenessVerifier {
  #keys: TrustedKeys;
  readonly #seen = new Map<string, CmRunId>();

  /** @param keys the trusted keys (a phone's `trust.keys`; a call manager's own key plus `trust.keys`) */
  constructor(keys: TrustedKeys) {
    this.#keys = keys;
  }

  /** Replace the trusted keys (a remote config change); the runs seen are kept. */
  setKeys(keys: TrustedKeys): void {
    this.#keys = keys;
  }

  /** The run of `cm` last seen online, if any. */
  seen(cm: string): CmRunId | undefined {
    return this.#seen.get(cm);
  }

  /** Judge a state message that arrived on `P/cm/{cm}/state`. Never throws. */
  check(cm: string, payload: Buffer): LivenessVerdict {
    let body: CmStateBody;
    try {
      const st = decodeSignedCmState(payload);
      body = parseCmStateBody(openEnvelope(st.envelope, this.#keys));
      if (body.online !== st.online) return refuse('PAYLOAD_INVALID', `state says online ${st.online} but its signed body says ${body.online}`);
    } catch (err) {
      return refuse(isIpphoneError(err) ? err.code : 'PAYLOAD_INVALID', errorMessage(err));
    }
    if (body.cm !== cm) return refuse('WRONG_CM', `state signed for call manager ${JSON.stringify(body.cm)} arrived on the topic of ${JSON.stringify(cm)}`);
    const run: CmRunId = { bdSeq: body.bdSeq, conn: body.conn, nonce: body.nonce };
    const seen = this.#seen.get(cm);
    const order = seen === undefined ? 1 : compareRun(run, seen);
    if (body.online) {
      if (order < 0) return refuse('STATE_STALE', `online of ${show(run)} is older than the run seen online (${show(seen!)})`);
      if (order === 0 && run.nonce !== seen!.nonce) return refuse('STATE_RUN_MISMATCH', `online of ${show(run)} carries another nonce than the run seen online`);
      this.#remember(cm, run);
      return { ok: true, online: true, run };
    }
    if (seen === undefined) return refuse('STATE_RUN_UNKNOWN', `offline of ${show(run)}, but no run of ${cm} was seen online`, true);
    if (order < 0) return refuse('STATE_STALE', `offline of ${show(run)} is of an earlier run than the one seen online (${show(seen)}): a replayed will`);
    if (order > 0) return refuse('STATE_RUN_UNKNOWN', `offline of ${show(run)}, a run not seen online (seen ${show(seen)})`, true);
    if (run.nonce !== seen.nonce) return refuse('STATE_RUN_MISMATCH', `offline of ${show(run)} carries another nonce than the run seen online`);
    return { ok: true, online: false, run };
  }

  #remember(cm: string, run: CmRunId): void {
    this.#seen.delete(cm);
    if (this.#seen.size >= MAX_REMEMBERED) this.#seen.delete(this.#seen.keys().next().value!);
    this.#seen.set(cm, run);
  }
}

