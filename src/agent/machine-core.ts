/**
 * The failover machine's working parts (machine.ts puts them together):
 * the state being changed, the effects collected, lookups, and the moves —
 * searching a round of pointers, moving to a target, losing a home,
 * completing a move. Mutates only the copy of the state `next` gave it.
 */
import type { Pointer } from '../protocol/types.js';
import { brokerKey } from '../protocol/pointers.js';
import { backoffMs, type BrokerState, type Effect, type Env, type Health, type MachineState, type Move, type MoveReason } from './machine-state.js';

export class MachineCore {
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
      b = { status: 'down', failures: 0, retryAt: 0, upSince: null, takeovers: 0 };
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

  firstUsable(): string | undefined {
    return this.s.list.find((p) => !this.knownBad(p.id))?.id;
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
    // Search overrides per-broker backoff: connect now — unless a clone keeps taking our session
    // there, when connecting at once would only kick it off again (and it us).
    const b = this.brokerOf(target);
    if (b !== undefined) {
      const st = this.broker(b);
      if (st.status === 'down' && st.takeovers === 0) st.retryAt = this.now;
    }
    this.send(target, false);
  }

  /** The home failed: leave it and search from the next pointer. */
  homeFailed(reason: MoveReason, alsoFailed: string[] = []): void {
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
}
