/**
 * Rebalancing figures (issue #3): moves made ÷ the minimum the imbalance
 * needs, and rebalance periods until the group is within its threshold.
 * A fleet of real agent cores (in this process) all homed on cm-a, then cm-b
 * and cm-c start; phones' `rehomed` events (reason `rebalance`) are counted.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { connect } from 'mqtt';
import { validateAgentConfig } from '../src/config/agent-config.js';
import { silentLogger } from '../src/lib/log.js';
import { Fleet } from '../src/fleet/fleet.js';
import { planRebalance } from '../src/callmanager/rebalance.js';
import { Observer, sleep, startGroup, tempDir, waitFor } from './harness.js';

export interface RebalanceResult {
  phones: number;
  capacities: number[];
  moves: number;
  minimum: number;
  periods: number;
  periodMs: number;
  converged: boolean;
  /** Phones per member, sampled every quarter period from the start of the idle members (for the plot). */
  timeline: { ms: number; byHome: Record<string, number> }[];
}

export async function runRebalance(o: { phones: number; capacities: number[]; periodMs: number; log: (s: string) => void }): Promise<RebalanceResult> {
  const ids = o.capacities.map((_, i) => `cm-${String.fromCharCode(97 + i)}`);
  const group = await startGroup({ ids });
  const observer = await Observer.connect(group.broker.url);
  // Rebalance settings and capacities for this bench.
  for (const [i, id] of ids.entries()) {
    const file = group.cms.get(id)!.configFile;
    const cfg = JSON.parse(readFileSync(file, 'utf8')) as { group: { capacity: number }[]; rebalance?: unknown };
    cfg.group.forEach((g, j) => (g.capacity = o.capacities[j]!));
    cfg.rebalance = { enabled: true, periodMs: o.periodMs, threshold: 0.1, maxMovesPerSec: 200 };
    writeFileSync(file, JSON.stringify(cfg));
    void i;
  }
  const events = connect(group.broker.url, { reconnectPeriod: 0 });
  let moves = 0;
  events.on('message', (_t, payload) => {
    const e = JSON.parse(payload.toString()) as { type?: string; reason?: string };
    if (e.type === 'rehomed' && e.reason === 'rebalance') moves++;
  });
  await new Promise<void>((done) => events.once('connect', () => events.subscribe('ipphone/v1/phone/+/event', { qos: 1 }, () => done())));
  const stateDir = tempDir('rebalance-fleet');
  let fleet: Fleet | undefined;
  try {
    await group.startCm('cm-a', observer);
    const v = validateAgentConfig({ ...JSON.parse(readFileSync(group.agentConfig('template', { holdMs: 60_000, stateDir }), 'utf8')), log: { level: 'silent' } });
    if (!v.ok) throw new Error(v.problems.join('\n'));
    fleet = new Fleet({ config: v.config, count: o.phones, prefix: 'rb-', stateDir: path.join(stateDir, 'fleet'), log: silentLogger() });
    await fleet.start();
    await waitFor(() => fleet!.summary().byHome['cm-a'] === o.phones, { timeoutMs: 60_000, what: 'all on cm-a' });
    const members = ids.map((id, i) => ({ id, phones: id === 'cm-a' ? o.phones : 0, capacity: o.capacities[i]! }));
    const minimum = planRebalance(members, 0.1).minimumMoves;
    const t0 = Date.now();
    const timeline: RebalanceResult['timeline'] = [];
    const sample = (): number => timeline.push({ ms: Date.now() - t0, byHome: { ...fleet!.summary().byHome } });
    sample();
    const sampler = setInterval(sample, o.periodMs / 4);
    await Promise.all(ids.slice(1).map((id) => group.startCm(id, observer)));
    const within = (): boolean => {
      const h = fleet!.summary().byHome;
      const u = ids.map((id, i) => (h[id] ?? 0) / o.capacities[i]!);
      return Math.max(...u) - Math.min(...u) <= 0.1;
    };
    let converged = true;
    await waitFor(within, { timeoutMs: 60_000, what: 'balanced' }).catch(() => (converged = false));
    const periods = (Date.now() - t0) / o.periodMs;
    await sleep(3 * o.periodMs); // late events, and anything that would still move
    clearInterval(sampler);
    sample();
    o.log(`rebalance: ${moves} moves (minimum ${minimum}) in ${periods.toFixed(1)} periods; homes ${JSON.stringify(fleet.summary().byHome)}`);
    return { phones: o.phones, capacities: o.capacities, moves, minimum, periods, periodMs: o.periodMs, converged, timeline };
  } finally {
    await fleet?.stop();
    await events.endAsync(true);
    await observer.close();
    await group.close();
  }
}
