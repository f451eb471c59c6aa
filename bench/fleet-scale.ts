/**
 * Fleet scale: N in-process phones (default 2,000) against a local mosquitto
 * and call managers run as child processes, over plain TCP and over TLS
 * (issue #9) side by side.
 *
 *   node --expose-gc --import tsx bench/fleet-scale.ts [--count 2000]
 *        [--interval-ms 5000] [--settle-ms 10000] [--log-level error]
 *        [--transport plain|tls|both] [--json] [--samples FILE]
 *
 * Each transport runs in a fresh child process of this script (`--json`:
 * one transport, result as one JSON line), so RSS and JIT state of one run
 * do not leak into the other; the parent prints one table with a column per
 * transport and TLS ÷ plain. The broker config is the same for both but the
 * TLS lines (bench/transport.ts: client certificates required, one shared
 * fleet certificate, no `use_username_as_clientid`, no ACL).
 *
 * One run:
 * 1. cm-a up (cm-b defined, down; rebalancing off so nothing but failure moves
 *    phones); start the fleet; time until every phone is homed on cm-a
 *    (this window holds the N connects — the TLS handshakes).
 * 2. After `settleMs`, RSS of this process (which is the fleet: no observer
 *    client, nothing else per phone) minus the RSS before the fleet was built.
 * 3. Start cm-b, wait until it is up, `kill -9` cm-a; time until every phone is
 *    homed on cm-b (no reconnects: the phones' broker connections stay up,
 *    so TLS costs only record crypto here).
 * 4. Stop the fleet; time to stop.
 *
 * Per window, the broker's CPU seconds (user + system, /proc/PID/stat of the
 * mosquitto process) and this process's (the fleet's). Times are from this
 * process's wall clock, polled every 20 ms on each phone's machine state: an
 * upper bound per phone, since under a flood of MQTT callbacks the poll's
 * timer can run late.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { Fleet } from '../src/fleet/fleet.js';
import { loadFleetConfigFile } from '../src/fleet/config.js';
import { Cluster } from '../test/helpers/cluster.js';
import { waitFor } from '../test/helpers/net.js';
import { brokerCpuMs, parseTransports, ratio, startBroker, type Transport } from './transport.js';
import { cpuMs } from '../test/helpers/proc.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} needs a positive whole number`);
  return v;
}
const textArg = (name: string, fallback: string): string => (process.argv.includes(name) ? (process.argv[process.argv.indexOf(name) + 1] ?? fallback) : fallback);

const count = arg('--count', 2000);
const intervalMs = arg('--interval-ms', 5000);
const settleMs = arg('--settle-ms', 10_000);
/** Phone log level (to stderr); default error. */
const logLevel = textArg('--log-level', 'error');
const MiB = 1024 * 1024;
const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const cpuS = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const note = (s: string): void => void process.stderr.write(`[fleet-scale] ${s}\n`);

/** Force a GC when run with --expose-gc, so RSS reads are less noisy. */
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();
const ownCpuMs = (): number => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

/** When each phone was first seen homed on a call manager: ms after `t0`, sorted. */
interface Spread {
  firstMs: number;
  medianMs: number;
  p95Ms: number;
  allMs: number;
  /** Every phone's first-seen time, ms after `t0`, sorted (the raw samples; for the plot). */
  sortedMs: number[];
}

export interface FleetRun {
  transport: Transport;
  count: number;
  intervalMs: number;
  startedMs: number;
  start: Spread;
  rssBefore: number;
  rssHomed: number;
  heapUsed: number;
  rehome: Spread;
  /**
   * The same window from each phone's own `rehomed` event (ms after the kill, sorted), not from the
   * 20 ms poll: under the flood of MQTT callbacks node's poll phase holds timers back, and the poll
   * then sees every phone at once, late.
   */
  rehomedMs: number[];
  /** The machine's 1-minute load average at the kill (other processes share the 2 cores). */
  loadAtKill: number;
  lagMaxMs: number;
  lagP99Ms: number;
  rehomesBefore: number;
  rehomesAfter: number;
  rssAfterRehome: number;
  stopMs: number;
  /** CPU ms per window: start (connects), settle (steady keep-alives), rehome (kill -9 → all homed). */
  brokerCpu: { start: number; settle: number; rehome: number };
  /** cm-b's CPU ms from the kill -9 to all homed (the product's side of the failover: its acks and signed lists). */
  cmBCpuRehome: number;
  fleetCpu: { start: number; settle: number; rehome: number };
}

/** Poll every phone's machine state until all are homed on `cm`; per-phone first-seen times. */
async function homedSpread(f: Fleet, cm: string, t0: number, what: string): Promise<Spread> {
  // The fleet builds its phones during start(): read the list on every poll.
  const at = new Float64Array(count).fill(-1);
  let left = count;
  await waitFor(
    () => {
      const now = Date.now() - t0;
      const phones = f.phones();
      for (let i = 0; i < phones.length; i++) {
        if (at[i]! < 0 && phones[i]!.agent.state?.home === cm) {
          at[i] = now;
          left--;
        }
      }
      return left === 0 && f.summary().byHome[cm] === count;
    },
    { timeoutMs: 300_000, intervalMs: 20, what: `${what}: ${JSON.stringify(f.summary())}` },
  );
  const sorted = [...at].sort((a, b) => a - b);
  const q = (p: number): number => sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)]!;
  return { firstMs: sorted[0]!, medianMs: q(50), p95Ms: q(95), allMs: Date.now() - t0, sortedMs: sorted };
}

/**
 * When each phone's agent emitted its `rehomed` event to `cm`, ms after `t0`, sorted: the agent's own
 * moment, read by wrapping its event publisher (bench only). The poll of {@link homedSpread} runs on a
 * timer, and under a flood of MQTT callbacks node's poll phase can hold timers back for seconds: the
 * poll then sees every phone at once, late. Phones that emitted none are left out (`length` < count).
 */
function rehomedEvents(f: Fleet): { since(t0: number, cm: string): number[] } {
  const at: Array<{ cm: string; t: number }[]> = [];
  f.phones().forEach((p, i) => {
    const seen: { cm: string; t: number }[] = (at[i] = []);
    const a = p.agent as unknown as { event(e: Record<string, unknown>): void };
    const publish = a.event.bind(a);
    a.event = (e) => {
      if (e.type === 'rehomed') seen.push({ cm: String(e.to), t: Date.now() });
      publish(e);
    };
  });
  return {
    since: (t0, cm) =>
      at
        .map((seen) => seen.find((x) => x.cm === cm && x.t >= t0)?.t)
        .filter((t): t is number => t !== undefined)
        .map((t) => t - t0)
        .sort((a, b) => a - b),
  };
}

async function runOnce(transport: Transport): Promise<FleetRun> {
  const { broker: mosq, pki } = await startBroker(transport);
  const c = new Cluster(pki ? { tls: pki } : {});
  let fleet: Fleet | undefined;
  try {
    await c.defineGroup([
      { id: 'cm-a', broker: mosq.url, capacity: count * 2 },
      { id: 'cm-b', broker: mosq.url, capacity: count * 2 },
    ]);
    // IPPHONE_BENCH_CONSOLE=off: the call managers without the operator console (no phone status/event
    // subscriptions), to measure what the console costs a 2,000-phone failover.
    const consoleOff = process.env.IPPHONE_BENCH_CONSOLE === 'off';
    const cmExtra = { rebalance: { enabled: false }, keepalive: { phoneIntervalMs: intervalMs }, ...(consoleOff ? { console: { enabled: false } } : {}) };
    await c.startCm('cm-a', cmExtra);
    // Every simulated phone connects with this one certificate (CN "fleet").
    if (pki) await c.identity('fleet');
    const config = loadFleetConfigFile(
      c.agentConfig('fleet', { keepalive: { intervalMs, missLimit: 3 }, log: { level: 'warn' }, mqtt: { connectTimeoutMs: 10_000, backoff: { baseMs: 500, maxMs: 5000 } } }),
    );
    gc();
    const rssBefore = process.memoryUsage().rss;
    fleet = new Fleet({ config, count, stateDir: join(c.dir, 'fleet'), log: pino({ level: logLevel }, pino.destination({ dest: 2, sync: true })) });
    const f = fleet;
    const cpu0 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs() };
    const t0 = Date.now();
    const homing = homedSpread(f, 'cm-a', t0, 'all homed on cm-a');
    await f.start();
    const startedMs = Date.now() - t0;
    note(`${transport}: start() returned after ${startedMs} ms: ${JSON.stringify(f.summary())}`);
    const start = await homing;
    const events = rehomedEvents(f);
    const cpu1 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs() };
    note(`${transport}: all ${count} homed on cm-a after ${start.allMs} ms`);

    await new Promise((r) => setTimeout(r, settleMs));
    const cpu2 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs() };
    gc();
    const mem = process.memoryUsage();
    note(`${transport}: rss ${mib(mem.rss)} (before ${mib(rssBefore)}), heapUsed ${mib(mem.heapUsed)}`);

    // IPPHONE_BENCH_CPU_PROF=DIR: cm-b runs under --cpu-prof (profile written into DIR when it stops);
    // run this script itself with --cpu-prof for the fleet's side.
    const profDir = process.env.IPPHONE_BENCH_CPU_PROF;
    await c.startCm('cm-b', cmExtra, profDir ? { command: 'sh', args: ['-c', `exec "$0" --cpu-prof --cpu-prof-dir=${profDir} "$@"`] } : undefined);
    await new Promise((r) => setTimeout(r, 2000));
    const before = f.summary();
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cmBPid = c.cms.get('cm-b')!.pid;
    const cpu3 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs(), cmB: cpuMs(cmBPid) };
    const loadAtKill = loadavg()[0]!;
    const tKill = Date.now();
    // The monotonic clock of --cpu-prof profiles (µs), to cut this window out of the fleet's and cm-b's profiles.
    note(`${transport}: kill at hrtime ${process.hrtime.bigint() / 1000n} µs`);
    const progress = setInterval(() => note(`${transport}: +${Date.now() - tKill} ms: ${JSON.stringify(f.summary().byHome)}, event loop delay max ${(lag.max / 1e6).toFixed(0)} ms`), 1000);
    c.cms.get('cm-a')!.signal('SIGKILL');
    const rehome = await homedSpread(f, 'cm-b', tKill, 'all homed on cm-b');
    const rehomedMs = events.since(tKill, 'cm-b');
    const cpu4 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs(), cmB: cpuMs(cmBPid) };
    clearInterval(progress);
    lag.disable();
    const after = f.summary();
    note(`${transport}: all ${count} homed on cm-b ${rehome.allMs} ms after kill -9 (hrtime ${process.hrtime.bigint() / 1000n} µs); rehomed events: ${rehomedMs.length}, first ${rehomedMs[0]} ms, median ${rehomedMs[rehomedMs.length >> 1]} ms, last ${rehomedMs.at(-1)} ms`);
    const rssAfterRehome = process.memoryUsage().rss;

    if (profDir !== undefined) {
      // A profile is written only on a clean exit.
      const cmB = c.cms.get('cm-b')!;
      cmB.signal('SIGTERM');
      await waitFor(() => cmB.output().includes('[exited'), { timeoutMs: 20_000, what: 'cm-b to exit' });
    }
    const tStop = Date.now();
    await f.stop();
    const stopMs = Date.now() - tStop;
    return {
      transport,
      count,
      intervalMs,
      startedMs,
      start,
      rssBefore,
      rssHomed: mem.rss,
      heapUsed: mem.heapUsed,
      rehome,
      rehomedMs,
      loadAtKill,
      lagMaxMs: lag.max / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      rehomesBefore: before.rehomes,
      rehomesAfter: after.rehomes,
      rssAfterRehome,
      stopMs,
      brokerCpu: { start: cpu1.broker - cpu0.broker, settle: cpu2.broker - cpu1.broker, rehome: cpu4.broker - cpu3.broker },
      fleetCpu: { start: cpu1.fleet - cpu0.fleet, settle: cpu2.fleet - cpu1.fleet, rehome: cpu4.fleet - cpu3.fleet },
      cmBCpuRehome: cpu4.cmB - cpu3.cmB,
    };
  } finally {
    await fleet?.stop();
    await c.close();
    await mosq.stop();
    pki?.remove();
  }
}

/** Run one transport in a fresh child process of this script; its result is the JSON line it prints. */
function runChild(transport: Transport): Promise<FleetRun> {
  const pass = ['--count', String(count), '--interval-ms', String(intervalMs), '--settle-ms', String(settleMs), '--log-level', logLevel];
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...pass, '--transport', transport, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`fleet-scale --transport ${transport}: exit ${code ?? signal}\n${out.slice(-2000)}`));
      else resolve(JSON.parse(line) as FleetRun);
    });
  });
}

function table(runs: readonly FleetRun[]): string {
  const by = (t: Transport): FleetRun | undefined => runs.find((r) => r.transport === t);
  const plain = by('plain');
  const tls = by('tls');
  const rows: [string, (r: FleetRun) => number | undefined, (v: number) => string][] = [
    ['start() returned (batches of 100)', (r) => r.startedMs, secs],
    ['start → first phone homed on cm-a', (r) => r.start.firstMs, secs],
    ['start → median phone homed on cm-a', (r) => r.start.medianMs, secs],
    [`all ${count} homed on cm-a (from start())`, (r) => r.start.allMs, secs],
    ['broker CPU, start → all homed (the connects / handshakes)', (r) => r.brokerCpu.start, cpuS],
    ['fleet process CPU, start → all homed', (r) => r.fleetCpu.start, cpuS],
    [`broker CPU, ${secs(settleMs)} homed (steady keep-alives)`, (r) => r.brokerCpu.settle, cpuS],
    [`fleet process RSS, homed, after ${secs(settleMs)}`, (r) => r.rssHomed, mib],
    ['RSS before the fleet was built', (r) => r.rssBefore, mib],
    ['RSS per phone ((homed − before) ÷ phones)', (r) => (r.rssHomed - r.rssBefore) / count, (v) => `${(v / 1024).toFixed(1)} KiB`],
    ['V8 heap used, homed', (r) => r.heapUsed, mib],
    ['kill -9 cm-a → first phone seen homed on cm-b (polled; see note)', (r) => r.rehome.firstMs, secs],
    ['kill -9 cm-a → median phone homed on cm-b', (r) => r.rehome.medianMs, secs],
    ['kill -9 cm-a → p95 phone homed on cm-b', (r) => r.rehome.p95Ms, secs],
    [`kill -9 cm-a → all ${count} homed on cm-b`, (r) => r.rehome.allMs, secs],
    ['kill -9 cm-a → first phone\'s own `rehomed` event (to cm-b)', (r) => r.rehomedMs[0], secs],
    ['kill -9 cm-a → median phone\'s own `rehomed` event', (r) => r.rehomedMs[r.rehomedMs.length >> 1], secs],
    [`kill -9 cm-a → last phone's own \`rehomed\` event (phones with one: see note)`, (r) => r.rehomedMs.at(-1), secs],
    ['cm-b CPU, kill -9 → all homed (product: keep-alives, acks, signed lists)', (r) => r.cmBCpuRehome, cpuS],
    ['broker CPU, kill -9 → all homed on cm-b', (r) => r.brokerCpu.rehome, cpuS],
    ['fleet process CPU, kill -9 → all homed on cm-b', (r) => r.fleetCpu.rehome, cpuS],
    ['fleet event loop delay during the rehome: max', (r) => r.lagMaxMs, (v) => `${v.toFixed(0)} ms`],
    ['fleet event loop delay during the rehome: p99', (r) => r.lagP99Ms, (v) => `${v.toFixed(0)} ms`],
    ['rehomes counted after the rehome (before: see note)', (r) => r.rehomesAfter, String],
    ['fleet process RSS after the rehome', (r) => r.rssAfterRehome, mib],
    ['stop() of all phones', (r) => r.stopMs, secs],
  ];
  const cell = (r: FleetRun | undefined, get: (r: FleetRun) => number | undefined, fmt: (v: number) => string): string => {
    const v = r === undefined ? undefined : get(r);
    return v === undefined ? '—' : fmt(v);
  };
  const lines = [
    `# fleet scale (${new Date().toISOString()}, node ${process.version}), ${count} phones, keep-alive ${intervalMs} ms × missLimit 3`,
    '',
    '| figure | plain TCP | TLS | TLS ÷ plain |',
    '| --- | --- | --- | --- |',
    ...rows.map(([k, get, fmt]) => `| ${k} | ${cell(plain, get, fmt)} | ${cell(tls, get, fmt)} | ${ratio(tls && get(tls), plain && get(plain))} |`),
    '',
    `rehomed events seen: ${runs.map((r) => `${r.transport} ${r.rehomedMs.length} of ${r.count}`).join(', ')}. Machine load (1-minute average) at the kill: ${runs.map((r) => `${r.transport} ${r.loadAtKill.toFixed(2)}`).join(', ')}.`,
    `rehomes before the kill: ${runs.map((r) => `${r.transport} ${r.rehomesBefore}`).join(', ')}. TLS: client certificates required, one certificate shared by the fleet (so no use_username_as_clientid, no per-identity ACL); call managers over TLS with their own certificates; broker config otherwise identical (set_tcp_nodelay true). Each transport in its own fresh process, one after the other.`,
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const transports = parseTransports(textArg('--transport', 'both'));
  if (process.argv.includes('--json')) {
    if (transports.length !== 1) throw new Error('--json runs one transport');
    process.stdout.write(`${JSON.stringify(await runOnce(transports[0]!))}\n`);
    return;
  }
  const runs: FleetRun[] = [];
  for (const t of transports) runs.push(await runChild(t));
  process.stdout.write(table(runs));
  // --samples FILE: each transport's per-phone homing times after the kill -9 (bench/run.ts plots them).
  const samples = textArg('--samples', '');
  if (samples !== '') writeFileSync(samples, JSON.stringify(runs.map((r) => ({ transport: r.transport, count: r.count, rehomeMs: r.rehome.sortedMs }))));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fleet-scale: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
