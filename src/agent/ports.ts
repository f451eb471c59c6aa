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
  /** A remote config change applied but not yet confirmed (commit-confirmed across a power cut, issue 10). */
  pendingConfig?: PendingConfig | undefined;
  /** Hash of the config file's provisioning fields this state was made under (see `boot-config.ts`). */
  fileHash?: string | undefined;
  /**
   * Rebases this phone took that have not expired (agent-messages.ts): the same one again is refused,
   * across a restart too — a version once left may be held again (a config's pointers at held + 1).
   */
  rebasesTaken?: RebaseTaken[] | undefined;
}

/** A rebase taken: the version it replaced, the one it gave, and its `expires` (the phone's clock). */
export interface RebaseTaken {
  rebase: number;
  version: number;
  expires: number;
}

/**
 * An unconfirmed remote config change as kept on flash. `remainingMs` is what
 * was left of its confirmation window when it was saved; a boot counts it
 * down again from the start (see reconfig.ts for why no wall clock is used).
 */
export interface PendingConfig {
  /** Config version of the (latest) unconfirmed change. */
  version: number;
  remainingMs: number;
  /** Restart-only paths the unconfirmed change(s) touched. */
  restart: string[];
  /** True when a change in the chain touched `pointers`: a rollback then restores `prev`'s list. */
  pointersTouched: boolean;
  /** The last confirmed state: its overlay and the list held before the change. */
  prev: { overlay: Record<string, unknown>; pointers: Pointer[]; pointersVersion: number };
}

/** Whether the flash state can be trusted to hold what the phone runs with. */
export type StorageHealth =
  /** the last save reached flash */
  | 'ok'
  /** the last save failed; retrying with backoff, the status reports what is on flash */
  | 'unsaved'
  /** the state directory cannot be used; running from the config file, nothing survives a restart */
  | 'unavailable';

export interface StateStore {
  /** The newest valid saved state, or null when no slot is valid. */
  load(): Promise<AgentState | null>;
  /** Persist `state` unless it equals the last saved one; resolves true when something was written. */
  save(state: AgentState): Promise<boolean>;
  /** Number of slot writes made by this process. */
  readonly writes: number;
  /** Health of the flash state (a retrying store, `store/retrying-store.ts`); absent means always 'ok'. */
  readonly storage?: StorageHealth;
  /** The state known to be on flash (loaded or last saved), or null; absent when the store does not track it. */
  readonly flashed?: AgentState | null;
  /** Called when {@link storage} or {@link flashed} changes outside a save call (a background retry). */
  onChange?(fn: () => void): void;
  /** Stop background retries. */
  close?(): void;
}

/** Fetch a services page. Rejects on time-out, non-2xx or transport error. */
export type ServicesFetcher = (url: string, phoneId: string, timeoutMs: number) => Promise<string>;
