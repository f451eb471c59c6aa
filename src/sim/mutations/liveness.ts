/**
 * Mutations of signed liveness (issue 15 §2, §3): `replay-offline` (a live
 * call manager's recorded offline, replayed, is believed) and `replay-online`
 * (a dead run's recorded online, replayed, is believed).
 * See src/sim/mutations.ts.
 *
 * Both patch {@link LivenessVerifier.prototype} — the one verifier phones
 * (agent-messages.ts) and peer call managers (peer-liveness.ts) share — so
 * every receiver of the run has the defect, as every receiver had it before
 * issue 15. The real `check` still runs first and keeps its own state: the
 * signature, the topic's call manager and the run held are judged as the
 * product judges them, and only what the product refuses as a replay
 * (`STATE_STALE`) is believed again where the code before the fix (188c358)
 * believed it. That code held, per call manager, only the run it last saw
 * online `(bdSeq, conn, nonce)`, no order within it and no finality of the
 * will, and took the same run's online or offline as often as it came; an
 * online it could not order had no challenge behind it. The patch keeps, per
 * verifier and call manager, what it last told its caller (`told`) and
 * whether that was a replay the product refused (`forged`), so that what came
 * after a believed replay is judged as the old code judged it too (the live
 * call manager republishing the online it holds brings it back; a dead one's
 * will, replayed again, takes it away).
 */
import { LivenessVerifier, type LivenessVerdict } from '../../protocol/cm-liveness.js';
import { decodeSignedCmState, parseCmStateBody, type CmStateBody } from '../../protocol/cm-state.js';
import type { Mutation } from '../mutations.js';

/** What a patched verifier last told its caller about one call manager. */
interface Told {
  online: boolean | undefined;
  /** The last thing told was a replay the product refused. */
  forged: boolean;
}

type Check = LivenessVerifier['check'];
type Answer = LivenessVerifier['answer'];

/**
 * The body of a state the real `check` refused as STATE_STALE. It opened under
 * the trusted keys (every signature and shape refusal comes before any
 * judgement of order), so reading it without verifying again is sound.
 */
function staleBody(payload: Buffer): CmStateBody | undefined {
  try {
    return parseCmStateBody(Buffer.from(decodeSignedCmState(payload).envelope.body, 'base64'));
  } catch {
    return undefined;
  }
}

const believed = (body: CmStateBody): LivenessVerdict => ({ ok: true, online: body.online, run: { bdSeq: body.bdSeq, conn: body.conn, nonce: body.nonce, seq: body.seq } });

/**
 * Patch the verifier: `stale` decides, for a state the product refused as a
 * replay, whether the mutated verifier believes it (and so tells its caller
 * `body.online`). Returns the undo.
 */
function patchVerifier(stale: (v: LivenessVerifier, cm: string, body: CmStateBody, told: Told) => boolean): () => void {
  const proto = LivenessVerifier.prototype;
  const check: Check = proto.check;
  const answer: Answer = proto.answer;
  const toldBy = new WeakMap<LivenessVerifier, Map<string, Told>>();
  const toldOf = (v: LivenessVerifier, cm: string): Told => {
    let m = toldBy.get(v);
    if (m === undefined) toldBy.set(v, (m = new Map()));
    let t = m.get(cm);
    if (t === undefined) m.set(cm, (t = { online: undefined, forged: false }));
    return t;
  };
  proto.check = function (this: LivenessVerifier, cm: string, payload: Buffer): LivenessVerdict {
    const v = check.call(this, cm, payload);
    const told = toldOf(this, cm);
    if (v.ok) {
      told.online = v.online;
      told.forged = false;
      return v;
    }
    if (v.code !== 'STATE_STALE') return v;
    const body = staleBody(payload);
    if (body === undefined || body.cm !== cm || !stale(this, cm, body, told)) return v;
    told.online = body.online;
    told.forged = !told.forged;
    return believed(body);
  };
  proto.answer = function (this: LivenessVerifier, cm: string, payload: Buffer): LivenessVerdict {
    const v = answer.call(this, cm, payload);
    if (v.ok) Object.assign(toldOf(this, cm), { online: v.online, forged: false });
    return v;
  };
  return () => {
    proto.check = check;
    proto.answer = answer;
  };
}

export const LIVENESS_MUTATIONS = {
  'replay-offline': {
    about: 'receivers believe a replayed offline of the connection they hold online, whatever its seq (issue 15 §2: no order within a run, the will not final)',
    expect: ['no-forged-effect'],
    apply: () =>
      patchVerifier((v, cm, body, told) => {
        const held = v.seen(cm);
        const sameConn = held !== undefined && body.bdSeq === held.bdSeq && body.conn === held.conn && body.nonce === held.nonce;
        if (!sameConn) return false;
        // An offline of the connection held while we hold it online; and the online of that same
        // connection again once we believed such an offline (the old code took both as often as they came).
        return body.online ? told.online === false && told.forged : told.online === true && !told.forged;
      }),
  },
  'replay-online': {
    about: 'receivers believe a replayed online of a call manager they hold offline: the run\'s will not final, no seq, no challenge for an online they cannot order (issue 15 §2, §3)',
    expect: ['no-replayed-online'],
    apply: () =>
      patchVerifier((_v, _cm, body, told) => {
        // An online of any run (its will seen, or a run older than the one held); and, once such an
        // online was believed, an offline of that call manager again.
        return body.online ? told.online === false && !told.forged : told.online === true && told.forged;
      }),
  },
} satisfies Record<string, Mutation>;
