/**
 * The failover machine's data: its state, inputs, effects and tunables, and
 * the pure helpers around them (initial state, backoff, phase, copy). The
 * machine itself is machine.ts.
 */
import type { Pointer, PointerReason, RehomeReason } from '../protocol/types.js';
import type { Clock } from '../lib/clock.js';


/** Tunables, all in milliseconds except counts. */
export interface MachineConfig {
  /** Keep-alive period to the home and probe period to higher pointers. */
  intervalMs: number;
  /** Acks missing in a row before a call manager is declared lost. */
  missLimit: number;
  /** An ack later than this after its keep-alive counts as missing. */
  ackTimeoutMs: number;
  /** A higher pointer must be healthy this long before we fall back to it. */
  holdMs: number;
  /** Full-jitter exponential backoff between failed rounds and broker retries. */
  backoffBaseMs: number;
  backoffMaxMs: number;
}

export interface Health {
  /** From the call manager's retained `state`; null while unknown. */
  online: boolean | null;
  /** When the current run of healthy answers began; null while not healthy. */
  healthySince: number | null;
  lastAckAt: number | null;
  misses: number;
  /** Set when the pointer failed; cleared by its next ack. */
  failedAt: number | null;
  /** Highest seq sent to / acked by this pointer. */
  sentSeq: number;
  ackedSeq: number;
  /** Outstanding keep-alive, if any, and whether its miss was counted. */
  pending: { seq: number; at: number; counted: boolean } | null;
}

export interface BrokerState {
  status: 'down' | 'connecting' | 'up';
  /**
   * Failed attempts in a row, for backoff. A CONNACK does not reset it (a broker that accepts and
   * drops would be retried every 0–1 s for ever); an ack from a call manager on the broker, or a
   * connection that lived {@link provenAfterMs}, does.
   */
  failures: number;
  /** Earliest time of the next attempt when down. */
  retryAt: number;
  /** When the current connection came up; null while not up. */
  upSince: number | null;
  /**
   * MQTT 5 "session taken over" (0x8E) disconnects since the last connection that lasted
   * {@link takeoverClearMs}: another client with our client id — a cloned phone. Acks do not reset
   * it (the clone's call manager acks us too while we hold the session); it sets the backoff
   * exponent when larger than `failures`, and {@link DUPLICATE_AFTER} of them flag a duplicate id.
   */
  takeovers: number;
}

/** MQTT 5 DISCONNECT reason code "Session taken over": another connection used our client id. */
export const SESSION_TAKEN_OVER = 0x8e;
/** Takeovers in a row that make the phone report a duplicate id (one can be our own stale session). */
export const DUPLICATE_AFTER = 2;

/** A connection that lived this long proved itself even without acks (a standby or probe broker). */
export function provenAfterMs(cfg: MachineConfig): number {
  return cfg.backoffMaxMs;
}

/** A connection that lives this long with acks clears the takeover count: longer than any clone waits (its backoff cap). */
export function takeoverClearMs(cfg: MachineConfig): number {
  return 2 * cfg.backoffMaxMs;
}

/** Another phone uses our id: a broker keeps handing our session to someone else. Reported as `duplicateId` in the status. */
export function duplicateId(s: MachineState): boolean {
  for (const b of Object.values(s.brokers)) if (b.takeovers >= DUPLICATE_AFTER) return true;
  return false;
}

/** Why the phone moved: the contract's rehome reasons (`sip-failed`: the home's SIP registrar refused or did not answer the phone's REGISTER). */
export type MoveReason = RehomeReason;

export interface Move {
  target: string;
  reason: MoveReason | 'start';
  /** When the move was decided. */
  since: number;
  /** Time from the last sign of life of the old home to the decision (failures), else 0. */
  detectMs: number;
  /** Misses of the target during this attempt. */
  misses: number;
}

export interface MachineState {
  cfg: MachineConfig;
  started: boolean;
  list: Pointer[];
  listVersion: number;
  /** Reason of the list we hold; `rebalance` drives deferred moves. */
  listReason: PointerReason | null;
  home: string | null;
  /** The last home we had, for `from` in events after an outage. */
  lastHome: string | null;
  /** Broker key of the last home: kept connected until a new home acks (the management channel). */
  lastHomeBroker: string | null;
  move: Move | null;
  /** Pointers tried and failed in the current search round. */
  tried: string[];
  /** While waiting out a round's backoff: when to start the next round. */
  roundRetryAt: number | null;
  rounds: number;
  busy: boolean;
  seq: number;
  nextTickAt: number | null;
  health: Record<string, Health>;
  brokers: Record<string, BrokerState>;
  rehomes: number;
  wakeAt: number | null;
}

export type Input =
  | { type: 'start' }
  | { type: 'wake' }
  | { type: 'broker-up'; broker: string }
  /** `reasonCode`: of an MQTT 5 DISCONNECT from the broker, if one came (0x8E = session taken over). */
  | { type: 'broker-down'; broker: string; serverReference?: string | undefined; reasonCode?: number | undefined }
  /** Another client used our id on this broker (our retained status overwritten by another run). */
  | { type: 'session-taken'; broker: string }
  | { type: 'ack'; cm: string; seq: number }
  | { type: 'cm-state'; cm: string; online: boolean }
  /** A verified list whose version is newer than ours. */
  | { type: 'list'; version: number; reason: PointerReason; list: Pointer[]; via: 'ack' | 'push'; /** The group's ids (list-merge.ts): other held pointers are kept. */ owns?: readonly string[] | undefined }
  | { type: 'busy'; busy: boolean }
  /** The phone could not register at call manager `cm`'s SIP registrar (sip-registration.ts): that pointer fails. */
  | { type: 'sip-failed'; cm: string; reason: string }
  | { type: 'config'; cfg: MachineConfig };

export type Effect =
  | { type: 'connect'; broker: string }
  | { type: 'disconnect'; broker: string }
  | { type: 'send'; to: string; broker: string; seq: number; probe: boolean }
  | { type: 'wake'; at: number | null }
  | { type: 'persist' }
  | { type: 'event'; event: Record<string, unknown> & { type: string } }
  | { type: 'log'; level: 'info' | 'warn' | 'debug'; msg: string; data: Record<string, unknown> };

export interface Env {
  /**
   * Monotonic ms ({@link Clock.elapsed}), never the wall clock: every time in
   * the state (deadlines, `healthySince`, `lastAckAt`, `wakeAt`) is on this
   * clock, so an NTP step moves none of them (issue 10).
   */
  now: number;
  /** Uniform in [0, 1). */
  random: () => number;
}

export interface Step {
  state: MachineState;
  effects: Effect[];
}

/** A fresh machine holding `list` at `listVersion`; nothing happens until `start`. */
export function initialState(cfg: MachineConfig, list: Pointer[], listVersion: number): MachineState {
  return {
    cfg,
    started: false,
    list: list.map((p) => ({ ...p })),
    listVersion,
    listReason: null,
    home: null,
    lastHome: null,
    lastHomeBroker: null,
    move: null,
    tried: [],
    roundRetryAt: null,
    rounds: 0,
    busy: false,
    seq: 0,
    nextTickAt: null,
    health: {},
    brokers: {},
    rehomes: 0,
    wakeAt: null,
  };
}

/** Full-jitter backoff: uniform in [0, min(max, base·2^n)) (AWS architecture blog, "Exponential Backoff And Jitter"). */
export function backoffMs(cfg: MachineConfig, attempt: number, random: () => number): number {
  const cap = Math.min(cfg.backoffMaxMs, cfg.backoffBaseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * cap);
}

/** The state's coarse name, as published in `status.state`. */
export function phaseOf(s: MachineState): 'starting' | 'homed' | 'moving' | 'searching' | 'no-service' {
  if (!s.started) return 'starting';
  if (s.home !== null) return s.move ? 'moving' : 'homed';
  return s.move ? 'searching' : 'no-service';
}

/**
 * A copy of `s` that the machine may change without touching `s`: every
 * object it mutates is copied (health and its pending keep-alive, brokers,
 * the move, tried, the list's entries); `cfg` is only ever replaced. A
 * hand-written copy, not structuredClone, which was most of a step's cost
 * (a step is most of a keep-alive's). The hostile-input suite checks that
 * `next` never changes its input.
 */
export function cloneState(s: MachineState): MachineState {
  const health: Record<string, Health> = {};
  for (const [id, h] of Object.entries(s.health)) health[id] = { ...h, pending: h.pending === null ? null : { ...h.pending } };
  const brokers: Record<string, BrokerState> = {};
  for (const [key, b] of Object.entries(s.brokers)) brokers[key] = { ...b };
  return { ...s, list: s.list.map((p) => ({ ...p })), move: s.move === null ? null : { ...s.move }, tried: [...s.tried], health, brokers };
}

/** A keep-alive is out and its ack is not yet due. */
export function awaiting(h: Health | undefined): boolean {
  return h?.pending != null && !h.pending.counted;
}
