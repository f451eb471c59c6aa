/**
 * Issue 10, "Deadlines follow the wall clock": the agent's keep-alive cadence,
 * miss counting and fallback hold-down run on the monotonic clock, so an NTP
 * step of the wall clock (either way) changes none of them. The whole Agent
 * runs on one FakeClock whose wall clock is stepped alone
 * ({@link FakeClock.stepWall}); the transport is an in-memory stand-in whose
 * call managers answer each keep-alive 5 ms later on the same clock.
 */
import test from 'ava';
import { validateAgentConfig } from '../../../src/config/agent-config.js';
import { Agent } from '../../../src/agent/agent.js';
import type { AgentState, StateStore, Transport, TransportEvents } from '../../../src/agent/ports.js';
import { headlessHardware } from '../../../src/hw/headless.js';
import { FakeClock, seededRandom } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';

const HOUR = 3_600_000;
const BA = 'mqtt://127.0.0.1:1';
const BB = 'mqtt://127.0.0.1:2';

/** Brokers that come up 1 ms after connect; call managers in `alive` ack 5 ms after each keep-alive. */
class LoopTransport implements Transport {
  readonly up = new Set<string>();
  readonly alive = new Set<string>(['cm-a', 'cm-b']);
  /** Every keep-alive sent: the call manager and the monotonic time. */
  readonly sent: { cm: string; at: number }[] = [];
  /** How long a call manager takes to answer (ms). */
  ackDelayMs = 5;
  constructor(
    private readonly clock: FakeClock,
    private readonly events: TransportEvents,
  ) {}
  connect(broker: string): void {
    if (this.up.has(broker)) return;
    this.clock.setTimeout(() => {
      this.up.add(broker);
      this.events.up(broker);
    }, 1);
  }
  disconnect(broker: string): void {
    this.up.delete(broker);
  }
  isUp(broker: string): boolean {
    return this.up.has(broker);
  }
  subscribe(): void {}
  unsubscribe(): void {}
  /** Events the agent published. */
  readonly agentEvents: Record<string, unknown>[] = [];
  publish(broker: string, topic: string, payload: string | Buffer): void {
    if (topic.endsWith('/event')) this.agentEvents.push(JSON.parse(payload.toString()) as Record<string, unknown>);
    const m = /\/cm\/([^/]+)\/keepalive/.exec(topic);
    if (m === null || !this.up.has(broker)) return;
    const cm = m[1]!;
    this.sent.push({ cm, at: this.clock.elapsed() });
    if (!this.alive.has(cm)) return;
    const { phone, seq, pointersVersion } = JSON.parse(payload.toString()) as { phone: string; seq: number; pointersVersion: number };
    const ack = { broker, topic: `ipphone/phone/${phone}/ack`, payload: Buffer.from(JSON.stringify({ cm, seq, pointersVersion })) };
    this.clock.setTimeout(() => {
      this.lastAck = ack;
      this.events.message(ack.broker, ack.topic, ack.payload);
    }, this.ackDelayMs);
  }
  lastAck: { broker: string; topic: string; payload: Buffer } | undefined;
  /** Deliver the last ack once more (a late duplicate): any input makes the machine look at its deadlines. */
  duplicateLastAck(): void {
    const a = this.lastAck!;
    this.events.message(a.broker, a.topic, a.payload);
  }
  async close(): Promise<void> {}
}

class MemoryStore implements StateStore {
  writes = 0;
  async load(): Promise<AgentState | null> {
    return null;
  }
  async save(): Promise<boolean> {
    this.writes++;
    return true;
  }
}

async function agentOn(clock: FakeClock): Promise<{ agent: Agent; net: LoopTransport; run: (ms: number) => Promise<void> }> {
  const r = validateAgentConfig({
    phoneId: 'p1',
    topicPrefix: 'ipphone',
    stateDir: '/nonexistent',
    pointers: [
      { id: 'cm-a', broker: BA, services: 'http://127.0.0.1:1/a' },
      { id: 'cm-b', broker: BB, services: 'http://127.0.0.1:2/b' },
    ],
    keepalive: { intervalMs: 1000, missLimit: 3, ackTimeoutMs: 200 },
    fallback: { holdMs: 30_000 },
    trust: { requireSigned: false },
  });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  let net!: LoopTransport;
  const hw = headlessHardware();
  const agent = new Agent({
    config: r.config,
    log: silentLogger(),
    clock,
    random: seededRandom(3),
    keys: new Map(),
    store: new MemoryStore(),
    transport: (events) => (net = new LoopTransport(clock, events)),
    fetchServices: async () => '<CiscoIPPhoneText><Text>ok</Text></CiscoIPPhoneText>',
    display: hw.display,
    hook: null,
  });
  await agent.start();
  /** Let `ms` pass in 50 ms steps, settling promise callbacks (saves, status) between them. */
  const run = async (ms: number): Promise<void> => {
    for (let left = ms; left > 0; left -= 50) {
      clock.advance(Math.min(50, left));
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
  };
  return { agent, net, run };
}

const sentBetween = (net: LoopTransport, cm: string, from: number, to: number): number => net.sent.filter((s) => s.cm === cm && s.at >= from && s.at < to).length;

for (const [name, step] of [
  ['back 1 h', -HOUR],
  ['forward 1 h', HOUR],
] as const) {
  test(`wall ${name}: keep-alives keep their cadence (as many in the 10 s after the step as in the 10 s before)`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    t.is(agent.home, 'cm-a');
    const t0 = clock.elapsed();
    await run(10_000);
    const before = sentBetween(net, 'cm-a', t0, t0 + 10_000);
    clock.stepWall(step);
    await run(10_000);
    const after = sentBetween(net, 'cm-a', t0 + 10_000, t0 + 20_000);
    t.log(`keep-alives in 10 s: ${before} without a step, ${after} after a wall step ${name}`);
    t.is(before, 10);
    t.is(after, before);
    t.is(agent.home, 'cm-a');
    t.is(agent.state.rehomes, 0);
    t.true(agent.healthy(), 'the wake-up timer is not judged overdue by wall time');
  });

  test(`wall ${name}: misses are counted only as real time passes`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    t.is(agent.home, 'cm-a');
    net.alive.delete('cm-a');
    clock.stepWall(step);
    // Three misses take at least 2 s more (the 3rd keep-alive after the loss plus its ack timeout).
    await run(2_000);
    t.is(agent.home, 'cm-a', 'no miss is counted for time that did not pass');
    t.is(agent.state.rehomes, 0);
    await run(3_000);
    t.is(agent.home, 'cm-b', 'the failover comes after missLimit intervals of real time');
    const ev = net.agentEvents.filter((e) => e.type === 'rehomed' && e.to === 'cm-b');
    t.is(ev.length, 1);
    const { detectMs, rehomeMs } = ev[0] as { detectMs: number; rehomeMs: number };
    t.true(detectMs >= 2_000 && detectMs <= 4_000, `detectMs ${detectMs} is real time since the last ack`);
    t.true(rehomeMs >= 0 && rehomeMs < 1_000, `rehomeMs ${rehomeMs} is real time`);
  });

  test(`wall ${name} while a keep-alive is outstanding: no miss is counted for it`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    net.ackDelayMs = 150; // within ackTimeoutMs (200)
    await run(1_000);
    const sent = net.sent.length;
    for (let i = 0; i < 1000 && net.sent.length === sent; i++) clock.advance(1);
    clock.advance(20); // that keep-alive is outstanding: its ack is due in 130 ms
    clock.stepWall(step);
    net.duplicateLastAck();
    let most = agent.state.health['cm-a']?.misses ?? 0;
    for (let i = 0; i < 200; i++) {
      await run(50);
      most = Math.max(most, agent.state.health['cm-a']?.misses ?? 0);
    }
    t.is(most, 0);
    t.is(agent.home, 'cm-a');
  });

  test(`wall ${name}: the fallback hold-down is respected`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    net.alive.delete('cm-a');
    await run(6_000);
    t.is(agent.home, 'cm-b');
    net.alive.add('cm-a');
    await run(2_000);
    clock.stepWall(step);
    await run(20_000);
    t.is(agent.home, 'cm-b', 'holdMs (30 s) has not passed since cm-a answered again');
    await run(15_000);
    t.is(agent.home, 'cm-a', 'back on the primary once holdMs passed');
  });
}
