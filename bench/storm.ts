/**
 * Reconnect storm (issue #3): N in-process phones with pointers on two
 * brokers (cm-a on broker 1, cm-b on broker 2). Broker 1 is killed: the
 * phones rehome on cm-b over their hot-standby connections (no reconnect at
 * all). Broker 1 comes back: every phone reconnects to it (its pointer is the
 * primary) — that is the storm. Measured: the peak connects per second broker
 * 1 sees (from its own log), the spread of the reconnects, and the time until
 * every phone is back home on cm-a after the hold-down.
 *
 * Issue #9: the same storm over plain TCP and over TLS (bench/transport.ts:
 * the same broker config but the TLS lines; client certificates required,
 * one certificate shared by the fleet, so no `use_username_as_clientid` and
 * no per-identity ACL), one after the other, with broker 1's CPU seconds
 * (/proc/PID/stat of the restarted mosquitto) from its restart until every
 * phone is back: the handshakes of the storm.
 *
 *   node --import tsx bench/storm.ts [--count 1000] [--hold-ms 3000] [--transport plain|tls|both]
 *        [--connect-timeout-ms 5000]
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { validateAgentConfig } from '../src/config/agent-config.js';
import { silentLogger } from '../src/lib/log.js';
import { Fleet } from '../src/fleet/fleet.js';
import { Cluster } from '../test/helpers/cluster.js';
import { makePki } from '../test/helpers/pki.js';
import { waitFor } from '../test/helpers/net.js';
import { brokerCpuMs, parseTransports, startBroker, type Transport } from './transport.js';

export interface StormResult {
  transport: Transport;
  phones: number;
  peakConnectsPerSec: number;
  reconnects: number;
  spreadMs: number;
  /** Each connect broker 1 logged, ms after its restart began (the raw samples of the peak; for the plot). */
  connectMs: number[];
  allBackMs: number;
  backoff: { baseMs: number; maxMs: number };
  /** The phones' mqtt.connectTimeoutMs (TCP + TLS + CONNACK). */
  connectTimeoutMs: number;
  /** Broker 1's CPU (user + system), from its restart until every phone is back on cm-a. */
  brokerCpuMs: number;
  /** This process's (the fleet's) CPU over the same window. */
  fleetCpuMs: number;
  /** The commonest kinds of broker 1's log lines in the window, with counts. */
  brokerLog: [kind: string, count: number][];
}

const ownCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

export async function runStorm(o: { count: number; holdMs: number; log: (s: string) => void; transport?: Transport; connectTimeoutMs?: number }): Promise<StormResult> {
  const transport = o.transport ?? 'plain';
  const connectTimeoutMs = o.connectTimeoutMs ?? 5000;
  const connects: number[] = [];
  let counting = false;
  const pki = transport === 'tls' ? await makePki() : undefined;
  /** Broker 1's log lines in the storm window by kind (ids, ports and numbers folded). */
  const kinds = new Map<string, number>();
  const onLog = (l: string): void => {
    if (!counting) return;
    if (/New client connected/.test(l)) connects.push(Date.now());
    if (/mosquitto version|Config loaded|listen socket/.test(l)) return;
    const kind = l.replace(/^\d+: /, '').replace(/\(p\d.*$/, '').replace(/st-\d+|cm-[ab]|[0-9a-f]{8,}|\d+/g, 'N');
    kinds.set(kind, (kinds.get(kind) ?? 0) + 1);
  };
  const { broker: b1 } = await startBroker(transport, { ...(pki ? { pki } : {}), onLog });
  const { broker: b2 } = await startBroker(transport, pki ? { pki } : {});
  const c = new Cluster(pki ? { tls: pki } : {});
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-storm-'));
  let fleet: Fleet | undefined;
  const backoff = { baseMs: 1000, maxMs: 8000 };
  try {
    await c.defineGroup([
      { id: 'cm-a', broker: b1.url },
      { id: 'cm-b', broker: b2.url },
    ]);
    await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
    // Every simulated phone connects with this one certificate (CN "fleet").
    if (pki) await c.identity('fleet');
    const raw = JSON.parse(readFileSync(c.agentConfig('fleet', { fallback: { holdMs: o.holdMs }, keepalive: { intervalMs: 5000, missLimit: 3 }, mqtt: { connectTimeoutMs, backoff } }), 'utf8')) as Record<string, unknown>;
    const v = validateAgentConfig({ ...raw, log: { level: 'silent' } });
    if (!v.ok) throw new Error(v.problems.join('\n'));
    fleet = new Fleet({ config: v.config, count: o.count, prefix: 'st-', stateDir: path.join(dir, 'fleet'), log: silentLogger() });
    await fleet.start();
    await waitFor(() => fleet!.summary().byHome['cm-a'] === o.count, { timeoutMs: 120_000, what: 'all on cm-a' });
    o.log(`storm (${transport}): ${o.count} phones on cm-a; killing broker 1`);
    await b1.kill();
    await waitFor(() => fleet!.summary().byHome['cm-b'] === o.count, { timeoutMs: 60_000, what: 'all on cm-b' });
    o.log(`storm (${transport}): all on cm-b (hot standby); restarting broker 1`);
    counting = true;
    const back = Date.now();
    await b1.restart(); // cm-a reconnects by itself (mqtt.js, every second)
    // From the moment the new broker accepts: its own start-up is not the storm's.
    const cpu0 = { broker: brokerCpuMs(b1), fleet: ownCpuMs() };
    await waitFor(() => fleet!.summary().byHome['cm-a'] === o.count, { timeoutMs: 180_000, what: 'all back on cm-a' });
    const allBackMs = Date.now() - back;
    const cpu1 = { broker: brokerCpuMs(b1), fleet: ownCpuMs() };
    counting = false;
    const perSec = new Map<number, number>();
    for (const t of connects) perSec.set(Math.floor((t - back) / 1000), (perSec.get(Math.floor((t - back) / 1000)) ?? 0) + 1);
    const peak = Math.max(0, ...perSec.values());
    const spreadMs = connects.length > 1 ? Math.max(...connects) - Math.min(...connects) : 0;
    const brokerCpu = cpu1.broker - cpu0.broker;
    o.log(`storm (${transport}): broker 1 log in the window: ${JSON.stringify([...kinds].sort((a, b) => b[1] - a[1]).slice(0, 6))}`);
    o.log(`storm (${transport}): ${connects.length} connects to broker 1, peak ${peak}/s over ${spreadMs} ms; all back in ${allBackMs} ms; broker 1 CPU ${brokerCpu} ms`);
    return { transport, phones: o.count, peakConnectsPerSec: peak, reconnects: connects.length, spreadMs, connectMs: connects.map((t) => t - back), allBackMs, backoff, connectTimeoutMs, brokerCpuMs: brokerCpu, fleetCpuMs: cpu1.fleet - cpu0.fleet, brokerLog: [...kinds].sort((a, b) => b[1] - a[1]).slice(0, 6) };
  } finally {
    await fleet?.stop();
    await c.close();
    await b1.stop();
    await b2.stop();
    rmSync(dir, { recursive: true, force: true });
    pki?.remove();
  }
}

/** The storm over each transport, one after the other (plain first), same count and hold. */
export async function runStormCompare(o: { count: number; holdMs: number; log: (s: string) => void; transports?: readonly Transport[]; connectTimeoutMs?: number }): Promise<StormResult[]> {
  const out: StormResult[] = [];
  for (const transport of o.transports ?? (['plain', 'tls'] as const)) out.push(await runStorm({ ...o, transport }));
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const arg = (name: string, d: number): number => {
    const i = process.argv.indexOf(name);
    return i > 0 ? Number(process.argv[i + 1]) : d;
  };
  const ti = process.argv.indexOf('--transport');
  const transports = parseTransports(ti > 0 ? (process.argv[ti + 1] ?? 'both') : 'both');
  runStormCompare({ count: arg('--count', 1000), holdMs: arg('--hold-ms', 3000), connectTimeoutMs: arg('--connect-timeout-ms', 5000), log: (s) => process.stderr.write(`${s}\n`), transports }).then(
    (rs) => {
      for (const r of rs) process.stdout.write(`${JSON.stringify(r)}\n`);
      process.exit(0);
    },
    (err: unknown) => {
      process.stderr.write(`storm: ${String(err)}\n`);
      process.exit(1);
    },
  );
}
