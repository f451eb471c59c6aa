import test from 'ava';
import { seededRandom } from '../../../src/lib/clock.js';
import { initialState, next, type Effect, type Input, type MachineConfig, type MachineState } from '../../../src/agent/machine.js';
import { MoveTimer, statusWaitsForAck } from '../../../src/agent/critical-path.js';
import type { Pointer } from '../../../src/protocol/types.js';

const B1 = 'mqtt://127.0.0.1:1883';
const cfg: MachineConfig = { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 150, holdMs: 30_000, backoffBaseMs: 1000, backoffMaxMs: 60_000 };
const ptr = (id: string): Pointer => ({ id, broker: B1, services: `http://127.0.0.1:80/${id}` });

/** The machine in virtual time, homed on A of [A, B]. */
function homedOnA(): { state: MachineState; now: number; step(input: Input, at: number): Effect[] } {
  const random = seededRandom(3);
  const d = {
    state: initialState(cfg, [ptr('A'), ptr('B')], 1),
    now: 0,
    step(input: Input, at: number): Effect[] {
      d.now = at;
      const r = next(d.state, input, { now: at, random });
      d.state = r.state;
      return r.effects;
    },
  };
  d.step({ type: 'start' }, 0);
  d.step({ type: 'broker-up', broker: B1 }, 0);
  const seq = d.state.health.A!.pending!.seq;
  d.step({ type: 'ack', cm: 'A', seq }, 5);
  return d;
}

test('after a will: the status waits while the keep-alive to the new target is unanswered, not past ackTimeoutMs', (t) => {
  const d = homedOnA();
  t.false(statusWaitsForAck(d.state, d.now), 'homed: nothing waits');
  const fx = d.step({ type: 'cm-state', cm: 'A', online: false }, 100);
  t.true(fx.some((f) => f.type === 'send' && f.to === 'B'), 'the keep-alive to B goes out in the same step');
  t.true(statusWaitsForAck(d.state, 100));
  t.true(statusWaitsForAck(d.state, 249));
  t.false(statusWaitsForAck(d.state, 250), 'bounded by ackTimeoutMs from the move');
});

test('after a will: the ack ends the wait (homed on the new home)', (t) => {
  const d = homedOnA();
  d.step({ type: 'cm-state', cm: 'A', online: false }, 100);
  const seq = d.state.health.B!.pending!.seq;
  d.step({ type: 'ack', cm: 'B', seq }, 103);
  t.is(d.state.home, 'B');
  t.false(statusWaitsForAck(d.state, 103));
});

test('the deadline wake-up ends the wait even without an ack (searching is published then)', (t) => {
  const d = homedOnA();
  d.step({ type: 'cm-state', cm: 'A', online: false }, 100);
  t.is(d.state.wakeAt, 250, 'the machine wakes at the ack deadline');
  d.step({ type: 'wake' }, 250);
  t.is(d.state.home, null);
  t.false(statusWaitsForAck(d.state, 250));
});

test('the first search at start does not wait (nothing to protect; the phone has no home yet)', (t) => {
  const random = seededRandom(1);
  let s = initialState(cfg, [ptr('A'), ptr('B')], 1);
  s = next(s, { type: 'start' }, { now: 0, random }).state;
  s = next(s, { type: 'broker-up', broker: B1 }, { now: 0, random }).state;
  t.truthy(s.health.A?.pending);
  t.false(statusWaitsForAck(s, 0));
});

test('MoveTimer: fields of a move, from its start on the hr clock', (t) => {
  const d = homedOnA();
  const timer = new MoveTimer();
  const prev = d.state.move;
  d.step({ type: 'cm-state', cm: 'A', online: false }, 100);
  timer.step(prev, d.state.move, 1000.5, 1_700_000_000_100);
  timer.sent('B', 1000.75);
  timer.sent('B', 1003); // a retry is not the first keep-alive
  timer.ack('B', 1002.125);
  t.deepEqual(timer.fields('B', 1002.5), { detectedAt: 1_700_000_000_100, sentMs: 0.25, ackMs: 1.63, eventMs: 2 });
  timer.settle(null);
  t.deepEqual(timer.fields('B', 1003), {}, 'no move, no fields');
});

test('MoveTimer: an ack from another call manager, or from before the move, is not the move’s', (t) => {
  const timer = new MoveTimer();
  const d = homedOnA();
  timer.ack('B', 10);
  d.step({ type: 'cm-state', cm: 'A', online: false }, 100);
  timer.step(null, d.state.move, 20, 100);
  timer.ack('A', 25);
  t.false('ackMs' in timer.fields('B', 30));
  t.false('sentMs' in timer.fields('B', 30));
});
