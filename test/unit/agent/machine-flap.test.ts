/**
 * Issue #10, "A phone that flaps": a broker that accepts and drops, or two
 * phones with one id (a cloned image) kicking each other off the broker, was
 * retried every 0–1 s for ever because the backoff reset on CONNACK. The
 * backoff now resets only once a connection has proven itself (an ack from a
 * call manager on it, or a long life), and repeated MQTT 5 "session taken
 * over" (0x8E) disconnects mark a duplicate phone id. Virtual time, seeded
 * random: deterministic.
 */
import test from 'ava';
import { seededRandom } from '../../../src/lib/clock.js';
import { duplicateId, initialState, next, type Effect, type Input, type MachineConfig, type MachineState } from '../../../src/agent/machine.js';
import type { Pointer } from '../../../src/protocol/types.js';

const B1 = 'mqtt://127.0.0.1:1883';
const B2 = 'mqtt://127.0.0.1:1884';
const cfg: MachineConfig = { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 200, holdMs: 30_000, backoffBaseMs: 1000, backoffMaxMs: 60_000 };
const ptr = (id: string, broker: string): Pointer => ({ id, broker, services: `http://127.0.0.1:80/${id}` });

/**
 * Drives the machine in virtual time and plays the brokers: `onConnect`
 * answers every connect effect with the inputs it returns (delivered in
 * order, `delayMs` after the connect); `onSend` may answer keep-alives.
 */
class Sim {
  state: MachineState;
  now = 0;
  readonly random = seededRandom(11);
  readonly connects: { broker: string; at: number }[] = [];
  readonly later: { at: number; input: Input }[] = [];

  constructor(
    list: Pointer[],
    readonly onConnect: (broker: string, at: number) => { delayMs: number; input: Input }[],
    readonly onSend: (fx: Extract<Effect, { type: 'send' }>, at: number) => Input | null = () => null,
  ) {
    this.state = initialState(cfg, list, 1);
  }

  step(input: Input): void {
    const r = next(this.state, input, { now: this.now, random: this.random });
    this.state = r.state;
    for (const fx of r.effects) {
      if (fx.type === 'connect') {
        this.connects.push({ broker: fx.broker, at: this.now });
        for (const x of this.onConnect(fx.broker, this.now)) this.later.push({ at: this.now + x.delayMs, input: x.input });
      } else if (fx.type === 'send') {
        const answer = this.onSend(fx, this.now);
        if (answer) this.later.push({ at: this.now + 1, input: answer });
      }
    }
  }

  run(ms: number): void {
    const end = this.now + ms;
    for (let guard = 0; guard < 1_000_000; guard++) {
      this.later.sort((a, b) => a.at - b.at);
      const wake = this.state.wakeAt;
      const ext = this.later[0]?.at;
      const at = Math.min(wake ?? Infinity, ext ?? Infinity);
      if (at > end) break;
      this.now = Math.max(this.now, at);
      if (ext !== undefined && ext <= this.now) this.step(this.later.shift()!.input);
      else this.step({ type: 'wake' });
    }
    this.now = end;
  }

  connectsTo(broker: string, from = 0): number {
    return this.connects.filter((c) => c.broker === broker && c.at >= from).length;
  }
}

const ackAll = (fx: Extract<Effect, { type: 'send' }>): Input => ({ type: 'ack', cm: fx.to, seq: fx.seq });

test('flapping-broker: a probed primary whose broker accepts and drops is retried with growing backoff, not every 0–1 s', (t) => {
  // Homed on B (B2, healthy); the primary A's broker B1 accepts every connection and drops it 5 ms later.
  const sim = new Sim([ptr('A', B1), ptr('B', B2)], (broker) =>
    broker === B1
      ? [{ delayMs: 2, input: { type: 'broker-up', broker } }, { delayMs: 5, input: { type: 'broker-down', broker } }]
      : [{ delayMs: 2, input: { type: 'broker-up', broker } }],
  (fx) => (fx.to === 'B' ? ackAll(fx) : null));
  sim.step({ type: 'start' });
  sim.run(600_000);
  t.is(sim.state.home, 'B');
  const lastMinute = sim.connectsTo(B1, 540_000);
  t.log(`connects to the flapping broker: ${sim.connectsTo(B1)} in 10 min, ${lastMinute} in the last minute (base 1 s, max 60 s)`);
  t.true(lastMinute <= 6, `the 10th minute sees a handful of attempts at the 60 s cap, got ${lastMinute}`);
  t.true(sim.state.brokers[B1]!.failures >= 6, `failures count on across CONNACKs (${sim.state.brokers[B1]!.failures})`);
  t.false(duplicateId(sim.state), 'plain drops are not a duplicate id');
});

test('flapping-broker: the backoff resets once the connection proves itself with an ack', (t) => {
  let answering = false;
  let flapping = true;
  const sim = new Sim([ptr('A', B1), ptr('B', B2)], (broker) =>
    broker === B1 && flapping
      ? [{ delayMs: 2, input: { type: 'broker-up', broker } }, { delayMs: 5, input: { type: 'broker-down', broker } }]
      : [{ delayMs: 2, input: { type: 'broker-up', broker } }],
  (fx) => (fx.to === 'B' || answering ? ackAll(fx) : null));
  sim.step({ type: 'start' });
  sim.run(120_000);
  t.true(sim.state.brokers[B1]!.failures >= 4);
  flapping = false;
  answering = true;
  sim.run(120_000);
  t.is(sim.state.brokers[B1]!.status, 'up');
  t.is(sim.state.brokers[B1]!.failures, 0, 'an ack from a call manager on it reset the backoff');
});

test('duplicate-id: repeated "session taken over" (0x8E) kicks back off exponentially and flag the phone id as duplicated', (t) => {
  // Homed on A; every connection acks, then the clone takes the session over 50 ms after CONNACK.
  const sim = new Sim([ptr('A', B1), ptr('B', B1)], (broker) => [
    { delayMs: 2, input: { type: 'broker-up', broker } },
    { delayMs: 50, input: { type: 'broker-down', broker, reasonCode: 0x8e } },
  ], ackAll);
  sim.step({ type: 'start' });
  sim.run(60_000);
  t.true(duplicateId(sim.state), 'two takeovers in a row mark the id as duplicated');
  sim.run(540_000);
  const lastMinute = sim.connectsTo(B1, 540_000);
  t.log(`connects while kicked by a clone: ${sim.connectsTo(B1)} in 10 min, ${lastMinute} in the last minute`);
  t.true(lastMinute <= 6, `got ${lastMinute}`);
  t.true(sim.state.brokers[B1]!.takeovers >= 6, 'acks do not reset the count of takeovers');
});

test('duplicate-id: the flag clears once a connection lasts twice the backoff cap with acks (the clone is gone)', (t) => {
  let clone = true;
  const sim = new Sim([ptr('A', B1)], (broker) => [
    { delayMs: 2, input: { type: 'broker-up', broker } },
    ...(clone ? [{ delayMs: 50, input: { type: 'broker-down', broker, reasonCode: 0x8e } as Input }] : []),
  ], ackAll);
  sim.step({ type: 'start' });
  sim.run(30_000);
  t.true(duplicateId(sim.state));
  clone = false;
  sim.run(2 * cfg.backoffMaxMs + 70_000);
  t.is(sim.state.home, 'A');
  t.false(duplicateId(sim.state));
  t.is(sim.state.brokers[B1]!.takeovers, 0);
});

test('one takeover is not a duplicate; an ordinary DISCONNECT reason is not a takeover', (t) => {
  let kicks = 1;
  const sim = new Sim([ptr('A', B1)], (broker) => [
    { delayMs: 2, input: { type: 'broker-up', broker } },
    ...(kicks-- > 0 ? [{ delayMs: 50, input: { type: 'broker-down', broker, reasonCode: 0x8e } as Input }] : []),
  ], ackAll);
  sim.step({ type: 'start' });
  sim.run(10_000);
  t.false(duplicateId(sim.state));
  sim.step({ type: 'broker-down', broker: B1, reasonCode: 0x8b }); // server shutting down
  t.false(duplicateId(sim.state));
  t.is(sim.state.brokers[B1]!.takeovers, 1);
});
