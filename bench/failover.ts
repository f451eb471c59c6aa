/**
 * Failover latency (issue #2, figures 1 and 2; issue #9 §4): one phone homed
 * on cm-a of a two-CM group; cm-a is SIGKILLed (or SIGSTOPped) and the time
 * until the phone's `rehomed` event reaches an mqtt.js subscriber in the
 * bench process is measured — from just before the signal to the message's
 * arrival. Between runs cm-a is restarted (or SIGCONTed) and the phone
 * returns to it (fallback with a short `holdMs`, or a pushed list) before
 * the next run.
 *
 * The kill -9 series runs on several brokers side by side (a stock
 * mosquitto, one with `set_tcp_nodelay true`, TLS when the harness has it),
 * one group per broker, alternating run by run so that the machine's noise
 * falls on each alike. Each run is broken down: kill → the will seen by a
 * separate subscriber and by the agent, and the agent's own timings from the
 * will (its `rehomed` event's `sentMs`, `ackMs`, `eventMs`).
 */
import { performance } from 'node:perf_hooks';
import { eventTopic, median, Observer, percentile, startAgent, startGroup, sleep, tempDir, type Child, type Group, type TlsFiles } from './harness.js';

/** What one series of runs measured. */
export interface Series {
  /** Signal → rehomed event arrival, ms, one per successful run. */
  ms: number[];
  /** The agent's own `detectMs` / `rehomeMs` of each event. */
  detectMs: number[];
  rehomeMs: number[];
  /** Count of each `reason` seen. */
  reasons: Record<string, number>;
  /** Runs that produced no rehomed event in time. */
  failures: string[];
  /** How the phone got back to cm-a between runs: by itself, or by replacing it with a fresh agent. */
  returns: { natural: number; freshAgent: number };
  /** The phone's status the last time it did not come back by itself. */
  lastAway?: string;
  /** Per-run breakdown (kill series), one entry per successful run. */
  steps: Record<Step, number[]>;
}

/** The parts of one kill -9 failover, ms. */
export const STEPS = {
  willObserver: 'kill → will at a separate subscriber',
  willAgent: 'kill → will at the agent (its `detectedAt`; ms-resolution wall clocks)',
  sent: 'will → keep-alive to cm-b sent (`sentMs`)',
  ack: 'will → ack from cm-b received (`ackMs`)',
  event: 'will → `rehomed` event sent (`eventMs`)',
  total: 'kill → `rehomed` event at the subscriber',
} as const;
export type Step = keyof typeof STEPS;

/** A broker set-up to measure on. */
export interface BrokerVariant {
  /** Column heading, e.g. `stock mosquitto`. */
  label: string;
  /** Extra mosquitto.conf lines. */
  conf: string[];
  /** TLS for every connection (mqtts: URL, CA, certificate, key). */
  tls?: TlsFiles;
}

export interface FailoverOptions {
  /** Runs per series (kill, stop). */
  runs: number;
  /** Brokers for the kill series, side by side; the SIGSTOP series runs on the first. */
  brokers: BrokerVariant[];
  /** The agent's `fallback.holdMs` (ms); short so that the phone returns to cm-a quickly. */
  holdMs: number;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

export interface FailoverResult {
  /** The kill series on each broker, in the order of {@link FailoverOptions.brokers}. */
  kills: { variant: BrokerVariant; series: Series }[];
  /** Kill series on the first broker (the headline row). */
  kill: Series;
  stop: Series;
}

const PHONE = 'p-bench-failover';
/** Longest wait for one rehomed event (ms); far above either goal. */
const EVENT_TIMEOUT_MS = 15_000;

const emptySeries = (): Series => ({
  ms: [],
  detectMs: [],
  rehomeMs: [],
  reasons: {},
  failures: [],
  returns: { natural: 0, freshAgent: 0 },
  steps: { willObserver: [], willAgent: [], sent: [], ack: [], event: [], total: [] },
});
/** How long past `holdMs` the phone may take to come back to cm-a by itself (ms). */
const NATURAL_RETURN_SLACK_MS = 4000;

function record(s: Series, t0: number, seen: { msg: Record<string, unknown>; at: number }): number {
  const ms = seen.at - t0;
  s.ms.push(ms);
  const reason = String(seen.msg.reason);
  s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
  if (typeof seen.msg.detectMs === 'number') s.detectMs.push(seen.msg.detectMs);
  if (typeof seen.msg.rehomeMs === 'number') s.rehomeMs.push(seen.msg.rehomeMs);
  return ms;
}

/** The running bench setup; `agent` is replaced when a run has to be recovered. */
interface Rig {
  group: Group;
  observer: Observer;
  agent: Child;
  holdMs: number;
  log: (line: string) => void;
}

/** Start a fresh agent (fresh state dir) and wait until it is homed on cm-a. */
async function freshAgent(rig: Omit<Rig, 'agent'>, old?: Child): Promise<Child> {
  await old?.stop('SIGKILL');
  const config = rig.group.agentConfig(PHONE, { holdMs: rig.holdMs, stateDir: tempDir('state') });
  const since = performance.now();
  // As the device image runs it (bundle, the unit's NODE_OPTIONS, W^X where the kernel has it).
  const agent = startAgent(PHONE, config, 'unit');
  await rig.observer.waitHomed(PHONE, 'cm-a', 30_000, agent, since);
  // Let the first keep-alive exchanges (list versions, subscriptions) settle.
  await sleep(2000);
  return agent;
}

/**
 * One group per broker variant, all up at once; the kill series alternates
 * between them run by run, then the SIGSTOP series runs on the first.
 * Every group is torn down before returning.
 */
export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const rigs: Rig[] = [];
  const opened: { group: Group; observer?: Observer }[] = [];
  const kills = o.brokers.map((variant) => ({ variant, series: emptySeries() }));
  const stop = emptySeries();
  try {
    for (const v of o.brokers) {
      const group = await startGroup({ brokerConf: v.conf, ...(v.tls ? { tls: v.tls } : {}) });
      const entry: { group: Group; observer?: Observer } = { group };
      opened.push(entry);
      const observer = (entry.observer = await Observer.connect(group.broker.url, group.clientOptions));
      await group.startCm('cm-a', observer);
      await group.startCm('cm-b', observer);
      const base = { group, observer, holdMs: o.holdMs, log: o.log };
      rigs.push({ ...base, agent: await freshAgent(base) });
    }
    o.log(`failover: kill -9 × ${o.runs} on ${o.brokers.map((b) => b.label).join(' / ')}, alternating`);
    for (let i = 0; i < o.runs; i++) {
      for (const [k, rig] of rigs.entries()) await run(rig, 'SIGKILL', i, o.runs, kills[k]!.series, o.brokers[k]!.label);
    }
    o.log(`failover: SIGSTOP × ${o.runs} on ${o.brokers[0]!.label}`);
    for (let i = 0; i < o.runs; i++) await run(rigs[0]!, 'SIGSTOP', i, o.runs, stop, o.brokers[0]!.label);
    for (const rig of rigs) await rig.agent.stop('SIGTERM');
  } finally {
    for (const e of opened) {
      await e.observer?.close().catch(() => undefined);
      await e.group.close();
    }
  }
  return { kills, kill: kills[0]!.series, stop };
}

/**
 * Run `i` of a series: wait a random 0..1000 ms (a random moment within the
 * 1000 ms keep-alive period), arm the waiters, signal cm-a, time the
 * `rehomed` event, then undo (SIGCONT or restart) and wait until home again.
 */
async function run(rig: Rig, sig: 'SIGKILL' | 'SIGSTOP', i: number, runs: number, s: Series, where: string): Promise<void> {
  const label = sig === 'SIGKILL' ? 'kill' : 'stop';
  await sleep(Math.random() * 1000);
  const cmA = rig.group.running.get('cm-a')!;
  const event = rig.observer.next(eventTopic(PHONE), (m) => m.type === 'rehomed' && m.from === 'cm-a', EVENT_TIMEOUT_MS, rig.agent);
  const will = rig.observer.next('ipphone/v1/cm/cm-a/state', (m) => m.online === false, EVENT_TIMEOUT_MS);
  will.catch(() => undefined);
  const killWall = Date.now();
  const t0 = performance.now();
  process.kill(cmA.pid, sig);
  let since = -Infinity;
  try {
    const seen = await event;
    since = seen.at;
    const ms = record(s, t0, seen);
    let detail = '';
    if (sig === 'SIGKILL') {
      const w = await will;
      const m = seen.msg;
      const num = (x: unknown): number => (typeof x === 'number' ? x : NaN);
      const parts: Record<Step, number> = {
        willObserver: w.at - t0,
        willAgent: num(m.detectedAt) - killWall,
        sent: num(m.sentMs),
        ack: num(m.ackMs),
        event: num(m.eventMs),
        total: ms,
      };
      for (const [k, v] of Object.entries(parts) as [Step, number][]) if (!Number.isNaN(v)) s.steps[k].push(v);
      detail = `; will ${parts.willObserver.toFixed(1)} (agent ${parts.willAgent}), sent +${parts.sent}, ack +${parts.ack}, event +${parts.event}`;
    }
    rig.log(`  ${where} ${label} ${i + 1}/${runs}: ${ms.toFixed(1)} ms (${String(seen.msg.reason)})${detail}`);
  } catch (err) {
    s.failures.push(`run ${i + 1}: ${firstLine(err)}`);
    rig.log(`  ${where} ${label} ${i + 1}/${runs}: FAILED ${firstLine(err)}`);
  } finally {
    if (sig === 'SIGSTOP') process.kill(cmA.pid, 'SIGCONT');
  }
  if (sig === 'SIGKILL') await cmA.exited;
  await resetHome(rig, since, s);
}

/**
 * The kill -9 breakdown, brokers side by side: per step median / p95 / worst
 * of the runs, and the goal of issue #9 §4 (will → rehomed ≤ 10 ms median).
 */
export function breakdownTable(r: FailoverResult): string {
  const f = (x: number): string => (Number.isNaN(x) ? 'n/a' : x.toFixed(1));
  const cols = r.kills.map((k) => `${k.variant.label}: median / p95 / worst (ms, n=${k.series.steps.total.length})`);
  const head = `| kill -9 of the home CM, per run | ${cols.join(' | ')} | goal |\n| --- | ${cols.map(() => '---').join(' | ')} | --- |\n`;
  const rows = (Object.keys(STEPS) as Step[]).map((step) => {
    const cells = r.kills.map((k) => {
      const xs = k.series.steps[step];
      return `${f(median(xs))} / ${f(percentile(xs, 95))} / ${f(xs.length ? Math.max(...xs) : NaN)}`;
    });
    const goal = step === 'event' ? '≤ 10 ms median' : step === 'total' ? '≤ 150 ms' : '—';
    return `| ${STEPS[step]} | ${cells.join(' | ')} | ${goal} |`;
  });
  return head + rows.join('\n') + '\n';
}

const firstLine = (err: unknown): string => (err instanceof Error ? err.message : String(err)).split('\n')[0]!;

/**
 * Bring the phone back onto a healthy cm-a: restart cm-a if it is not
 * running, then wait up to `holdMs` + {@link NATURAL_RETURN_SLACK_MS} for a
 * status that arrived after `since` (the rehomed event; a status published
 * before it may still name cm-a) saying homed on cm-a. If the phone stays
 * away (e.g. it holds a list that puts cm-b first), replace it with a fresh
 * agent on a fresh state dir; if even that fails, give up (throw).
 */
async function resetHome(rig: Rig, since: number, s: Series): Promise<void> {
  const { group, observer } = rig;
  const cmA = group.running.get('cm-a');
  if (cmA === undefined || !cmA.alive()) await group.startCm('cm-a', observer);
  try {
    await observer.waitHomed(PHONE, 'cm-a', rig.holdMs + NATURAL_RETURN_SLACK_MS, rig.agent, since);
    s.returns.natural++;
    return;
  } catch {
    s.returns.freshAgent++;
    s.lastAway = JSON.stringify(observer.status(PHONE));
  }
  rig.agent = await freshAgent(rig, rig.agent);
}
