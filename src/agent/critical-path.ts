/**
 * The critical path of a failover: from the moment the agent takes in that
 * its home is gone (the will, the last missed ack, …) to the `rehomed`
 * event. What is measured along it ({@link MoveTimer}), and what must wait
 * until it is over ({@link statusWaitsForAck}).
 */
import type { MachineState } from './machine-state.js';

/**
 * Timestamps of the move in progress on a monotonic sub-millisecond clock,
 * reported as extra fields of its `rehomed` event — cheap enough to keep on
 * in production, and what the failover bench breaks a failover down with.
 */
export class MoveTimer {
  #begun = 0;
  #wallAt = 0;
  #active = false;
  /** First keep-alive handed to the transport, per target. */
  #sent = new Map<string, number>();
  #lastAck: { cm: string; at: number } | null = null;

  /** Track the moves of one step: `prev` and `next` are the machine's `move` before and after it, `at` the step's start. */
  step(prev: MachineState['move'], next: MachineState['move'], at: number, wallNow: number): void {
    if (next === null || (prev !== null && prev.reason === next.reason && this.#active)) return;
    this.#active = true;
    this.#begun = at;
    this.#wallAt = wallNow;
    this.#sent.clear();
  }

  /** After the step's effects ran: a finished or abandoned move stops being timed. */
  settle(move: MachineState['move']): void {
    if (move === null) this.#active = false;
  }

  sent(to: string, at: number): void {
    if (this.#active && !this.#sent.has(to)) this.#sent.set(to, at);
  }

  ack(cm: string, at: number): void {
    this.#lastAck = { cm, at };
  }

  /**
   * Fields for the `rehomed` event of a move to `to`, in ms from its start
   * (0.01 ms): `sentMs` first keep-alive to `to` handed to the transport,
   * `ackMs` its ack received, `eventMs` now (the event being sent);
   * `detectedAt` is the start on the wall clock (ms since the epoch), for
   * lining it up with another process's clock (the bench's kill -9).
   */
  fields(to: string, now: number): Record<string, number> {
    if (!this.#active) return {};
    const rel = (t: number): number => Math.round((t - this.#begun) * 100) / 100;
    const out: Record<string, number> = { detectedAt: this.#wallAt };
    const sent = this.#sent.get(to);
    if (sent !== undefined) out.sentMs = rel(sent);
    if (this.#lastAck !== null && this.#lastAck.cm === to && this.#lastAck.at >= this.#begun) out.ackMs = rel(this.#lastAck.at);
    out.eventMs = rel(now);
    return out;
  }
}

/**
 * True while, after losing its home, the phone waits for the first ack of
 * its new target — for at most `ackTimeoutMs` from the move's start: the
 * status publish waits meanwhile. Published at once, its QoS 1 exchange
 * would run ahead of the ack: the broker's PUBACK goes to the phone first,
 * and a broker socket with Nagle (mosquitto's default, no
 * `set_tcp_nodelay`) then holds the ack until the phone's delayed ACK,
 * ~40 ms (issue #9 §4). The ack, or the wake-up at its deadline (the
 * machine always wakes for a pending keep-alive), is another step, which
 * publishes the status as it is by then.
 */
export function statusWaitsForAck(s: Readonly<MachineState>, now: number): boolean {
  const mv = s.move;
  if (mv === null || s.home !== null || mv.reason === 'start') return false;
  const p = s.health[mv.target]?.pending;
  return p != null && !p.counted && now < mv.since + s.cfg.ackTimeoutMs;
}
