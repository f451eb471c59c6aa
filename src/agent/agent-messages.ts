/**
 * The agent's inbound messages: acks, pushed lists and config changes on the
 * phone's own topics, and call-manager states. Decodes and verifies each,
 * settles the ack/push duplicates a call manager sends by design, and turns
 * every refusal into a (rate-limited) `rejected` event. Valid content becomes
 * machine inputs; config bodies go to the Reconfigurator.
 */
import { errorMessage, IpphoneError, isIpphoneError, type ErrorCode } from '../lib/errors.js';
import type { TimerHandle } from '../lib/clock.js';
import { encodeCmChallenge } from '../protocol/cm-state.js';
import { decodeAck, decodeEnvelope, openConfig, openPointers, parseConfigBody, parseJsonPayload, parsePointersBody, type OpenContext } from '../protocol/codec.js';
import { samePointerList } from '../protocol/pointers.js';
import { mergeGroupList } from '../protocol/list-merge.js';
import { LivenessVerifier } from '../protocol/cm-liveness.js';
import type { TrustedKeys } from '../protocol/envelope.js';
import type { ConfigBody, ConfigResultPayload, Envelope, PointersBody } from '../protocol/types.js';
import { AgentCore } from './agent-core.js';
import type { RebaseTaken } from './ports.js';

/** Rejected-event rate limit per topic (ack lists can repeat every keep-alive), and per topic and code for call manager states. */
const REJECT_EVENT_GAP_MS = 10_000;

/** Message handling on top of the effect runner; the agent adds lifecycle and the reconfiguration host. */
export abstract class AgentMessages extends AgentCore {
  #lastRejectAt = new Map<string, number>();
  /**
   * Judges call managers' signed states: only a verified, strictly newer state
   * counts (cm-liveness.ts). An online it cannot order is challenged, and only
   * the call manager's signed answer is believed.
   */
  readonly #liveness = new LivenessVerifier(new Map(), { clock: this.d.clock });
  /** One retry timer per call manager whose online we could not order (#retryChallenge). */
  readonly #challengeTimers = new Map<string, TimerHandle>();
  /** The trusted keys the verifier was last given (they change with a remote config). */
  #livenessKeys: TrustedKeys | undefined;
  /** Version of a list adopted from an ack whose pushed twin has not arrived yet. */
  #ackAdopted: number | null = null;
  /** The signed envelope a list was last adopted from, with that list's version. */
  #heldEnvelope: { env: Envelope; version: number } | null = null;
  /**
   * Rebases taken (`rebase version expires`), each until its `expires` by this phone's clock.
   * `rebase` = the held version makes a rebase one-time only while a version once left is never
   * held again, and a config that sets `pointers` takes them at the held version + 1: after a rebase
   * to `held − 1` the next one is the version the rebase named, and the same rebase replayed took the
   * phone down again (the simulator's hostile phone, src/sim/replay.ts; seed 110 once a power cut had
   * emptied an in-memory record). Saved with the state (`rebasesTaken`), loaded at start: a rebase
   * lives at most REBASE_MAX_LIFETIME_MS, so few are kept.
   */
  protected readonly rebasesTaken = new Map<string, RebaseTaken>();

  /** Publish a config result (the Reconfigurator host's, also used for refusals here). */
  protected abstract publishResult(result: ConfigResultPayload): void;

  protected onMessage(broker: string, topic: string, payload: Buffer): void {
    if (!this.running) return;
    const me = this.d.config.phoneId;
    try {
      if (topic === this.t.phoneAck(me)) return this.#onAck(topic, payload);
      if (topic === this.t.phonePointers(me)) return this.#onPushedList(topic, payload);
      if (topic === this.t.phoneConfig(me)) return this.#onConfig(topic, payload);
      if (topic === this.t.phoneStatus(me)) {
        if (this.dup.overwritten(broker, payload)) this.input({ type: 'session-taken', broker });
        else if (this.dup.ownWill(payload)) this.restoreStatus(broker, topic);
        return;
      }
      const cm = this.t.idOf(topic, 'cm');
      if (cm !== undefined && topic === this.t.cmState(cm)) return this.#onCmState(broker, topic, cm, payload);
      if (cm !== undefined && topic === this.t.cmChallengeAnswer(cm, me)) return this.#onCmAnswer(topic, cm, payload);
    } catch (err) {
      this.#reject(topic, errorMessage(err), isIpphoneError(err) ? err.code : undefined);
    }
  }

  /**
   * Signed, of this call manager, strictly newer than the state held
   * (cm-liveness.ts) — whatever `trust.requireSigned` says. An online that
   * cannot be ordered is challenged on the broker it came from.
   */
  #onCmState(broker: string, topic: string, cm: string, payload: Buffer): void {
    if (this.#livenessKeys !== this.keys) this.#liveness.setKeys((this.#livenessKeys = this.keys));
    const v = this.#liveness.check(cm, payload);
    if (v.ok) return this.input({ type: 'cm-state', cm, online: v.online });
    if (v.challenge !== undefined || v.retryInMs !== undefined) {
      if (v.challenge !== undefined) this.#challenge(broker, cm, v.challenge);
      if (v.retryInMs !== undefined) this.#retryChallenge(broker, cm, v.retryInMs);
      // Anyone on an open broker may replay old onlines: a line per gap, as for refusals.
      if (!this.#limited(`unordered|${cm}`)) this.log.info({ cm, err: v.reason }, v.challenge !== undefined ? 'call manager state cannot be ordered: challenged' : 'call manager state cannot be ordered');
      return;
    }
    this.#verdictRefused(topic, v);
  }

  #challenge(broker: string, cm: string, challenge: string): void {
    if (this.transport.isUp(broker)) this.transport.publish(broker, this.t.cmChallenge(cm, this.d.config.phoneId), encodeCmChallenge(challenge), { qos: 1 });
  }

  /** Ask `cm` again in `ms` unless it answered or another state of it was taken (LivenessVerifier.retry); one timer per call manager. */
  #retryChallenge(broker: string, cm: string, ms: number): void {
    if (this.#challengeTimers.has(cm)) return;
    this.#challengeTimers.set(
      cm,
      this.d.clock.setTimeout(() => {
        this.#challengeTimers.delete(cm);
        if (!this.running) return;
        const r = this.#liveness.retry(cm);
        if (r.challenge !== undefined) {
          this.#challenge(broker, cm, r.challenge);
          this.log.info({ cm }, 'call manager not answered yet: challenged again');
        }
        if (r.retryInMs !== undefined) this.#retryChallenge(broker, cm, r.retryInMs);
      }, Math.max(1, ms)),
    );
  }

  /** The answer to our challenge: the run it names is believed (cm-liveness.ts). */
  #onCmAnswer(topic: string, cm: string, payload: Buffer): void {
    if (this.#livenessKeys !== this.keys) this.#liveness.setKeys((this.#livenessKeys = this.keys));
    const v = this.#liveness.answer(cm, payload);
    if (v.ok) {
      this.log.info({ cm, bdSeq: v.run.bdSeq, seq: v.run.seq, online: v.online }, 'call manager answered our challenge: its run is believed');
      return this.input({ type: 'cm-state', cm, online: v.online });
    }
    this.#verdictRefused(topic, v);
  }

  #verdictRefused(topic: string, v: { code: ErrorCode; reason: string; quiet: boolean }): void {
    if (!v.quiet) return this.#reject(topic, v.reason, v.code);
    // Normal to see (a retained state again, an offline of a run never seen online): a log line, rate-limited.
    if (this.#limited(`quiet|${topic}|${v.code}`)) return;
    this.log.info({ topic, code: v.code, err: v.reason }, 'call manager state ignored');
  }

  /** True when `key` had its one line (or event) within the last {@link REJECT_EVENT_GAP_MS}; else records now. */
  #limited(key: string): boolean {
    const now = this.d.clock.elapsed();
    const last = this.#lastRejectAt.get(key);
    if (last !== undefined && now - last < REJECT_EVENT_GAP_MS) return true;
    if (this.#lastRejectAt.size >= 256) this.#lastRejectAt.clear();
    this.#lastRejectAt.set(key, now);
    return false;
  }

  #onAck(topic: string, payload: Buffer): void {
    const at = this.hr();
    const ack = decodeAck(payload);
    this.moveTimer.ack(ack.cm, at);
    this.input({ type: 'ack', cm: ack.cm, seq: ack.seq });
    if (ack.pointers !== undefined) {
      try {
        this.#onList(topic, ack.pointers, 'ack');
      } catch (err) {
        // A call manager repeats its list on every ack until we take it: a replay is not news.
        if (isIpphoneError(err, 'VERSION_REPLAYED')) return;
        throw err;
      }
    }
  }

  /** A pushed list: a signed envelope, or — only with `trust.requireSigned: false` — a bare body. */
  #onPushedList(topic: string, payload: Buffer): void {
    if (!this.cfg.trust.requireSigned && !('sig' in parseJsonPayload(payload))) {
      const body = parsePointersBody(payload, this.#openContext());
      return this.#adopt(topic, body, 'push');
    }
    this.#onList(topic, decodeEnvelope(payload), 'push');
  }

  #openContext(heldVersion = this.s.listVersion): OpenContext {
    return { phoneId: this.d.config.phoneId, heldVersion, now: this.d.clock.now() };
  }

  /** A config change: verified here, applied commit-confirmed by the Reconfigurator. Every refusal gets a result. */
  #onConfig(topic: string, payload: Buffer): void {
    let body: ConfigBody;
    try {
      const ctx = this.#openContext(this.configVersion);
      body = !this.cfg.trust.requireSigned && !('sig' in parseJsonPayload(payload)) ? parseConfigBody(payload, ctx) : openConfig(decodeEnvelope(payload), this.keys, ctx);
    } catch (err) {
      const claimed = claimedVersion(payload);
      this.#reject(topic, errorMessage(err), isIpphoneError(err) ? err.code : undefined);
      if (claimed !== null) this.publishResult({ version: claimed, ok: false, error: errorMessage(err) });
      return;
    }
    this.configVersion = body.version;
    void this.reconfig.change(body.version, body.config);
  }

  #onList(topic: string, env: Envelope, via: 'ack' | 'push'): void {
    // The very envelope we hold, again: an ack repeating it (a replay, not news) or
    // the push twin of the ack we took it from. Settled without verifying, parsing
    // or throwing again — what the checks below would conclude, at a fraction of
    // the cost (each is a visible part of a fleet's failover). Anything else, a
    // second push of it included, takes the full path.
    const held = this.#heldEnvelope;
    if (held !== null && held.version === this.s.listVersion && env.sig === held.env.sig && env.body === held.env.body && env.kid === held.env.kid) {
      if (via === 'ack') return;
      if (this.#ackAdopted === this.s.listVersion) {
        this.#ackAdopted = null;
        return;
      }
    }
    try {
      // A rebase (a lower version replacing one held too far ahead) only when pushed (codec.ts checkRebase).
      const body = openPointers(env, this.keys, { ...this.#openContext(), rebase: via === 'push' });
      if (body.rebase !== undefined) {
        // Remembered before the list is taken: the save that keeps the lower version keeps this too.
        this.rebasesTaken.set(this.#freshRebase(body), { rebase: body.rebase, version: body.version, expires: body.expires ?? 0 });
        this.log.warn({ topic, held: body.rebase, version: body.version }, 'pointer list rebased below the version held');
      }
      this.#ackAdopted = via === 'ack' ? body.version : null;
      this.#adopt(topic, body, via);
      this.#heldEnvelope = { env: { kid: env.kid, sig: env.sig, body: env.body }, version: body.version };
    } catch (err) {
      // A call manager pushes the list its ack already carried: that one
      // duplicate is expected. Any other replay is refused with an event.
      if (via === 'push' && isIpphoneError(err, 'VERSION_REPLAYED') && this.#ackAdopted === this.s.listVersion && this.#isHeld(env)) {
        this.#ackAdopted = null;
        return;
      }
      throw err;
    }
  }

  /** A rebase not taken before (within its lifetime): its key; one taken before throws VERSION_REPLAYED. */
  #freshRebase(body: PointersBody): string {
    const now = this.d.clock.now();
    for (const [k, r] of this.rebasesTaken) if (r.expires <= now) this.rebasesTaken.delete(k);
    const key = rebaseKey(body.rebase!, body.version, body.expires ?? 0);
    if (this.rebasesTaken.has(key)) {
      throw new IpphoneError(`pointers rebase from version ${body.rebase} to ${body.version} was taken before (a replay)`, 'VERSION_REPLAYED', { version: body.version, rebase: body.rebase });
    }
    return key;
  }

  #isHeld(env: Envelope): boolean {
    try {
      const body = JSON.parse(Buffer.from(env.body, 'base64').toString('utf8')) as Partial<PointersBody>;
      // What we hold is the body merged into the list before it (list-merge.ts, idempotent).
      return body.version === this.s.listVersion && Array.isArray(body.list) && samePointerList(mergeGroupList(this.s.list, body.list, body.owns), this.s.list);
    } catch {
      return false;
    }
  }

  #adopt(topic: string, body: PointersBody, via: 'ack' | 'push'): void {
    this.input({ type: 'list', version: body.version, reason: body.reason, list: body.list, via, owns: body.owns });
    this.log.debug({ topic, version: body.version }, 'list accepted');
  }

  #reject(topic: string, error: string, code: string | undefined): void {
    // Acks repeat every keep-alive: one event per gap there. Anyone may flood a call manager's
    // state topic (or, on an open broker, our answer topic): one event per gap and reason code
    // there. Every other refusal is reported.
    const cm = this.t.idOf(topic, 'cm');
    const cmTopic = cm !== undefined && (topic === this.t.cmState(cm) || topic === this.t.cmChallengeAnswer(cm, this.d.config.phoneId));
    const limitKey = topic === this.t.phoneAck(this.d.config.phoneId) ? topic : cmTopic ? `${topic}|${code ?? ''}` : undefined;
    if (limitKey !== undefined && this.#limited(limitKey)) return;
    this.log.warn({ topic, err: error, code }, 'message rejected');
    this.event({ type: 'rejected', topic, error, ...(code ? { code } : {}) });
  }
}

/** The identity of a rebase (what one taken again is known by). */
export function rebaseKey(rebase: number, version: number, expires: number): string {
  return `${rebase} ${version} ${expires}`;
}

/** The version a refused config body claims (unverified: only to address the result), or null. */
function claimedVersion(payload: Buffer): number | null {
  try {
    const o = JSON.parse(payload.toString('utf8')) as { body?: unknown; version?: unknown };
    const body = typeof o.body === 'string' ? (JSON.parse(Buffer.from(o.body, 'base64').toString('utf8')) as { version?: unknown }) : o;
    return typeof body.version === 'number' && Number.isSafeInteger(body.version) && body.version >= 0 ? body.version : null;
  } catch {
    return null;
  }
}
