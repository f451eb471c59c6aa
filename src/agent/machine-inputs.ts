/**
 * The failover machine's reactions to its inputs: start, a broker up or down
 * (an MQTT 5 Server Reference followed only to a pointer of the verified
 * list), an ack, a call manager's state, a new list, busy, a new config.
 * Time-driven work is machine.ts; lookups and moves are machine-core.ts.
 */
import { brokerKey } from '../protocol/pointers.js';
import { mergeGroupList } from '../protocol/list-merge.js';
import { MachineCore } from './machine-core.js';
import { awaiting, backoffMs, DUPLICATE_AFTER, provenAfterMs, SESSION_TAKEN_OVER, takeoverClearMs, type Input } from './machine-state.js';

export class MachineInputs extends MachineCore {
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
        // even the same instant (timers may fire a millisecond early by the monotonic clock).
        s.wakeAt = null;
        return; // evaluate() does the work
      case 'broker-up':
        return this.brokerUp(input.broker);
      case 'broker-down':
        return this.brokerDown(input.broker, input.serverReference, input.reasonCode);
      case 'session-taken':
        return this.takenOver(brokerKey(input.broker));
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
      case 'sip-failed':
        return this.sipFailed(input.cm, input.reason);
      case 'config':
        s.cfg = input.cfg;
        return;
    }
  }

  // ---- inputs ----------------------------------------------------------------

  brokerUp(broker: string): void {
    const b = this.broker(brokerKey(broker));
    b.status = 'up';
    // Not `failures = 0`: a CONNACK proves nothing (a broker that accepts and drops); see ack().
    b.upSince = this.now;
    const mv = this.s.move;
    if (mv && this.brokerOf(mv.target) === brokerKey(broker) && !awaiting(this.s.health[mv.target])) {
      this.send(mv.target, false);
    }
  }

  brokerDown(broker: string, serverReference: string | undefined, reasonCode?: number): void {
    const s = this.s;
    const key = brokerKey(broker);
    const b = this.broker(key);
    const wasUp = b.status === 'up';
    // A connection that lived long proved itself even if nothing acked on it (a standby broker).
    if (wasUp && b.upSince !== null && this.now - b.upSince >= provenAfterMs(s.cfg)) b.failures = 0;
    b.status = 'down';
    b.upSince = null;
    b.failures++;
    if (reasonCode === SESSION_TAKEN_OVER) this.takenOver(key);
    const waitMs = backoffMs(s.cfg, Math.max(b.failures, b.takeovers) - 1, this.env.random);
    b.retryAt = this.now + waitMs;
    if (wasUp) this.log('warn', 'broker lost', { broker: key, failures: b.failures, takeovers: b.takeovers, retryInMs: waitMs, ...(reasonCode !== undefined ? { reasonCode } : {}) });
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
    this.brokerProven(cm);
    h.ackedSeq = seq;
    h.lastAckAt = this.now;
    h.misses = 0;
    h.failedAt = null;
    if (h.pending && h.pending.seq <= seq) h.pending = null;
    if (h.healthySince === null) h.healthySince = this.now;
    if (s.move?.target === cm) this.completeMove(cm);
  }

  /** Evidence that another client holds our id on broker `key`: one more takeover. */
  takenOver(key: string): void {
    const b = this.broker(key);
    b.takeovers++;
    if (b.takeovers === DUPLICATE_AFTER) this.log('warn', 'session taken over again: another client uses this phone id', { broker: key, takeovers: b.takeovers });
  }

  /** An ack came over `cm`'s broker: that connection proved itself; its backoff starts again from the base. */
  brokerProven(cm: string): void {
    const key = this.brokerOf(cm);
    const b = key === undefined ? undefined : this.s.brokers[key];
    if (b === undefined || b.status !== 'up') return;
    b.failures = 0;
    if (b.takeovers > 0 && b.upSince !== null && this.now - b.upSince >= takeoverClearMs(this.s.cfg)) {
      this.log('info', 'session kept: no other client took it over', { broker: key, takeovers: b.takeovers });
      b.takeovers = 0;
    }
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

  /**
   * A call manager whose registrar does not take the phone's REGISTER cannot carry its calls:
   * as the home it is lost (`sip-failed`), as a target it failed; otherwise nothing changes.
   */
  sipFailed(cm: string, reason: string): void {
    const s = this.s;
    if (!this.pointer(cm)) return;
    if (s.home === cm) {
      this.log('warn', 'sip registration failed at home', { cm, reason });
      this.homeFailed('sip-failed');
    } else if (s.move?.target === cm) this.targetFailed(`sip registration failed: ${reason}`);
  }

  adoptList(input: Extract<Input, { type: 'list' }>): void {
    const s = this.s;
    // A call manager's list reorders its group's members; pointers outside the group stay (list-merge.ts).
    s.list = mergeGroupList(s.list, input.list, input.owns);
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