/**
 * The phone's failover machine: pure, deterministic, no I/O.
 *
 * `next(state, input, env)` returns a new state and the effects a runner must
 * perform (connect a broker, send a keep-alive, raise an event, persist the
 * list, wake me at time T). Time enters only through `env.now`, randomness only
 * through `env.random`; a timer expiring is just another input (`wake`). One
 * wake-up time covers every deadline (ack time-outs, the next keep-alive tick,
 * backoff, the fallback hold), so the runner owns exactly one timer.
 *
 * Vocabulary: the *home* is the pointer whose call manager acked us and that we
 * keep-alive; a *target* is a pointer we are trying to move to (after a failure
 * with no home, or make-before-break for voluntary moves, with the home kept
 * until the target acks); *probes* are keep-alives to pointers above the home,
 * answered but not counted by those call managers, that measure their health
 * for fallback.
 */
import type { Pointer, PointerReason, RehomeReason } from '../protocol/types.js';
import { brokerKey } from '../protocol/pointers.js';

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
  /** Failed attempts in a row, for backoff. */
  failures: number;
  /** Earliest time of the next attempt when down. */
  retryAt: number;
}

export interface Move {
  target: string;
  reason: RehomeReason | 'start';
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
  | { type: 'broker-down'; broker: string; serverReference?: string | undefined }
  | { type: 'ack'; cm: string; seq: number }
  | { type: 'cm-state'; cm: string; online: boolean }
  /** A verified list whose version is newer than ours. */
  | { type: 'list'; version: number; reason: PointerReason; list: Pointer[]; via: 'ack' | 'push' }
  | { type: 'busy'; busy: boolean }
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
function cloneState(s: MachineState): MachineState {
  const health: Record<string, Health> = {};
  for (const [id, h] of Object.entries(s.health)) health[id] = { ...h, pending: h.pending === null ? null : { ...h.pending } };
  const brokers: Record<string, BrokerState> = {};
  for (const [key, b] of Object.entries(s.brokers)) brokers[key] = { ...b };
  return { ...s, list: s.list.map((p) => ({ ...p })), move: s.move === null ? null : { ...s.move }, tried: [...s.tried], health, brokers };
}

export function next(state: MachineState, input: Input, env: Env): Step {
  const s = cloneState(state);
  const fx: Effect[] = [];
  const m = new Machine(s, fx, env);
  m.handle(input);
  m.evaluate();
  m.syncBrokers();
  m.scheduleWake();
  return { state: s, effects: fx };
}

class Machine {
  /** Brokers wanted connected, computed by syncBrokers. */
  want = new Set<string>();

  constructor(
    readonly s: MachineState,
    readonly fx: Effect[],
    readonly env: Env,
  ) {}

  get now(): number {
    return this.env.now;
  }

  handle(input: Input): void {
    const s = this.s;
    switch (input.type) {
      case 'start':
        if (s.started) return;
        s.started = true;
        s.nextTickAt = this.now + s.cfg.intervalMs;
        this.log('info', 'agent started', { pointers: s.list.map((p) => p.id), version: s.listVersion });
        this.startRound();
        return;
      case 'wake':
        // The runner's timer has fired and is gone: whatever is due next must be asked for again,
        // even the same instant (timers may fire a millisecond early by Date.now()).
        s.wakeAt = null;
        return; // evaluate() does the work
      case 'broker-up':
        return this.brokerUp(input.broker);
      case 'broker-down':
        return this.brokerDown(input.broker, input.serverReference);
      case 'ack':
        return this.ack(input.cm, input.seq);
      case 'cm-state':
        return this.cmState(input.cm, input.online);
      case 'list':
        return this.adoptList(input);
      case 'busy':
        if (s.busy !== input.busy) this.log('info', input.busy ? 'phone busy' : 'phone idle', {});
        s.busy = input.busy;
        return;
      case 'config':
        s.cfg = input.cfg;
        return;
    }
  }

  // ---- helpers -----------------------------------------------------------

  log(level: 'info' | 'warn' | 'debug', msg: string, data: Record<string, unknown>): void {
    this.fx.push({ type: 'log', level, msg, data });
  }

  pointer(id: string | null): Pointer | undefined {
    return id === null ? undefined : this.s.list.find((p) => p.id === id);
  }

  indexOf(id: string | null): number {
    return id === null ? -1 : this.s.list.findIndex((p) => p.id === id);
  }

  health(id: string): Health {
    let h = this.s.health[id];
    if (!h) {
      h = { online: null, healthySince: null, lastAckAt: null, misses: 0, failedAt: null, sentSeq: 0, ackedSeq: 0, pending: null };
      this.s.health[id] = h;
    }
    return h;
  }

  broker(key: string): BrokerState {
    let b = this.s.brokers[key];
    if (!b) {
      b = { status: 'down', failures: 0, retryAt: 0 };
      this.s.brokers[key] = b;
    }
    return b;
  }

  brokerOf(id: string): string | undefined {
    const p = this.pointer(id);
    return p ? brokerKey(p.broker) : undefined;
  }

  isUp(id: string): boolean {
    const b = this.brokerOf(id);
    return b !== undefined && this.s.brokers[b]?.status === 'up';
  }

  /** Known not to work right now: offline, or failed and not answered since. */
  knownBad(id: string): boolean {
    const h = this.s.health[id];
    if (!h) return false;
    return h.online === false || (h.failedAt !== null && h.healthySince === null);
  }

  send(id: string, probe: boolean): void {
    const b = this.brokerOf(id);
    if (b === undefined || this.s.brokers[b]?.status !== 'up') return;
    const h = this.health(id);
    const seq = ++this.s.seq;
    h.sentSeq = seq;
    h.pending = { seq, at: this.now, counted: false };
    this.fx.push({ type: 'send', to: id, broker: b, seq, probe });
  }

  markFailed(id: string): void {
    const h = this.health(id);
    h.failedAt = this.now;
    h.healthySince = null;
    h.pending = null;
    h.misses = 0;
  }

  // ---- moves ---------------------------------------------------------------

  /** Begin (or restart) a search round from the top of the list. */
  startRound(): void {
    this.s.tried = [];
    this.s.roundRetryAt = null;
    this.tryNext(this.s.list[0]?.id ?? null, 'start', 0, true);
  }

  /**
   * Try the next pointer at or after `fromId` (wrapping) that is untried this
   * round; prefers pointers not known to be bad, then any untried one. With
   * none left, the round failed: back off with full jitter.
   */
  tryNext(fromId: string | null, reason: Move['reason'], detectMs: number, inclusive: boolean): void {
    const s = this.s;
    const n = s.list.length;
    const start = Math.max(0, this.indexOf(fromId));
    const order: string[] = [];
    for (let i = inclusive ? 0 : 1; i <= n; i++) {
      const p = s.list[(start + i) % n];
      if (p && !order.includes(p.id)) order.push(p.id);
    }
    const untried = order.filter((id) => !s.tried.includes(id) && id !== s.home);
    const pick = untried.find((id) => !this.knownBad(id)) ?? untried[0];
    if (pick === undefined) {
      s.move = null;
      s.rounds++;
      const wait = backoffMs(s.cfg, s.rounds - 1, this.env.random);
      s.roundRetryAt = this.now + wait;
      this.log('warn', 'no call manager answered; backing off', { round: s.rounds, waitMs: wait });
      return;
    }
    this.beginMove(pick, reason, detectMs);
  }

  beginMove(target: string, reason: Move['reason'], detectMs: number): void {
    const s = this.s;
    s.move = { target, reason, since: this.now, detectMs, misses: 0 };
    this.log('info', 'rehoming', { from: s.home ?? s.lastHome, to: target, reason });
    const h = this.health(target);
    h.pending = null;
    // Search overrides per-broker backoff: connect now.
    const b = this.brokerOf(target);
    if (b !== undefined) {
      const st = this.broker(b);
      if (st.status === 'down') st.retryAt = this.now;
    }
    this.send(target, false);
  }

  /** The home failed: leave it and search from the next pointer. */
  homeFailed(reason: RehomeReason, alsoFailed: string[] = []): void {
    const s = this.s;
    const home = s.home;
    if (home === null) return;
    const lastAck = s.health[home]?.lastAckAt ?? this.now;
    this.log('warn', 'home lost', { home, reason });
    this.markFailed(home);
    s.lastHome = home;
    s.home = null;
    s.tried = [...new Set([home, ...alsoFailed])];
    s.roundRetryAt = null;
    // A voluntary move already in progress becomes the failover target.
    if (s.move && s.move.target !== home && !this.knownBad(s.move.target)) {
      s.move.reason = reason;
      s.move.since = this.now;
      s.move.detectMs = this.now - lastAck;
      return;
    }
    this.tryNext(home, reason, this.now - lastAck, false);
  }

  /** The target of a move failed. */
  targetFailed(why: string, alsoFailed: string[] = []): void {
    const s = this.s;
    const mv = s.move;
    if (!mv) return;
    this.log('warn', 'rehome target failed', { target: mv.target, why });
    this.markFailed(mv.target);
    for (const id of [mv.target, ...alsoFailed]) if (!s.tried.includes(id)) s.tried.push(id);
    s.move = null;
    if (s.home !== null && this.pointer(s.home)) return; // voluntary move: stay where we are
    if (s.home !== null) {
      // Our home left the list (a new list without it) and its replacement does not answer:
      // staying would keep us on a call manager we are no longer assigned to.
      s.lastHome = s.home;
      s.home = null;
    }
    this.tryNext(mv.target, mv.reason, mv.detectMs, false);
  }

  completeMove(target: string): void {
    const s = this.s;
    const mv = s.move;
    if (!mv || mv.target !== target) return;
    const from = s.home ?? s.lastHome;
    s.move = null;
    s.home = target;
    s.lastHome = target;
    s.lastHomeBroker = this.brokerOf(target) ?? null;
    s.tried = [];
    s.rounds = 0;
    s.roundRetryAt = null;
    s.nextTickAt = this.now + s.cfg.intervalMs;
    const rehomeMs = this.now - mv.since;
    if (mv.reason === 'start' || from === null) {
      this.fx.push({ type: 'event', event: { type: 'homed', to: target, rehomeMs } });
      this.log('info', 'homed', { home: target, rehomeMs });
      return;
    }
    if (from === target) {
      this.log('info', 'homed again', { home: target, rehomeMs });
      return;
    }
    s.rehomes++;
    this.fx.push({ type: 'event', event: { type: 'rehomed', from, to: target, reason: mv.reason, detectMs: mv.detectMs, rehomeMs } });
    this.log('info', 'rehomed', { from, to: target, reason: mv.reason, detectMs: mv.detectMs, rehomeMs });
  }

  // ---- inputs ----------------------------------------------------------------

  brokerUp(broker: string): void {
    const b = this.broker(brokerKey(broker));
    b.status = 'up';
    b.failures = 0;
    const mv = this.s.move;
    if (mv && this.brokerOf(mv.target) === brokerKey(broker) && !awaiting(this.s.health[mv.target])) {
      this.send(mv.target, false);
    }
  }

  brokerDown(broker: string, serverReference: string | undefined): void {
    const s = this.s;
    const key = brokerKey(broker);
    const b = this.broker(key);
    const wasUp = b.status === 'up';
    b.status = 'down';
    b.failures++;
    b.retryAt = this.now + backoffMs(s.cfg, b.failures - 1, this.env.random);
    if (wasUp) this.log('warn', 'broker lost', { broker: key });
    // An MQTT 5 Server Reference is followed only to a pointer of the verified list.
    if (serverReference !== undefined && s.home !== null && this.brokerOf(s.home) === key) {
      const to = s.list.find((p) => p.id !== s.home && referenceMatches(serverReference, p.broker));
      if (to) {
        const home = s.home;
        this.markFailed(home);
        s.lastHome = home;
        s.home = null;
        s.tried = [home];
        this.beginMove(to.id, 'redirect', 0);
        this.afterBrokerDown(key);
        return;
      }
      this.log('warn', 'server reference ignored: not a pointer of the verified list', { serverReference });
    }
    this.afterBrokerDown(key);
  }

  /**
   * Every pointer on a lost broker is failed for this round: with one broker
   * down we do not hammer it once per pointer; the round ends and backs off.
   */
  afterBrokerDown(key: string): void {
    const s = this.s;
    const onIt = s.list.filter((p) => brokerKey(p.broker) === key).map((p) => p.id);
    for (const id of onIt) {
      const h = this.health(id);
      h.healthySince = null;
      h.pending = null;
      h.failedAt = this.now;
    }
    if (s.home !== null && onIt.includes(s.home)) this.homeFailed('broker-lost', onIt);
    else if (s.move && onIt.includes(s.move.target)) this.targetFailed('broker unreachable', onIt);
  }

  ack(cm: string, seq: number): void {
    const s = this.s;
    if (!this.pointer(cm)) return;
    const h = this.health(cm);
    if (seq > h.sentSeq || seq <= h.ackedSeq) return; // not an answer to anything outstanding
    h.ackedSeq = seq;
    h.lastAckAt = this.now;
    h.misses = 0;
    h.failedAt = null;
    if (h.pending && h.pending.seq <= seq) h.pending = null;
    if (h.healthySince === null) h.healthySince = this.now;
    if (s.move?.target === cm) this.completeMove(cm);
  }

  cmState(cm: string, online: boolean): void {
    const s = this.s;
    if (!this.pointer(cm)) return;
    const h = this.health(cm);
    const was = h.online;
    h.online = online;
    if (online) return;
    h.healthySince = null;
    if (was !== false) this.log('info', 'call manager offline', { cm });
    if (s.home === cm) this.homeFailed('cm-offline');
    else if (s.move?.target === cm) this.targetFailed('call manager offline');
  }

  adoptList(input: Extract<Input, { type: 'list' }>): void {
    const s = this.s;
    s.list = input.list.map((p) => ({ ...p }));
    s.listVersion = input.version;
    // A rebalance list moves the phone when idle whichever way it came (a call manager's
    // ack may carry it before the push arrives); other lists move it at once only when pushed.
    s.listReason = input.reason;
    for (const id of Object.keys(s.health)) if (!this.pointer(id)) delete s.health[id];
    this.fx.push({ type: 'persist' });
    this.log('info', 'pointer list adopted', { version: input.version, reason: input.reason, via: input.via, pointers: s.list.map((p) => p.id) });
    if (s.move && !this.pointer(s.move.target)) s.move = null;
    const first = s.list[0]!.id;
    if (s.home === null) {
      if (!s.move && s.started) this.startRound();
      return;
    }
    if (!this.pointer(s.home)) {
      // Our home is no longer in the list: leave at once for its first pointer.
      this.beginMove(this.firstUsable() ?? first, 'pushed', 0);
      return;
    }
    if (input.via === 'push' && first !== s.home && input.reason !== 'rebalance') {
      const to = this.firstUsable();
      if (to !== undefined && to !== s.home && this.indexOf(to) < this.indexOf(s.home)) this.beginMove(to, 'pushed', 0);
    }
    // rebalance pushes and lists carried by acks move later (evaluate), when idle / after the hold.
  }

  firstUsable(): string | undefined {
    return this.s.list.find((p) => !this.knownBad(p.id))?.id;
  }

  // ---- time-driven work ----------------------------------------------------

  evaluate(): void {
    const s = this.s;
    if (!s.started) return;
    const now = this.now;
    // 1. Count missing acks.
    for (const [id, h] of Object.entries(s.health)) {
      const p = h.pending;
      if (!p || p.counted || p.at + s.cfg.ackTimeoutMs > now) continue;
      p.counted = true;
      h.misses++;
      if (id === s.move?.target) {
        s.move.misses++;
        if (s.move.misses >= s.cfg.missLimit) this.targetFailed('no ack');
        else this.send(id, false); // retry at once: a search must not wait a full interval
      } else if (id === s.home) {
        this.log('debug', 'keepalive ack missing', { home: id, misses: h.misses });
        if (h.misses >= s.cfg.missLimit) this.homeFailed('keepalive-loss');
      } else if (h.misses >= s.cfg.missLimit) {
        if (h.healthySince !== null) this.log('info', 'probe target unhealthy', { cm: id });
        h.healthySince = null;
      }
    }
    // 2. Next round after a failed one.
    if (s.home === null && !s.move && s.roundRetryAt !== null && now >= s.roundRetryAt) this.startRound();
    // 3. Keep-alive tick: home, then probes above it.
    if (s.nextTickAt !== null && now >= s.nextTickAt) {
      s.nextTickAt = now + s.cfg.intervalMs;
      if (s.home !== null && !awaiting(s.health[s.home])) this.send(s.home, false);
      for (const id of this.probeSet()) {
        if (!awaiting(s.health[id])) this.send(id, true);
      }
    }
    // 4. Voluntary moves, only while homed, idle and not already moving.
    if (s.home !== null && !s.move && !s.busy) this.voluntaryMove();
  }

  /** Pointers above the home (or all while searching without a home) that we probe. */
  probeSet(): string[] {
    const s = this.s;
    const top = s.home !== null ? this.indexOf(s.home) : 0;
    return s.list.slice(0, top).map((p) => p.id);
  }

  voluntaryMove(): void {
    const s = this.s;
    const homeIdx = this.indexOf(s.home);
    const first = s.list[0]!.id;
    if (s.listReason === 'rebalance' && first !== s.home && !this.knownBad(first)) {
      this.beginMove(first, 'rebalance', 0);
      return;
    }
    for (let i = 0; i < homeIdx; i++) {
      const id = s.list[i]!.id;
      const h = s.health[id];
      if (!h || h.healthySince === null || h.online === false) continue;
      if (this.now - h.healthySince >= s.cfg.holdMs) {
        this.beginMove(id, 'fallback', 0);
        return;
      }
    }
  }

  /**
   * Brokers we want connected: those of the home (or target), of every pointer
   * above it (probes), and of the next pointer below it — a hot standby, so a
   * failover needs no TCP/MQTT handshake. The rest are closed.
   */
  syncBrokers(): void {
    const s = this.s;
    if (!s.started) return;
    const anchor = Math.max(this.indexOf(s.home), this.indexOf(s.move?.target ?? null), 0);
    const want = this.want;
    for (let i = 0; i <= Math.min(anchor + 1, s.list.length - 1); i++) want.add(brokerKey(s.list[i]!.broker));
    // Make before break for the connection too: a new list that drops our home's broker must not
    // cut the phone off (status, results, a rollback) before a call manager of the new list acks.
    if (s.lastHomeBroker !== null && (s.home === null || !this.pointer(s.home))) want.add(s.lastHomeBroker);
    for (const [key, b] of Object.entries(s.brokers)) {
      if (!want.has(key) && b.status !== 'down') {
        b.status = 'down';
        b.failures = 0;
        this.fx.push({ type: 'disconnect', broker: key });
      }
    }
    for (const key of want) {
      const b = this.broker(key);
      if (b.status === 'down' && this.now >= b.retryAt) {
        b.status = 'connecting';
        this.fx.push({ type: 'connect', broker: key });
      }
    }
  }

  scheduleWake(): void {
    const s = this.s;
    let at: number | null = null;
    const consider = (t: number | null | undefined): void => {
      if (t !== null && t !== undefined && (at === null || t < at)) at = t;
    };
    if (s.started) {
      consider(s.nextTickAt);
      consider(s.roundRetryAt);
      for (const h of Object.values(s.health)) if (h.pending && !h.pending.counted) consider(h.pending.at + s.cfg.ackTimeoutMs);
      for (const [key, b] of Object.entries(s.brokers)) if (b.status === 'down' && this.want.has(key)) consider(b.retryAt);
      if (s.home !== null && !s.move) {
        const homeIdx = this.indexOf(s.home);
        for (let i = 0; i < homeIdx; i++) {
          const h = s.health[s.list[i]!.id];
          if (h?.healthySince != null && !s.busy && h.healthySince + s.cfg.holdMs > this.now) consider(h.healthySince + s.cfg.holdMs);
        }
      }
    }
    if (at !== null && at < this.now) at = this.now;
    if (at !== s.wakeAt) {
      s.wakeAt = at;
      this.fx.push({ type: 'wake', at });
    }
  }
}

/** A keep-alive is out and its ack is not yet due. */
function awaiting(h: Health | undefined): boolean {
  return h?.pending != null && !h.pending.counted;
}

/**
 * Does an MQTT 5 Server Reference name this broker URL? References come as a
 * URL or as `host[:port]` (MQTT 5 §4.11 leaves the format open).
 */
export function referenceMatches(reference: string, broker: string): boolean {
  const ref = reference.trim();
  if (ref === '') return false;
  if (/^[a-z]+:\/\//i.test(ref)) {
    try {
      return brokerKey(ref) === brokerKey(broker);
    } catch {
      return false;
    }
  }
  let url: URL;
  try {
    url = new URL(broker);
  } catch {
    return false;
  }
  const port = url.port || (url.protocol === 'mqtts:' ? '8883' : url.protocol === 'wss:' ? '443' : url.protocol === 'ws:' ? '80' : '1883');
  const [host, refPort] = ref.includes(']') ? [ref.slice(0, ref.indexOf(']') + 1), ref.slice(ref.indexOf(']') + 2) || undefined] : (ref.split(':') as [string, string | undefined]);
  return host.toLowerCase() === url.hostname.toLowerCase() && (refPort ?? '1883') === port;
}
