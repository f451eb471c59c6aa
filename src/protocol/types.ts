/**
 * Wire types of the MQTT protocol (shared/CONTRACT.md). Pure data; the codecs
 * in `codec.ts` turn untrusted bytes into these or refuse them.
 */

/** One call manager as a phone sees it. */
export interface Pointer {
  /** Call manager id, 1–64 chars of [A-Za-z0-9._-]. */
  id: string;
  /** `mqtt:`, `mqtts:`, `ws:` or `wss:` URL of the broker the call manager uses. */
  broker: string;
  /** `http:` or `https:` URL of the call manager's services page. */
  services: string;
  /** Optional SIP registrar of the call manager, `sip:HOST:PORT;transport=tcp` (protocol/sip-uri.ts). */
  sip?: string;
}

export const POINTER_REASONS = ['failover', 'rebalance', 'admin'] as const;
export type PointerReason = (typeof POINTER_REASONS)[number];

export const REHOME_REASONS = [
  'keepalive-loss',
  'cm-offline',
  'services-timeout',
  'broker-lost',
  'pushed',
  'rebalance',
  'fallback',
  'redirect',
  // The home's SIP registrar refused or did not answer this phone's REGISTER (issue 11).
  'sip-failed',
] as const;
export type RehomeReason = (typeof REHOME_REASONS)[number];

/** Body of a signed pointer list. */
export interface PointersBody {
  /** Strictly increasing per phone; the phone refuses anything ≤ what it holds. */
  version: number;
  reason: PointerReason;
  /** 1–16 pointers, unique ids; the first is the primary. */
  list: Pointer[];
  /** Optional ms since the epoch after which the body is refused. */
  expires?: number;
  /** Optional phone id the body is meant for; refused by any other phone. */
  phone?: string;
  /**
   * Extension: ids of the call-manager group the list orders (a call manager
   * sets it). The phone keeps the pointers it holds outside the group
   * (protocol/list-merge.ts); absent, the list replaces the held one.
   */
  owns?: string[];
  /**
   * Extension (issue 15): the version this body replaces although its own
   * `version` is lower — a rebase, taken only signed, pushed, bound and short-lived
   * (protocol/codec.ts `checkRebase`).
   */
  rebase?: number;
}

/** Body of a signed config change. */
export interface ConfigBody {
  version: number;
  /** Partial agent config merged over the current one. */
  config: Record<string, unknown>;
  expires?: number;
  phone?: string;
}

/** `{ kid, body, sig }`: body is base64 of UTF-8 JSON, sig base64 Ed25519 over exactly those bytes. */
export interface Envelope {
  kid: string;
  body: string;
  sig: string;
}

/** phone → CM on `P/cm/{cmId}/keepalive`. */
export interface KeepalivePayload {
  phone: string;
  seq: number;
  pointersVersion: number;
  busy: boolean;
  /** Extension: a health probe from a phone homed elsewhere; the CM answers but does not count it as homed. */
  probe?: boolean;
  /** Extension: the id of the call manager the phone was homed to before this one. */
  prev?: string | null;
}

/** CM → phone on `P/phone/{phoneId}/ack`. */
export interface AckPayload {
  cm: string;
  seq: number;
  /** The phone's current list, signed; absent when `pointersVersion` says the phone has it. */
  pointers?: Envelope;
  pointersVersion?: number;
}

/** CM → all on `P/cm/{cmId}/state` (retained, will `{ online: false }`). */
export interface CmStatePayload {
  online: boolean;
}

/** CM → group on `P/cm/{cmId}/load` (retained). */
export interface LoadPayload {
  phones: number;
  capacity: number;
  servicesRps: number;
  /** Extension: the highest pointer-list version this call manager issued or observed (peers order their versions above it). */
  version?: number;
}

/** phone → all on `P/phone/{phoneId}/status` (retained, will `{ online: false }`). */
export interface StatusPayload {
  online: boolean;
  home: string | null;
  services: string | null;
  state: string;
  pointersVersion: number;
  configVersion: number;
  rehomes: number;
  [extra: string]: unknown;
}

/** phone → operator on `P/phone/{phoneId}/config/result`. */
export interface ConfigResultPayload {
  version: number;
  ok: boolean;
  error?: string;
  [extra: string]: unknown;
}

export interface RehomedEvent {
  type: 'rehomed';
  from: string | null;
  to: string;
  reason: RehomeReason;
  detectMs: number;
  rehomeMs: number;
}

export interface RejectedEvent {
  type: 'rejected';
  topic: string;
  error: string;
  code?: string;
}

export type PhoneEvent = RehomedEvent | RejectedEvent | { type: string; [k: string]: unknown };
