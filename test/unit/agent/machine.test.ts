import test from 'ava';
import { seededRandom } from '../../../src/lib/clock.js';
import { backoffMs, initialState, next, phaseOf, referenceMatches, type Effect, type Input, type MachineConfig, type MachineState } from '../../../src/agent/machine.js';
import type { Pointer } from '../../../src/protocol/types.js';

const B1 = 'mqtt://127.0.0.1:1883';
const B2 = 'mqtt://127.0.0.1:1884';
const cfg: MachineConfig = { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 200, holdMs: 30_000, backoffBaseMs: 1000, backoffMaxMs: 60_000 };
const ptr = (id: string, broker = B1): Pointer => ({ id, broker, services: `http://127.0.0.1:80/${id}` });
const ABC = [ptr('A'), ptr('B'), ptr('C')];

/** Drives the machine in virtual time: performs `wake` effects, records everything. */
class Driver {
  state: MachineState;
  now = 0;
  effects: Effect[] = [];
  readonly random = seededRandom(7);

  constructor(list: Pointer[] = ABC, c: MachineConfig = cfg) {
    this.state = initialState(c, list, 1);
  }

  step(input: Input): Effect[] {
    const r = next(this.state, input, { now: this.now, random: this.random });
    this.state = r.state;
    this.effects.push(...r.effects);
    return r.effects;
  }

  /** Advance virtual time by `ms`, delivering wake-ups when due; `onSend` may answer keep-alives. */
  advance(ms: number, onSend: (fx: Extract<Effect, { type: 'send' }>) => void = () => {}): void {
    const end = this.now + ms;
    for (let guard = 0; ; guard++) {
      if (guard > 100_000) throw new Error(`machine keeps waking at ${this.state.wakeAt} (now ${this.now}): busy loop`);
      const at = this.state.wakeAt;
      if (at === null || at > end) break;
      this.now = Math.max(this.now, at);
      const fx = this.step({ type: 'wake' });
      for (const f of fx) if (f.type === 'send') onSend(f);
    }
    this.now = end;
  }

  sends(to?: string): Extract<Effect, { type: 'send' }>[] {
    return this.effects.filter((f): f is Extract<Effect, { type: 'send' }> => f.type === 'send' && (to === undefined || f.to === to));
  }

  events(type?: string): Record<string, unknown>[] {
    return this.effects.flatMap((f) => (f.type === 'event' && (type === undefined || f.event.type === type) ? [f.event] : []));
  }

  /** Ack the newest keep-alive sent to `cm`. */
  ackLast(cm: string): Effect[] {
    const s = this.sends(cm).at(-1);
    if (!s) throw new Error(`nothing sent to ${cm}`);
    return this.step({ type: 'ack', cm, seq: s.seq });
  }

  /** Start, bring the broker(s) up and home on `A`. */
  homeOnA(): void {
    this.step({ type: 'start' });
    for (const b of new Set(this.state.list.map((p) => p.broker))) this.step({ type: 'broker-up', broker: b });
    this.ackLast('A');
  }

  /** Answer every keep-alive of these call managers as it is sent. */
  answering(...cms: string[]): (fx: Extract<Effect, { type: 'send' }>) => void {
    return (fx) => {
      if (cms.includes(fx.to)) {
        const r = next(this.state, { type: 'ack', cm: fx.to, seq: fx.seq }, { now: this.now, random: this.random });
        this.state = r.state;
        this.effects.push(...r.effects);
      }
    };
  }
}

const types = (fx: Effect[]): string[] => fx.map((f) => (f.type === 'event' ? `event:${f.event.type}` : f.type)).filter((t) => t !== 'log');

// ---- table of single transitions ----------------------------------------------------------

interface Row {
  name: string;
  setup: (d: Driver) => void;
  input: Input;
  to: { phase: string; home: string | null; target?: string | null };
  effects: string[];
}

const rows: Row[] = [
  { name: 'start → connect the brokers of the primary and the standby, target the primary', setup: () => {}, input: { type: 'start' }, to: { phase: 'searching', home: null, target: 'A' }, effects: ['connect', 'wake'] },
  {
    name: 'broker up while searching → keep-alive to the target',
    setup: (d) => d.step({ type: 'start' }),
    input: { type: 'broker-up', broker: B1 },
    to: { phase: 'searching', home: null, target: 'A' },
    effects: ['send', 'wake'],
  },
  {
    name: 'target acks → homed (first homing is a `homed` event, not a rehome)',
    setup: (d) => {
      d.step({ type: 'start' });
      d.step({ type: 'broker-up', broker: B1 });
    },
    input: { type: 'ack', cm: 'A', seq: 1 },
    to: { phase: 'homed', home: 'A', target: null },
    effects: ['event:homed', 'wake'],
  },
  {
    name: 'an ack with an unknown seq is ignored',
    setup: (d) => {
      d.step({ type: 'start' });
      d.step({ type: 'broker-up', broker: B1 });
    },
    input: { type: 'ack', cm: 'A', seq: 99 },
    to: { phase: 'searching', home: null, target: 'A' },
    effects: [],
  },
  {
    name: 'an ack from a call manager not in the list is ignored',
    setup: (d) => d.homeOnA(),
    input: { type: 'ack', cm: 'Z', seq: 1 },
    to: { phase: 'homed', home: 'A' },
    effects: [],
  },
  {
    name: 'home state offline → failover to the next pointer at once (cm-offline)',
    setup: (d) => d.homeOnA(),
    input: { type: 'cm-state', cm: 'A', online: false },
    to: { phase: 'searching', home: null, target: 'B' },
    effects: ['send', 'wake'],
  },
  {
    name: 'a backup going offline does not move a homed phone',
    setup: (d) => d.homeOnA(),
    input: { type: 'cm-state', cm: 'B', online: false },
    to: { phase: 'homed', home: 'A' },
    effects: [],
  },
  {
    name: 'home broker lost, every pointer on it → no service, round backs off (no reconnect storm)',
    setup: (d) => d.homeOnA(),
    input: { type: 'broker-down', broker: B1 },
    to: { phase: 'no-service', home: null, target: null },
    effects: ['wake'],
  },
  {
    name: 'busy is recorded and moves nothing',
    setup: (d) => d.homeOnA(),
    input: { type: 'busy', busy: true },
    to: { phase: 'homed', home: 'A' },
    effects: [],
  },
];

for (const row of rows) {
  test(`table: ${row.name}`, (t) => {
    const d = new Driver();
    row.setup(d);
    const fx = d.step(row.input);
    t.is(phaseOf(d.state) as string, row.to.phase);
    t.is(d.state.home, row.to.home);
    if (row.to.target !== undefined) t.is(d.state.move?.target ?? null, row.to.target);
    t.deepEqual(types(fx), row.effects);
  });
}

// ---- scenarios ------------------------------------------------------------------------------

test('cm-offline failover completes with a rehomed event naming from, to, reason and timings', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.advance(500, d.answering('A'));
  d.step({ type: 'cm-state', cm: 'A', online: false });
  d.now += 3;
  d.ackLast('B');
  t.is(d.state.home, 'B');
  const [ev] = d.events('rehomed');
  t.like(ev, { from: 'A', to: 'B', reason: 'cm-offline', rehomeMs: 3 });
  t.true((ev!.detectMs as number) >= 0);
  t.is(d.state.rehomes, 1);
});

test('keep-alive loss: missLimit missing acks in a row → next pointer (keepalive-loss)', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.advance(5000, d.answering('A')); // healthy
  t.is(d.state.home, 'A');
  d.advance(2000); // two misses: still home
  t.is(d.state.home, 'A');
  d.advance(1000); // third keep-alive sent at +3 s, its ack due at +3.2 s
  t.is(d.state.home, 'A');
  d.advance(250);
  t.is(d.state.home, null);
  t.is(d.state.move?.target, 'B');
  t.is(d.state.move?.reason, 'keepalive-loss');
  d.ackLast('B');
  t.like(d.events('rehomed')[0], { from: 'A', to: 'B', reason: 'keepalive-loss' });
});

test('one late ack resets the miss count: no failover on sporadic loss', (t) => {
  const d = new Driver();
  d.homeOnA();
  let n = 0;
  // Answer every third keep-alive only.
  d.advance(20_000, (fx) => {
    if (fx.to === 'A' && ++n % 3 === 0) d.answering('A')(fx);
  });
  t.is(d.state.home, 'A');
  t.is(d.events('rehomed').length, 0);
});

test('a target that never answers is abandoned after missLimit tries of ackTimeout each', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'cm-state', cm: 'A', online: false });
  t.is(d.state.move?.target, 'B');
  d.advance(3 * cfg.ackTimeoutMs + 1);
  t.is(d.state.move?.target, 'C');
  d.ackLast('C');
  t.like(d.events('rehomed')[0], { from: 'A', to: 'C', reason: 'cm-offline' });
});

test('broker lost with pointers on two brokers → homed on the other broker (broker-lost)', (t) => {
  const d = new Driver([ptr('A', B1), ptr('B', B2)]);
  d.homeOnA();
  t.true(d.effects.some((f) => f.type === 'connect' && f.broker.includes('1884')), 'hot standby connection to the backup broker');
  d.step({ type: 'broker-down', broker: B1 });
  t.is(d.state.move?.target, 'B');
  d.ackLast('B');
  t.like(d.events('rehomed')[0], { from: 'A', to: 'B', reason: 'broker-lost' });
});

test('fallback: only after the primary has been healthy for holdMs, never before', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'cm-state', cm: 'A', online: false });
  d.ackLast('B');
  t.is(d.state.home, 'B');
  // The primary is still dead for 10 s: probes go unanswered.
  d.advance(10_000, d.answering('B'));
  t.true(d.sends('A').some((s) => s.probe), 'probes the higher pointer');
  // It comes back.
  d.step({ type: 'cm-state', cm: 'A', online: true });
  const backAt = d.now;
  d.advance(cfg.holdMs - 1500, d.answering('A', 'B'));
  t.is(d.state.home, 'B', 'not before the hold');
  d.advance(3000, d.answering('A', 'B'));
  t.is(d.state.home, 'A');
  const ev = d.events('rehomed').at(-1)!;
  t.like(ev, { from: 'B', to: 'A', reason: 'fallback' });
  t.true(d.now - backAt >= cfg.holdMs);
});

test('fallback: a primary that flaps during the hold restarts the hold', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'cm-state', cm: 'A', online: false });
  d.ackLast('B');
  d.step({ type: 'cm-state', cm: 'A', online: true });
  d.advance(20_000, d.answering('A', 'B'));
  d.step({ type: 'cm-state', cm: 'A', online: false });
  d.step({ type: 'cm-state', cm: 'A', online: true });
  d.advance(20_000, d.answering('A', 'B'));
  t.is(d.state.home, 'B', '40 s of uptime but the hold restarted at the flap');
  d.advance(12_000, d.answering('A', 'B'));
  t.is(d.state.home, 'A');
});

test('fallback waits while busy and happens once idle', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'cm-state', cm: 'A', online: false });
  d.ackLast('B');
  d.step({ type: 'cm-state', cm: 'A', online: true });
  d.step({ type: 'busy', busy: true });
  d.advance(60_000, d.answering('A', 'B'));
  t.is(d.state.home, 'B');
  d.step({ type: 'busy', busy: false });
  t.is(d.state.move?.target, 'A');
  d.ackLast('A');
  t.is(d.state.home, 'A');
});

test('failures do not wait for busy', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'busy', busy: true });
  d.step({ type: 'cm-state', cm: 'A', online: false });
  d.ackLast('B');
  t.is(d.state.home, 'B');
});

test('pushed admin list putting another pointer first moves at once (pushed); persisted', (t) => {
  const d = new Driver();
  d.homeOnA();
  const fx = d.step({ type: 'list', version: 5, reason: 'admin', list: [ptr('C'), ptr('A'), ptr('B')], via: 'push' });
  t.true(fx.some((f) => f.type === 'persist'));
  t.is(d.state.move?.target, 'C');
  t.is(d.state.home, 'A', 'make before break: the old home stays until the new one acks');
  d.ackLast('C');
  t.like(d.events('rehomed')[0], { from: 'A', to: 'C', reason: 'pushed' });
  t.is(d.state.listVersion, 5);
});

test('rebalance push waits while busy, moves when idle', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'busy', busy: true });
  d.step({ type: 'list', version: 5, reason: 'rebalance', list: [ptr('B'), ptr('A'), ptr('C')], via: 'push' });
  d.advance(5000, d.answering('A', 'B'));
  t.is(d.state.home, 'A');
  d.step({ type: 'busy', busy: false });
  t.is(d.state.move?.target, 'B');
  d.ackLast('B');
  t.is(d.state.home, 'B');
  t.like(d.events('rehomed')[0], { from: 'A', to: 'B', reason: 'rebalance' });
});

test('a list carried by an ack is adopted without an immediate move', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'list', version: 9, reason: 'failover', list: [ptr('B'), ptr('A'), ptr('C')], via: 'ack' });
  t.is(d.state.home, 'A');
  t.is(d.state.move, null);
  t.deepEqual(d.state.list.map((p) => p.id), ['B', 'A', 'C']);
});

test('a rebalance list carried by an ack moves the phone when idle, like a pushed one', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'list', version: 9, reason: 'rebalance', list: [ptr('B'), ptr('A'), ptr('C')], via: 'ack' });
  t.is(d.state.move?.target, 'B');
  d.ackLast('B');
  t.like(d.events('rehomed')[0], { from: 'A', to: 'B', reason: 'rebalance' });
});

test('a voluntary move whose target does not answer is abandoned; the phone stays home', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'list', version: 5, reason: 'admin', list: [ptr('C'), ptr('A'), ptr('B')], via: 'push' });
  d.advance(1000, d.answering('A'));
  t.is(d.state.home, 'A');
  t.is(d.state.move, null);
  t.is(d.events('rehomed').length, 0);
});

test('MQTT 5 redirect to a pointer of the list is followed (redirect); to anything else it is not', (t) => {
  const d = new Driver([ptr('A', B1), ptr('B', B2)]);
  d.homeOnA();
  d.step({ type: 'broker-down', broker: B1, serverReference: '127.0.0.1:1884' });
  t.is(d.state.move?.target, 'B');
  t.is(d.state.move?.reason, 'redirect');
  d.ackLast('B');
  t.like(d.events('rehomed')[0], { reason: 'redirect' });

  const e = new Driver([ptr('A', B1), ptr('B', B2)]);
  e.homeOnA();
  e.step({ type: 'broker-down', broker: B1, serverReference: 'evil.example:1883' });
  t.is(e.state.move?.reason, 'broker-lost');
});

test('every pointer failing → jittered exponential backoff between rounds, no busy loop', (t) => {
  const d = new Driver();
  const connectsAt: number[] = [];
  const refuse = (fx: Effect[]): void => {
    for (const f of fx) {
      if (f.type !== 'connect') continue;
      connectsAt.push(d.now);
      refuse(d.step({ type: 'broker-down', broker: f.broker }));
    }
  };
  refuse(d.step({ type: 'start' }));
  const end = 10 * 60_000;
  for (let guard = 0; d.now < end; guard++) {
    if (guard > 100_000) throw new Error('busy loop');
    d.now = Math.max(d.now, d.state.wakeAt ?? end);
    refuse(d.step({ type: 'wake' }));
  }
  // Ten minutes of a dead broker: a few dozen connects, not thousands, and the gaps grow.
  t.true(connectsAt.length >= 5 && connectsAt.length <= 60, `${connectsAt.length} connects`);
  const gaps = connectsAt.slice(1).map((x, i) => x - connectsAt[i]!);
  const early = gaps.slice(0, 4).reduce((a, b) => a + b, 0);
  const late = gaps.slice(-4).reduce((a, b) => a + b, 0);
  t.true(late > early, `gaps grow: first ${early} ms, last ${late} ms`);
  t.true(Math.max(...gaps) <= cfg.backoffMaxMs + cfg.intervalMs);
  t.true(d.state.rounds > 3);
});

test('backoff is full jitter under an exponential cap', (t) => {
  const r = seededRandom(1);
  for (let n = 0; n < 10; n++) {
    const cap = Math.min(cfg.backoffMaxMs, cfg.backoffBaseMs * 2 ** n);
    for (let i = 0; i < 50; i++) {
      const v = backoffMs(cfg, n, r);
      t.true(v >= 0 && v < cap);
    }
  }
  t.is(backoffMs(cfg, 3, () => 0.5), 4000);
});

test('home removed from the list by a push → moves to the new first', (t) => {
  const d = new Driver();
  d.homeOnA();
  d.step({ type: 'list', version: 3, reason: 'failover', list: [ptr('B'), ptr('C')], via: 'ack' });
  t.is(d.state.move?.target, 'B');
});

test('server reference matching', (t) => {
  t.true(referenceMatches('127.0.0.1:1884', 'mqtt://127.0.0.1:1884'));
  t.true(referenceMatches('127.0.0.1', 'mqtt://127.0.0.1'));
  t.true(referenceMatches('mqtt://127.0.0.1:1884/', 'mqtt://127.0.0.1:1884'));
  t.false(referenceMatches('127.0.0.1:1885', 'mqtt://127.0.0.1:1884'));
  t.false(referenceMatches('', 'mqtt://127.0.0.1:1884'));
});

test('a wake-up that arrives a little early is asked for again, never lost', (t) => {
  const d = new Driver();
  d.homeOnA();
  const due = d.state.wakeAt!;
  d.now = due - 1; // the timer fired 1 ms early by the clock
  const fx = d.step({ type: 'wake' });
  t.deepEqual(fx.filter((f) => f.type === 'wake'), [{ type: 'wake', at: due }]);
});

test('keep-alive cadence follows the schedule: wake-ups 100 ms late do not slow it; after a long stall it restarts from now', (t) => {
  const d = new Driver();
  d.homeOnA();
  const answer = (fx: Extract<Effect, { type: 'send' }>): void => void d.step({ type: 'ack', cm: fx.to, seq: fx.seq });
  const before = d.sends('A').length;
  // Every wake-up 100 ms after it was asked for, as a loaded event loop delivers it.
  const start = d.now;
  while (d.now < start + 10_000) {
    const at = d.state.wakeAt!;
    d.now = Math.max(d.now, at + 100);
    for (const f of d.step({ type: 'wake' })) if (f.type === 'send') answer(f);
  }
  t.is(d.sends('A').length - before, 10, 'ten keep-alives in ten seconds at 1 s, not fewer');
  // A 5 s stall: one keep-alive when it ends, then the cadence again, no burst of the missed ones.
  const stalled = d.sends('A').length;
  d.now += 5000;
  for (const f of d.step({ type: 'wake' })) if (f.type === 'send') answer(f);
  t.is(d.sends('A').length - stalled, 1);
  t.is(d.state.nextTickAt, d.now + cfg.intervalMs);
});
