/** Topic builders for shared/CONTRACT.md. `prefix` defaults to `ipphone/v1`. */
export const DEFAULT_PREFIX = 'ipphone/v1';

export interface Topics {
  /** `P/cm/{cmId}/keepalive`: the contract's keep-alive topic, shared by every phone. */
  cmKeepalive(cmId: string): string;
  /**
   * `P/cm/{cmId}/keepalive/{phoneId}`: the keep-alive topic that names its
   * phone, so a broker ACL can let each identity write only its own (the call
   * manager trusts this id over the payload's `phone`).
   */
  cmPhoneKeepalive(cmId: string, phoneId: string): string;
  /** `P/cm/{cmId}/keepalive/+`: what a call manager subscribes to for the per-phone topics. */
  cmPhoneKeepaliveFilter(cmId: string): string;
  cmState(cmId: string): string;
  /**
   * `P/cm/{cmId}/challenge/{from}`: receiver `from` (a phone or a peer call
   * manager) asks the live `cmId` to sign its state with a random challenge
   * (cm-liveness.ts). The topic names the challenger, so an ACL lets each
   * identity write only its own.
   */
  cmChallenge(cmId: string, from: string): string;
  /** `P/cm/{cmId}/challenge/+`: what a call manager subscribes to for its challenges. */
  cmChallengeFilter(cmId: string): string;
  /** `P/cm/{cmId}/challenge/{from}/answer`: the signed state answering `from`'s challenge. */
  cmChallengeAnswer(cmId: string, from: string): string;
  cmLoad(cmId: string): string;
  phoneAck(phoneId: string): string;
  phonePointers(phoneId: string): string;
  phoneConfig(phoneId: string): string;
  phoneConfigResult(phoneId: string): string;
  phoneStatus(phoneId: string): string;
  phoneEvent(phoneId: string): string;
  /** Wildcards for subscribers that watch many. */
  allCmState: string;
  allCmLoad: string;
  allPhoneStatus: string;
  /** The id in `P/{kind}/{id}/…`, or undefined when `topic` is not of that kind. */
  idOf(topic: string, kind: 'cm' | 'phone'): string | undefined;
}

const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** True for ids that are safe as one MQTT topic level (no `/`, `+`, `#`). */
export function isValidId(id: unknown): id is string {
  return typeof id === 'string' && ID_RE.test(id);
}

export function topics(prefix: string = DEFAULT_PREFIX): Topics {
  const p = prefix.replace(/\/+$/, '');
  const level = (id: string): string => {
    if (!isValidId(id)) throw new TypeError(`invalid id for a topic level: ${JSON.stringify(id)}`);
    return id;
  };
  return {
    cmKeepalive: (id) => `${p}/cm/${level(id)}/keepalive`,
    cmPhoneKeepalive: (id, phone) => `${p}/cm/${level(id)}/keepalive/${level(phone)}`,
    cmPhoneKeepaliveFilter: (id) => `${p}/cm/${level(id)}/keepalive/+`,
    cmState: (id) => `${p}/cm/${level(id)}/state`,
    cmChallenge: (id, from) => `${p}/cm/${level(id)}/challenge/${level(from)}`,
    cmChallengeFilter: (id) => `${p}/cm/${level(id)}/challenge/+`,
    cmChallengeAnswer: (id, from) => `${p}/cm/${level(id)}/challenge/${level(from)}/answer`,
    cmLoad: (id) => `${p}/cm/${level(id)}/load`,
    phoneAck: (id) => `${p}/phone/${level(id)}/ack`,
    phonePointers: (id) => `${p}/phone/${level(id)}/pointers`,
    phoneConfig: (id) => `${p}/phone/${level(id)}/config`,
    phoneConfigResult: (id) => `${p}/phone/${level(id)}/config/result`,
    phoneStatus: (id) => `${p}/phone/${level(id)}/status`,
    phoneEvent: (id) => `${p}/phone/${level(id)}/event`,
    allCmState: `${p}/cm/+/state`,
    allCmLoad: `${p}/cm/+/load`,
    allPhoneStatus: `${p}/phone/+/status`,
    idOf(topic, kind) {
      if (!topic.startsWith(`${p}/${kind}/`)) return undefined;
      const id = topic.slice(p.length + kind.length + 2).split('/')[0];
      return id !== undefined && isValidId(id) ? id : undefined;
    },
  };
}
