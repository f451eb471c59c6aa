/**
 * What the agent core needs from the outside world. The composition root
 * (`main.ts`, the fleet, the demo) supplies real adapters; tests supply fakes
 * or real parts on loopback. Nothing in the core imports mqtt.js, serialport
 * or onoff.
 */
import type { Pointer } from '../protocol/types.js';

/** MQTT QoS used by the agent. */
export type Qos = 0 | 1;

export interface PublishOptions {
  qos: Qos;
  retain?: boolean;
}

export type TransportDownReason =
  /** connect attempt failed (refused, DNS, TLS, auth) */
  | 'connect-failed'
  /** no CONNACK within the connect deadline */
  | 'connect-timeout'
  /** an established connection closed or errored */
  | 'closed'
  /** the broker sent DISCONNECT (MQTT 5); see `serverReference` */
  | 'disconnected';

export interface TransportEvents {
  /** A connection to `broker` is up (after CONNACK); subscriptions were (re)made. */
  up(broker: string): void;
  /** A connection attempt failed or an established connection was lost. */
  down(broker: string, reason: TransportDownReason, detail: { error?: string; serverReference?: string; reasonCode?: number }): void;
  /** A message arrived on a subscribed topic. */
  message(broker: string, topic: string, payload: Buffer): void;
}

/**
 * One MQTT connection per distinct broker URL, owned by the agent: the
 * transport never reconnects on its own (mqtt.js `reconnectPeriod: 0`); the
 * agent decides when to call {@link Transport.connect} again.
 */
export interface Transport {
  /** Start one connection attempt to `broker` unless one is up or in progress. Outcome arrives as `up` or `down`. */
  connect(broker: string): void;
  /** Close the connection to `broker` (gracefully, no will) if any. */
  disconnect(broker: string): void;
  /** True while the connection to `broker` is up. */
  isUp(broker: string): boolean;
  /** Subscribe now if up, and again after every reconnect. */
  subscribe(broker: string, topic: string, qos?: Qos): void;
  unsubscribe(broker: string, topic: string): void;
  /** Publish if up; while down, QoS 1 messages wait in a bounded queue (oldest dropped), QoS 0 are dropped. */
  publish(broker: string, topic: string, payload: string | Buffer, opts: PublishOptions): void;
  /** Close every connection. Idempotent. */
  close(): Promise<void>;
}

/** What survives power loss. */
export interface AgentState {
  pointers: Pointer[];
  pointersVersion: number;
  configVersion: number;
  /** The config overlay applied by remote reconfiguration, if any (issue 5). */
  configOverlay?: Record<string, unknown> | undefined;
}

export interface StateStore {
  /** The newest valid saved state, or null when no slot is valid. */
  load(): Promise<AgentState | null>;
  /** Persist `state` unless it equals the last saved one; resolves true when something was written. */
  save(state: AgentState): Promise<boolean>;
  /** Number of slot writes made by this process. */
  readonly writes: number;
}

/** Fetch a services page. Rejects on time-out, non-2xx or transport error. */
export type ServicesFetcher = (url: string, phoneId: string, timeoutMs: number) => Promise<string>;
