/**
 * What the fleet's tests share (test/integration/fleet*.test.ts, tls-failover.test.ts).
 *
 * "stop() leaves nothing running": a child process builds a fleet (in-process
 * `Fleet` or `WorkerFleet`) from a cluster's agent config, waits until its
 * phones are homed, stops it, and must then exit by itself — an open socket,
 * timer or worker thread left behind keeps it alive and the check fails.
 */
import { resolve } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { AgentConfig } from '../../src/config/agent-config.js';
import { loadFleetConfigFile } from '../../src/fleet/config.js';
import { Cluster } from './cluster.js';
import { startMosquitto, type Mosquitto } from './mosquitto.js';
import { waitFor } from './net.js';
import type { Pki } from './pki.js';

export interface FleetExitCase {
  /** The class to build: `Fleet` (src/fleet/fleet.ts) or `WorkerFleet` (src/fleet/workers.ts). */
  kind: 'Fleet' | 'WorkerFleet';
  count: number;
  /** Extra constructor options, as JavaScript object-literal entries (`workers: 2, phoneLog: {...}`). */
  extra?: string;
  name: string;
}

export async function fleetExitsAfterStop(t: ExecutionContext, c: Cluster, k: FleetExitCase): Promise<void> {
  const cfg = c.agentConfig('ignored');
  const moduleTs = resolve(import.meta.dirname, `../../src/fleet/${k.kind === 'Fleet' ? 'fleet' : 'workers'}.ts`);
  const configTs = resolve(import.meta.dirname, '../../src/fleet/config.ts');
  const script = `
    const { ${k.kind} } = await import(${JSON.stringify(moduleTs)});
    const { loadFleetConfigFile } = await import(${JSON.stringify(configTs)});
    const { pino } = await import('pino');
    const fleet = new ${k.kind}({ config: loadFleetConfigFile(${JSON.stringify(cfg)}), count: ${k.count}, prefix: 'h-', log: pino({ level: 'error' })${k.extra === undefined ? '' : `, ${k.extra}`} });
    await fleet.start();
    const until = Date.now() + 20000;
    while (fleet.summary().homed < ${k.count} && Date.now() < until) await new Promise((r) => setTimeout(r, 50));
    console.log(JSON.stringify({ homed: fleet.summary().homed }));
    await fleet.stop();
    console.log('stopped');
  `;
  const p = c.startProcess(k.name, ['--input-type=module', '-e', script]);
  await waitFor(() => p.output().includes('stopped'), { timeoutMs: 30_000, what: `the script to stop\n${p.output()}` });
  const exit = await Promise.race([p.exited, new Promise<'hung'>((r) => setTimeout(() => r('hung'), 10_000))]);
  t.is(exit, 0, `process exited by itself after stop()\n${p.output()}`);
  t.regex(p.output(), new RegExp(`\\{"homed":${k.count}\\}`));
}

/**
 * A simulator's broker: client certificates required, but one identity shared by
 * every simulated phone (`fleet`), so no use_username_as_clientid (it would make
 * them one client) and no per-identity ACL; cm-a and cm-b over TLS on it, watched.
 */
export async function sharedCertGroup(t: ExecutionContext, pki: Pki): Promise<{ m: Mosquitto; c: Cluster; config: AgentConfig }> {
  const m = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, usernameAsClientid: false } });
  t.teardown(() => m.stop());
  const c = new Cluster({ tls: pki });
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: m.url },
    { id: 'cm-b', broker: m.url },
  ]);
  await c.observe(m.url);
  await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
  await c.identity('fleet');
  return { m, c, config: loadFleetConfigFile(c.agentConfig('fleet')) };
}

/** How many of `ids` a cluster's observer sees homed on `cm`. */
export const homedOn = (c: Cluster, ids: readonly string[], cm: string): number =>
  ids.filter((id) => c.status(id)?.home === cm && c.status(id)?.state === 'homed').length;
