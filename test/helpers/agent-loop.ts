/**
 * A whole Agent on one FakeClock over an in-memory transport: brokers come up
 * 1 ms after connect, call managers answer each keep-alive 5 ms later on the
 * same clock. For unit tests of behaviour that spans the agent's parts.
 */
import { validateAgentConfig } from '../../src/config/agent-config.js';
import { Agent } from '../../src/agent/agent.js';
import type { AgentState, StateStore, Transport, TransportEvents } from '../../src/agent/ports.js';
import { headlessHardware } from '../../src/hw/headless.js';
import { FakeClock, seededRandom } from '../../src/lib/clock.js';
import { silentLogger } from '../../src/lib/log.js';

export const BA = 'mqtt://127.0.0.1:1';
export const BB = 'mqtt://127.0.0.1:2';

/** Brokers that come up 1 ms after connect; call managers in `alive` ack 5 ms after each keep-alive. */
export class LoopTransport implements Transport {
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
  /** Everything the agent published, in order. */
  readonly published: { broker: string; topic: string; payload: string; retain: boolean }[] = [];
  publish(broker: string, topic: string, payload: string | Buffer, opts?: { retain?: boolean }): void {
    this.published.push({ broker, topic, payload: payload.toString(), retain: opts?.retain === true });
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
  /** Deliver a message to the agent as if `broker` sent it (objects as JSON). */
  deliver(broker: string, topic: string, payload: unknown): void {
    this.events.message(broker, topic, Buffer.from(typeof payload === 'string' ? payload : JSON.stringify(payload)));
  }
  async close(): Promise<void> {}
}

export class MemoryStore implements StateStore {
  writes = 0;
  async load(): Promise<AgentState | null> {
    return null;
  }
  async save(): Promise<boolean> {
    this.writes++;
    return true;
  }
}

/** What the Agent constructor takes (for {@link agentOn}'s `deps`). */
export type AgentDeps = ConstructorParameters<typeof Agent>[0];

/**
 * An Agent on `clock` over a {@link LoopTransport}: phone `p1`, pointers cm-a
 * (BA) and cm-b (BB), keep-alive 1 s × 3, headless. `config` fields replace the
 * defaults (e.g. `pointers`, `sip`); `deps` replace the constructor's parts
 * (e.g. `sip`, `keypad`, `hook`, `display`).
 */
export async function agentOn(
  clock: FakeClock,
  o: { config?: Record<string, unknown>; deps?: Partial<AgentDeps> } = {},
): Promise<{ agent: Agent; net: LoopTransport; run: (ms: number) => Promise<void> }> {
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
    ...o.config,
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
    ...o.deps,
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
