/**
 * Failover latency (issue #2, figures 1 and 2): one phone homed on cm-a of a
 * two-CM group; cm-a is SIGKILLed (or SIGSTOPped) and the time until the
 * phone's `rehomed` event reaches an mqtt.js subscriber in the bench process
 * is measured — from just before the signal to the message's arrival.
 * Between runs cm-a is restarted (or SIGCONTed) and the phone returns to it
 * (fallback with a short `holdMs`, or a pushed list) before the next run.
 */
import { performance } from 'node:perf_hooks';
import { eventTopic, Observer, startAgent, startGroup, sleep, tempDir, type Child, type Group } from './harness.js';

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
}

export interface FailoverOptions {
  /** Runs per series (kill, stop). */
  runs: number;
  /** The agent's `fallback.holdMs` (ms); short so that the phone returns to cm-a quickly. */
  holdMs: number;
  /** Progress lines (stderr). */
  log: (line: string) => void;
}

export interface FailoverResult {
  kill: Series;
  stop: Series;
}

const PHONE = 'p-bench-failover';
/** Longest wait for one rehomed event (ms); far above either goal. */
const EVENT_TIMEOUT_MS = 15_000;

const emptySeries = (): Series => ({ ms: [], detectMs: [], rehomeMs: [], reasons: {}, failures: [], returns: { natural: 0, freshAgent: 0 } });
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

/** Run both series on one fresh group; the group is torn down before returning. */
export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const group = await startGroup();
  const observer = await Observer.connect(group.broker.url);
  const out: FailoverResult = { kill: emptySeries(), stop: emptySeries() };
  try {
    await group.startCm('cm-a', observer);
    await group.startCm('cm-b', observer);
    const base = { group, observer, holdMs: o.holdMs, log: o.log };
    const rig: Rig = { ...base, agent: await freshAgent(base) };
    o.log(`failover: kill -9 × ${o.runs}`);
    await series(rig, 'SIGKILL', o.runs, out.kill);
    o.log(`failover: SIGSTOP × ${o.runs}`);
    await series(rig, 'SIGSTOP', o.runs, out.stop);
    await rig.agent.stop('SIGTERM');
  } finally {
    await observer.close().catch(() => undefined);
    await group.close();
  }
  return out;
}

/**
 * `runs` times: wait a random 0..1000 ms (a random moment within the
 * 1000 ms keep-alive period), arm the event waiter, signal cm-a, time the
 * `rehomed` event, then undo (SIGCONT or restart) and wait until home again.
 */
async function series(rig: Rig, sig: 'SIGKILL' | 'SIGSTOP', runs: number, s: Series): Promise<void> {
  const label = sig === 'SIGKILL' ? 'kill' : 'stop';
  for (let i = 0; i < runs; i++) {
    await sleep(Math.random() * 1000);
    const cmA = rig.group.running.get('cm-a')!;
    const event = rig.observer.next(eventTopic(PHONE), (m) => m.type === 'rehomed' && m.from === 'cm-a', EVENT_TIMEOUT_MS, rig.agent);
    const t0 = performance.now();
    process.kill(cmA.pid, sig);
    let since = -Infinity;
    try {
      const seen = await event;
      since = seen.at;
      const ms = record(s, t0, seen);
      rig.log(`  ${label} ${i + 1}/${runs}: ${ms.toFixed(1)} ms (${String(seen.msg.reason)})`);
    } catch (err) {
      s.failures.push(`run ${i + 1}: ${firstLine(err)}`);
      rig.log(`  ${label} ${i + 1}/${runs}: FAILED ${firstLine(err)}`);
    } finally {
      if (sig === 'SIGSTOP') process.kill(cmA.pid, 'SIGCONT');
    }
    if (sig === 'SIGKILL') await cmA.exited;
    await resetHome(rig, since, s);
  }
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
