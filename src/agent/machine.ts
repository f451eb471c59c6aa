/**
 * The phone's failover machine: pure, deterministic, no I/O.
 *
 * `next(state, input, env)` returns a new state and the effects a runner must
 * perform (connect a broker, send a keep-alive, raise an event, persist the
 * list, wake me at time T). Time enters only through `env.now` (monotonic ms,
 * never the wall clock), randomness only
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
import { brokerKey } from '../protocol/pointers.js';
import { MachineInputs } from './machine-inputs.js';
import { awaiting, cloneState, type Effect, type Env, type Input, type MachineState, type Step } from './machine-state.js';

export { backoffMs, duplicateId, initialState, phaseOf } from './machine-state.js';
export type { BrokerState, Effect, Env, Health, Input, MachineConfig, MachineState, Move, MoveReason, Step } from './machine-state.js';
export { referenceMatches } from './machine-inputs.js';

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

/** The time-driven work, over the input handling of {@link MachineInputs}. */
class Machine extends MachineInputs {
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
      // On the schedule, not from this (late) wake-up: lateness must not add up into a slower
      // cadence; after a long stall the cadence restarts from now rather than bursting.
      const due = s.nextTickAt + s.cfg.intervalMs;
      s.nextTickAt = due > now ? due : now + s.cfg.intervalMs;
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
        b.upSince = null;
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
