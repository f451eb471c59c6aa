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
  /** Runs that produced no rehomed event in time, or could not be reset. */
  failures: string[];
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

const emptySeries = (): Series => ({ ms: [], detectMs: [], rehomeMs: [], reasons: {}, failures: [] });

function record(s: Series, t0: number, seen: { msg: Record<string, unknown>; at: number }): number {
  const ms = seen.at - t0;
  s.ms.push(ms);
  const reason = String(seen.msg.reason);
  s.reasons[reason] = (s.reasons[reason] ?? 0) + 1;
  if (typeof seen.msg.detectMs === 'number') s.detectMs.push(seen.msg.detectMs);
  if (typeof seen.msg.rehomeMs === 'number') s.rehomeMs.push(seen.msg.rehomeMs);
  return ms;
}

/** Run both series on one fresh group; the group is torn down before returning. */
export async function runFailover(o: FailoverOptions): Promise<FailoverResult> {
  const group = await startGroup();
  const observer = await Observer.connect(group.broker.url);
  const out: FailoverResult = { kill: emptySeries(), stop: emptySeries() };
  try {
    await group.startCm('cm-a', observer);
    await group.startCm('cm-b', observer);
    const config = group.agentConfig(PHONE, { holdMs: o.holdMs, stateDir: tempDir('state') });
    const agent = startAgent(PHONE, config, 'tsx');
    await observer.waitHomed(PHONE, 'cm-a', 30_000, agent);
    // Give the first keep-alive exchanges (list versions, subscriptions) a moment to settle.
    await sleep(2000);
    const backHomeMs = o.holdMs + 20_000;

    o.log(`failover: kill -9 × ${o.runs}`);
    for (let i = 0; i < o.runs; i++) {
      await sleep(Math.random() * 1000);
      const cmA = group.running.get('cm-a')!;
      const event = observer.next(eventTopic(PHONE), (m) => m.type === 'rehomed' && m.from === 'cm-a', EVENT_TIMEOUT_MS, agent);
      const t0 = performance.now();
      process.kill(cmA.pid, 'SIGKILL');
      let since = -Infinity;
      try {
        const seen = await event;
        since = seen.at;
        const ms = record(out.kill, t0, seen);
        o.log(`  kill ${i + 1}/${o.runs}: ${ms.toFixed(1)} ms (${String(seen.msg.reason)})`);
      } catch (err) {
        out.kill.failures.push(`run ${i + 1}: ${(err as Error).message.split('\n')[0]}`);
        o.log(`  kill ${i + 1}/${o.runs}: FAILED ${(err as Error).message.split('\n')[0]}`);
      }
      await cmA.exited;
      await resetHome(group, observer, agent, since, backHomeMs);
    }

    o.log(`failover: SIGSTOP × ${o.runs}`);
    for (let i = 0; i < o.runs; i++) {
      // A random moment within the keep-alive period (intervalMs 1000).
      await sleep(Math.random() * 1000);
      const cmA = group.running.get('cm-a')!;
      const event = observer.next(eventTopic(PHONE), (m) => m.type === 'rehomed' && m.from === 'cm-a', EVENT_TIMEOUT_MS, agent);
      const t0 = performance.now();
      process.kill(cmA.pid, 'SIGSTOP');
      let since = -Infinity;
      try {
        const seen = await event;
        since = seen.at;
        const ms = record(out.stop, t0, seen);
        o.log(`  stop ${i + 1}/${o.runs}: ${ms.toFixed(1)} ms (${String(seen.msg.reason)})`);
      } catch (err) {
        out.stop.failures.push(`run ${i + 1}: ${(err as Error).message.split('\n')[0]}`);
        o.log(`  stop ${i + 1}/${o.runs}: FAILED ${(err as Error).message.split('\n')[0]}`);
      } finally {
        process.kill(cmA.pid, 'SIGCONT');
      }
      await resetHome(group, observer, agent, since, backHomeMs);
    }
    await agent.stop('SIGTERM');
  } finally {
    await observer.close().catch(() => undefined);
    await group.close();
  }
  return out;
}

/**
 * Bring the phone back onto a healthy cm-a: restart cm-a if it is not
 * running, then wait for a status that arrived after `since` (the rehomed
 * event; a status published before it may still name cm-a) saying homed on cm-a.
 */
async function resetHome(group: Group, observer: Observer, agent: Child, since: number, timeoutMs: number): Promise<void> {
  const cmA = group.running.get('cm-a');
  if (cmA === undefined || !cmA.alive()) await group.startCm('cm-a', observer);
  try {
    await observer.waitHomed(PHONE, 'cm-a', timeoutMs, agent, since);
  } catch (err) {
    const status = JSON.stringify(observer.status(PHONE));
    throw new Error(`phone did not return to cm-a: ${(err as Error).message}; last status ${status}\n--- agent ---\n${agent.tail()}\n--- cm-a ---\n${group.running.get('cm-a')?.tail() ?? ''}\n--- mosquitto (pid ${group.broker.pid}) ---\n${group.broker.logTail()}`);
  }
}
