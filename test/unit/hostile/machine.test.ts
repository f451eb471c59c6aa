/**
 * The pure failover machine under random input sequences: acks with random
 * or real seqs, cm-state flips, broker up/down (with Server References),
 * verified lists, busy toggles, config changes, spurious and due wake-ups,
 * time moving forward. `next` never throws, never mutates its input, and
 * after every step the invariants below hold (read from machine.ts, not wished).
 */
import test from 'ava';
import fc from 'fast-check';
import { initialState, next, type Effect, type Input, type MachineConfig, type MachineState } from '../../../src/agent/machine.js';
import { seededRandom } from '../../../src/lib/clock.js';
import { brokerKey } from '../../../src/protocol/pointers.js';
import type { Pointer, PointerReason } from '../../../src/protocol/types.js';
import { pointerList } from '../../helpers/arbitraries.js';

const RUNS = 10_000;
const PORTS = [1883, 1884, 1885];
const IDS = ['A', 'B', 'C', 'D', 'E', 'F', 'cm-1', 'cm-2', 'ghost'];
const cfg: MachineConfig = { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 200, holdMs: 3000, backoffBaseMs: 100, backoffMaxMs: 5000 };

type Op =
  | { t: 'advance'; ms: number; alive: number }
  | { t: 'ack-last'; idx: number }
  | { t: 'ack'; cm: string; seq: number }
  | { t: 'cm-state'; idx: number; online: boolean }
  | { t: 'broker-up'; port: number }
  | { t: 'broker-down'; port: number; ref: string | undefined }
  | { t: 'list'; list: Pointer[]; reason: PointerReason; via: 'ack' | 'push'; bump: number }
  | { t: 'busy'; busy: boolean }
  | { t: 'wake' }
  | { t: 'config'; intervalMs: number; holdMs: number; missLimit: number };

const port = fc.constantFrom(...PORTS);
const opArb: fc.Arbitrary<Op> = fc.oneof(
  { arbitrary: fc.record({ t: fc.constant('advance' as const), ms: fc.integer({ min: 0, max: 4000 }), alive: fc.integer({ min: 0, max: 255 }) }), weight: 8 },
  { arbitrary: fc.record({ t: fc.constant('ack-last' as const), idx: fc.nat(15) }), weight: 3 },
  fc.record({ t: fc.constant('ack' as const), cm: fc.constantFrom(...IDS), seq: fc.oneof(fc.integer({ min: -2, max: 40 }), fc.integer()) }),
  fc.record({ t: fc.constant('cm-state' as const), idx: fc.nat(15), online: fc.boolean() }),
  { arbitrary: fc.record({ t: fc.constant('broker-up' as const), port }), weight: 2 },
  fc.record({
    t: fc.constant('broker-down' as const),
    port,
    ref: fc.option(fc.oneof(port.map((p) => `mqtt://127.0.0.1:${p}`), port.map((p) => `127.0.0.1:${p}`), fc.string({ maxLength: 12 })), { nil: undefined }),
  }),
  fc.record({
    t: fc.constant('list' as const),
    list: pointerList(PORTS),
    reason: fc.constantFrom('failover' as const, 'rebalance' as const, 'admin' as const),
    via: fc.constantFrom('ack' as const, 'push' as const),
    bump: fc.integer({ min: 1, max: 1000 }),
  }),
  fc.record({ t: fc.constant('busy' as const), busy: fc.boolean() }),
  fc.record({ t: fc.constant('wake' as const) }),
  fc.record({ t: fc.constant('config' as const), intervalMs: fc.integer({ min: 100, max: 3000 }), holdMs: fc.integer({ min: 0, max: 5000 }), missLimit: fc.integer({ min: 1, max: 5 }) }),
);

class Run {
  state: MachineState;
  now = 1_000_000;
  lastSeq = 0;
  rehomedEvents = 0;
  readonly random = seededRandom(11);
  readonly sends: Extract<Effect, { type: 'send' }>[] = [];

  constructor(list: Pointer[]) {
    this.state = initialState(cfg, list, 1);
  }

  step(input: Input): Effect[] {
    const before = JSON.stringify(this.state);
    const r = next(this.state, input, { now: this.now, random: this.random });
    if (JSON.stringify(this.state) !== before) throw new Error(`next mutated its input state on ${JSON.stringify(input)}`);
    this.state = r.state;
    this.checkStep(input, r.effects);
    return r.effects;
  }

  checkStep(input: Input, fx: Effect[]): void {
    const s = this.state;
    const ids = s.list.map((p) => p.id);
    const fail = (what: string): never => {
      throw new Error(`${what} after ${JSON.stringify(input)} at ${this.now}: home=${s.home} move=${JSON.stringify(s.move)} list=${ids.join(',')} wakeAt=${s.wakeAt}`);
    };
    // Time: the single timer is never set in the past, and a started machine always has one.
    if (s.wakeAt !== null && s.wakeAt < this.now) fail('wakeAt in the past');
    if (s.started && s.wakeAt === null) fail('started without a wake-up');
    const wakes = fx.filter((f): f is Extract<Effect, { type: 'wake' }> => f.type === 'wake');
    if (wakes.length > 0 && wakes.at(-1)!.at !== s.wakeAt) fail('last wake effect differs from state.wakeAt');
    // Home: a pointer of the list, or — make-before-break after a list dropped it — kept only while moving to a pointer of the list.
    if (s.home !== null && !ids.includes(s.home) && !(s.move !== null && ids.includes(s.move.target))) fail('home outside the list with no move into it');
    if (s.move !== null && (!ids.includes(s.move.target) || s.move.target === s.home)) fail('move target outside the list or equal to home');
    // Never stuck: a started machine is homed, moving, or has a retry scheduled.
    if (s.started && s.home === null && s.move === null && s.roundRetryAt === null) fail('no home, no move, no retry');
    for (const id of Object.keys(s.health)) if (!ids.includes(id)) fail(`health kept for ${id}, not in the list`);
    for (const f of fx) {
      if (f.type === 'send') {
        const p = s.list.find((x) => x.id === f.to);
        if (!p) fail(`keep-alive sent to ${f.to}, not in the list`);
        if (brokerKey(p!.broker) !== f.broker) fail(`keep-alive to ${f.to} on the wrong broker ${f.broker}`);
        if (f.seq <= this.lastSeq) fail(`seq ${f.seq} not increasing`);
        this.lastSeq = f.seq;
        this.sends.push(f);
      }
      if (f.type === 'event' && f.event.type === 'rehomed') {
        this.rehomedEvents++;
        if (f.event.from === f.event.to || !ids.includes(String(f.event.to))) fail(`bad rehomed event ${JSON.stringify(f.event)}`);
      }
      if (f.type === 'event' && f.event.type === 'homed' && !ids.includes(String(f.event.to))) fail(`homed on ${String(f.event.to)}`);
    }
    if (s.rehomes !== this.rehomedEvents) fail(`rehomes ${s.rehomes} but ${this.rehomedEvents} rehomed events`);
  }

  /** Advance time, delivering due wake-ups; pointers whose index bit is set in `alive` answer at once. */
  advance(ms: number, alive: number): void {
    const end = this.now + ms;
    for (let guard = 0; ; guard++) {
      if (guard > 10_000) throw new Error(`busy loop: wakeAt ${this.state.wakeAt} now ${this.now}`);
      const at = this.state.wakeAt;
      if (at === null || at > end) break;
      this.now = Math.max(this.now, at);
      const fx = this.step({ type: 'wake' });
      for (const f of fx) {
        if (f.type !== 'send') continue;
        const i = this.state.list.findIndex((p) => p.id === f.to);
        if (i >= 0 && (alive & (1 << i)) !== 0) this.step({ type: 'ack', cm: f.to, seq: f.seq });
      }
    }
    this.now = end;
  }

  apply(op: Op): void {
    const s = this.state;
    switch (op.t) {
      case 'advance':
        return this.advance(op.ms, op.alive);
      case 'ack-last': {
        const id = s.list[op.idx % s.list.length]!.id;
        const last = this.sends.filter((f) => f.to === id).at(-1);
        if (last) this.step({ type: 'ack', cm: id, seq: last.seq });
        return;
      }
      case 'ack':
        this.step({ type: 'ack', cm: op.cm, seq: op.seq });
        return;
      case 'cm-state':
        this.step({ type: 'cm-state', cm: s.list[op.idx % s.list.length]!.id, online: op.online });
        return;
      case 'broker-up':
        this.step({ type: 'broker-up', broker: brokerKey(`mqtt://127.0.0.1:${op.port}`) });
        return;
      case 'broker-down':
        this.step({ type: 'broker-down', broker: brokerKey(`mqtt://127.0.0.1:${op.port}`), serverReference: op.ref });
        return;
      case 'list': {
        const version = s.listVersion + op.bump;
        this.step({ type: 'list', version, reason: op.reason, list: op.list, via: op.via });
        if (this.state.listVersion !== version) throw new Error('listVersion is not the adopted version');
        return;
      }
      case 'busy':
        this.step({ type: 'busy', busy: op.busy });
        return;
      case 'wake':
        this.step({ type: 'wake' });
        return;
      case 'config': {
        const c = { ...s.cfg, intervalMs: op.intervalMs, ackTimeoutMs: Math.max(1, Math.floor(op.intervalMs / 5)), holdMs: op.holdMs, missLimit: op.missLimit };
        this.step({ type: 'config', cfg: c });
        return;
      }
    }
  }
}

test(`random input sequences: next never throws, never mutates its input, and keeps its invariants (${RUNS} runs)`, (t) => {
  const phases = new Map<string, number>();
  fc.assert(
    fc.property(pointerList(PORTS), fc.array(opArb, { minLength: 1, maxLength: 16 }), (list, ops) => {
      const run = new Run(list);
      run.step({ type: 'start' });
      // Brokers come up as they would after the first connect effects, so sequences reach homes.
      for (const p of PORTS) run.step({ type: 'broker-up', broker: brokerKey(`mqtt://127.0.0.1:${p}`) });
      for (const op of ops) run.apply(op);
      const key = run.state.home !== null ? (run.state.rehomes > 0 ? 'rehomed' : 'homed') : 'unhomed';
      phases.set(key, (phases.get(key) ?? 0) + 1);
    }),
    { numRuns: RUNS, seed: 6_0010 },
  );
  t.log(JSON.stringify([...phases]));
  // The sequences reach homes and rehomes, not only the search phase.
  t.true((phases.get('homed') ?? 0) > 200, JSON.stringify([...phases]));
  t.true((phases.get('rehomed') ?? 0) > 200, JSON.stringify([...phases]));
});
