/**
 * The agent's inbound messages: acks, pushed lists and config changes on the
 * phone's own topics, and call-manager states. Decodes and verifies each,
 * settles the ack/push duplicates a call manager sends by design, and turns
 * every refusal into a (rate-limited) `rejected` event. Valid content becomes
 * machine inputs; config bodies go to the Reconfigurator.
 */
import { errorMessage, isIpphoneError } from '../lib/errors.js';
import { decodeAck, decodeCmState, decodeEnvelope, openConfig, openPointers, parseConfigBody, parseJsonPayload, parsePointersBody, type OpenContext } from '../protocol/codec.js';
import { samePointerList } from '../protocol/pointers.js';
import type { ConfigBody, ConfigResultPayload, Envelope, PointersBody } from '../protocol/types.js';
import { AgentCore } from './agent-core.js';

/** Rejected-event rate limit per topic (ack lists can repeat every keep-alive). */
const REJECT_EVENT_GAP_MS = 10_000;

/** Message handling on top of the effect runner; the agent adds lifecycle and the reconfiguration host. */
export abstract class AgentMessages extends AgentCore {
  #lastRejectAt = new Map<string, number>();
  /** Version of a list adopted from an ack whose pushed twin has not arrived yet. */
  #ackAdopted: number | null = null;
  /** The signed envelope a list was last adopted from, with that list's version. */
  #heldEnvelope: { env: Envelope; version: number } | null = null;

  /** Publish a config result (the Reconfigurator host's, also used for refusals here). */
  protected abstract publishResult(result: ConfigResultPayload): void;

  protected onMessage(broker: string, topic: string, payload: Buffer): void {
    if (!this.running) return;
    const me = this.d.config.phoneId;
    try {
      if (topic === this.t.phoneAck(me)) return this.#onAck(topic, payload);
      if (topic === this.t.phonePointers(me)) return this.#onPushedList(topic, payload);
      if (topic === this.t.phoneConfig(me)) return this.#onConfig(topic, payload);
      const cm = this.t.idOf(topic, 'cm');
      if (cm !== undefined && topic === this.t.cmState(cm)) {
        const st = decodeCmState(payload);
        return this.input({ type: 'cm-state', cm, online: st.online });
      }
    } catch (err) {
      this.#reject(topic, errorMessage(err), isIpphoneError(err) ? err.code : undefined);
    }
    void broker;
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
      const body = openPointers(env, this.keys, this.#openContext());
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

  #isHeld(env: Envelope): boolean {
    try {
      const body = JSON.parse(Buffer.from(env.body, 'base64').toString('utf8')) as Partial<PointersBody>;
      return body.version === this.s.listVersion && Array.isArray(body.list) && samePointerList(body.list, this.s.list);
    } catch {
      return false;
    }
  }

  #adopt(topic: string, body: PointersBody, via: 'ack' | 'push'): void {
    this.input({ type: 'list', version: body.version, reason: body.reason, list: body.list, via });
    this.log.debug({ topic, version: body.version }, 'list accepted');
  }

  #reject(topic: string, error: string, code: string | undefined): void {
    this.log.warn({ topic, err: error, code }, 'message rejected');
    // Acks repeat every keep-alive: one event per gap there. Every other refusal is reported.
    if (topic === this.t.phoneAck(this.d.config.phoneId)) {
      const now = this.d.clock.now();
      const last = this.#lastRejectAt.get(topic);
      if (last !== undefined && now - last < REJECT_EVENT_GAP_MS) return;
      this.#lastRejectAt.set(topic, now);
    }
    this.event({ type: 'rejected', topic, error, ...(code ? { code } : {}) });
  }
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
