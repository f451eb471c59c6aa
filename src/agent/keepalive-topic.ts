/**
 * Which topic the agent's keep-alives go to, and those topic strings built
 * once per call manager rather than once per keep-alive (a fleet sends tens
 * of thousands a second).
 *
 * The contract's `P/cm/{cmId}/keepalive` is one topic for every phone, so a
 * broker cannot tell who may write there: any client could speak for any
 * phone. `P/cm/{cmId}/keepalive/{phoneId}` names the phone in the topic,
 * which a broker ACL ties to the client's identity (mosquitto `pattern write
 * P/cm/+/keepalive/%u`), and the call manager trusts that id over the
 * payload's. A connection without an identity cannot be told apart anyway,
 * so it keeps the contract's topic.
 */
import type { AgentConfig } from '../config/agent-config.js';
import { hasIdentity } from '../config/mqtt-credentials.js';
import type { Topics } from '../protocol/topics.js';

/** The topic kind in use: `shared` = `P/cm/{cmId}/keepalive`, `per-phone` = `P/cm/{cmId}/keepalive/{phoneId}`. */
export type KeepaliveTopicKind = 'shared' | 'per-phone';

/**
 * `keepalive.topic` resolved: `shared` and `per-phone` as configured; `auto`
 * is `per-phone` when the connection carries an identity (`mqtt.cert` or
 * `mqtt.username` set), else `shared`.
 */
export function keepaliveTopicKind(cfg: { keepalive: Pick<AgentConfig['keepalive'], 'topic'>; mqtt: Pick<AgentConfig['mqtt'], 'username' | 'cert'> }): KeepaliveTopicKind {
  const mode = cfg.keepalive.topic;
  if (mode === 'shared' || mode === 'per-phone') return mode;
  return hasIdentity(cfg.mqtt) ? 'per-phone' : 'shared';
}

/** Most call managers whose topics are kept; more (lists that keep changing) start the cache afresh. */
const MAX_CACHED = 64;

/** Keep-alive topics of one phone, by call manager id, each built on first use. */
export class KeepaliveTopics {
  readonly kind: KeepaliveTopicKind;
  readonly #t: Topics;
  readonly #phoneId: string;
  readonly #byCm = new Map<string, string>();

  constructor(t: Topics, phoneId: string, kind: KeepaliveTopicKind) {
    this.#t = t;
    this.#phoneId = phoneId;
    this.kind = kind;
  }

  /** The topic of keep-alives to `cmId`. Throws TypeError for an id that is not one topic level. */
  for(cmId: string): string {
    let topic = this.#byCm.get(cmId);
    if (topic === undefined) {
      topic = this.kind === 'per-phone' ? this.#t.cmPhoneKeepalive(cmId, this.#phoneId) : this.#t.cmKeepalive(cmId);
      if (this.#byCm.size >= MAX_CACHED) this.#byCm.clear();
      this.#byCm.set(cmId, topic);
    }
    return topic;
  }
}
