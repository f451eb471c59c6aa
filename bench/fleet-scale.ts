/**
 * Fleet scale: N phones (default 2,000) in one `WorkerFleet` process against a
 * local mosquitto and call managers run as child processes, over plain TCP and
 * over TLS (issue #9), and on 1 worker thread and on W (issue 18) side by side.
 *
 *   node --expose-gc --import tsx bench/fleet-scale.ts [--count 2000]
 *        [--interval-ms 5000] [--settle-ms 10000] [--log-level error]
 *        [--transport plain|tls|both] [--workers W] [--json] [--samples FILE]
 *
 * Each (transport, workers) run is a fresh child process of this script
 * (`--json`: one run, result as one JSON line), so RSS and JIT state of one run
 * do not leak into the next; runs alternate their order (plain: 1 then W, TLS:
 * W then 1) so a drift in the shared machine's load does not favour one side.
 * The parent prints one table: W workers (default the CPUs available) in the
 * first columns (plain, TLS, TLS ÷ plain, as bench/run.ts reads them), then
 * 1 worker and W ÷ 1. The broker config is the same for both transports but
 * the TLS lines (bench/transport.ts: client certificates required, one shared
 * fleet certificate, no `use_username_as_clientid`, no ACL). The workers run
 * the compiled dist/ (run `npm run build` first).
 *
 * One run:
 * 1. cm-a up (cm-b defined, down; rebalancing off so nothing but failure moves
 *    phones); start the fleet; time until every phone is homed on cm-a
 *    (this window holds the N connects — the TLS handshakes).
 * 2. After `settleMs`, RSS of this process (the fleet: its main thread and
 *    the workers; no observer client) minus the RSS before the fleet was built.
 * 3. Start cm-b, wait until it is up, `kill -9` cm-a; time until every phone is
 *    homed on cm-b (no reconnects: the phones' broker connections stay up,
 *    so TLS costs only record crypto here).
 * 4. Stop the fleet; time to stop.
 *
 * Per window, the broker's CPU seconds (user + system, /proc/PID/stat of the
 * mosquitto process) and this process's (the fleet's, every thread). Per
 * phone, the time its own agent emitted `rehomed` (stamped in its worker),
 * and the time this thread first saw it homed (polled every 20 ms on the
 * workers' reports, sent every 20 ms). cm-b's CPU is sampled every 20 ms from
 * the kill: the moment it had spent 95 % of its CPU of the window is when the
 * product — the call manager answering 2,000 keep-alives with acks and signed
 * lists — was done; the rest of the window is the simulator reading answers.
 */
import { spawn } from 'node:child_process';
import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { loadFleetConfigFile } from '../src/fleet/config.js';
import { defaultWorkers } from '../src/fleet/split.js';
import { WorkerFleet } from '../src/fleet/workers.js';
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
/** The W side of the comparison (the other is 1 worker). */
const workersW = arg('--workers', defaultWorkers());
const levels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;
if (!(levels as readonly string[]).includes(logLevel)) throw new Error(`--log-level takes ${levels.join(', ')}`);
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
  /** Worker threads the phones ran on. */
  workers: number;
  count: number;
  intervalMs: number;
  startedMs: number;
  start: Spread;
  rssBefore: number;
  rssHomed: number;
  /** V8 heap used by this process's main thread (the workers' heaps are not in it). */
  heapUsed: number;
  rehome: Spread;
  /**
   * The same window from each phone's own `rehomed` event (ms after the kill, sorted), stamped in
   * its worker as the agent emitted it: the poll above reads the workers' reports, a little later.
   */
  rehomedMs: number[];
  /** The machine's 1-, 5- and 15-minute load averages at the kill (other processes share the cores). */
  loadAtKill: number;
  loadAvgAtKill: number[];
  lagMaxMs: number;
  lagP99Ms: number;
  /** Event loop utilization of each worker thread, kill -9 → all homed (0 … 1). */
  workerElu: number[];
  rehomesBefore: number;
  rehomesAfter: number;
  rssAfterRehome: number;
  stopMs: number;
  /** CPU ms per window: start (connects), settle (steady keep-alives), rehome (kill -9 → all homed). */
  brokerCpu: { start: number; settle: number; rehome: number };
  /** cm-b's CPU ms from the kill -9 to all homed (the product's side of the failover: its acks and signed lists). */
  cmBCpuRehome: number;
  /** ms after the kill by which cm-b had spent 95 % of {@link cmBCpuRehome} (sampled every 20 ms): the product done answering. */
  cmBBusyUntilMs: number;
  fleetCpu: { start: number; settle: number; rehome: number };
}

/** Poll the workers' reports of every phone's home until all are homed on `cm`; per-phone first-seen times. */
async function homedSpread(f: WorkerFleet, cm: string, t0: number, what: string): Promise<Spread> {
  const at = new Float64Array(count).fill(-1);
  let left = count;
  await waitFor(
    () => {
      const now = Date.now() - t0;
      for (let n = 1; n <= count; n++) {
        if (at[n - 1]! < 0 && f.home(n) === cm) {
          at[n - 1] = now;
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
 * Every phone's `rehomed` events as its agent emitted them (the fleet's trace: the worker wraps the
 * agent's event publisher and stamps each with Date.now() there). `since(t0, cm)`: per phone, its
 * first event to `cm` at or after `t0`, ms after `t0`, sorted; phones with none are left out.
 */
function rehomedEvents(): { onEvent: (phone: string, e: Record<string, unknown>, at: number) => void; since(t0: number, cm: string): number[] } {
  const at = new Map<string, { cm: string; t: number }[]>();
  return {
    onEvent: (phone, e, t) => {
      let seen = at.get(phone);
      if (seen === undefined) at.set(phone, (seen = []));
      seen.push({ cm: String(e.to), t });
    },
    since: (t0, cm) =>
      [...at.values()]
        .map((seen) => seen.find((x) => x.cm === cm && x.t >= t0)?.t)
        .filter((t): t is number => t !== undefined)
        .map((t) => t - t0)
        .sort((a, b) => a - b),
  };
}

/** Sample a process's CPU every 20 ms; `doneBy(share)`: ms after the start by which it had spent `share` of the total so far. */
function cpuSampler(pid: number): { stop(): void; doneBy(share: number): number } {
  const t0 = Date.now();
  const c0 = cpuMs(pid);
  const samples: Array<[number, number]> = [[0, 0]];
  const timer = setInterval(() => {
    try {
      samples.push([Date.now() - t0, cpuMs(pid) - c0]);
    } catch {
      /* exited */
    }
  }, 20);
  return {
    stop: () => clearInterval(timer),
    doneBy: (share) => {
      const total = samples.at(-1)![1];
      return samples.find(([, c]) => c >= share * total)?.[0] ?? Number.NaN;
    },
  };
}

async function runOnce(transport: Transport, workers: number): Promise<FleetRun> {
  const { broker: mosq, pki } = await startBroker(transport);
  const c = new Cluster(pki ? { tls: pki } : {});
  let fleet: WorkerFleet | undefined;
  const tag = `${transport}, ${workers} worker${workers === 1 ? '' : 's'}`;
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
    const events = rehomedEvents();
    fleet = new WorkerFleet({
      config,
      count,
      workers,
      stateDir: join(c.dir, 'fleet'),
      log: pino({ level: logLevel }, pino.destination({ dest: 2, sync: true })),
      phoneLog: { level: logLevel as (typeof levels)[number], fd: 2 },
      reportMs: 20,
      trace: ['rehomed'],
      onEvent: events.onEvent,
    });
    const f = fleet;
    const cpu0 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs() };
    const t0 = Date.now();
    const homing = homedSpread(f, 'cm-a', t0, 'all homed on cm-a');
    await f.start();
    const startedMs = Date.now() - t0;
    note(`${tag}: start() returned after ${startedMs} ms: ${JSON.stringify(f.summary())}`);
    const start = await homing;
    const cpu1 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs() };
    note(`${tag}: all ${count} homed on cm-a after ${start.allMs} ms`);

    await new Promise((r) => setTimeout(r, settleMs));
    const cpu2 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs() };
    gc();
    const mem = process.memoryUsage();
    note(`${tag}: rss ${mib(mem.rss)} (before ${mib(rssBefore)}), main thread heapUsed ${mib(mem.heapUsed)}`);

    // IPPHONE_BENCH_CPU_PROF=DIR: cm-b runs under --cpu-prof (profile written into DIR when it stops);
    // run this script itself with --cpu-prof for the fleet's side (the workers inherit --cpu-prof: one profile per thread).
    const profDir = process.env.IPPHONE_BENCH_CPU_PROF;
    await c.startCm('cm-b', cmExtra, profDir ? { command: 'sh', args: ['-c', `exec "$0" --cpu-prof --cpu-prof-dir=${profDir} "$@"`] } : undefined);
    await new Promise((r) => setTimeout(r, 2000));
    const before = f.summary();
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const cmBPid = c.cms.get('cm-b')!.pid;
    const elu0 = f.utilization();
    const cpu3 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs(), cmB: cpuMs(cmBPid) };
    const loadAvgAtKill = loadavg();
    const tKill = Date.now();
    const cmBSampler = cpuSampler(cmBPid);
    // The monotonic clock of --cpu-prof profiles (µs), to cut this window out of the fleet's and cm-b's profiles.
    note(`${tag}: kill at hrtime ${process.hrtime.bigint() / 1000n} µs, load average ${loadAvgAtKill.map((l) => l.toFixed(2)).join(' ')}`);
    const progress = setInterval(() => note(`${tag}: +${Date.now() - tKill} ms: ${JSON.stringify(f.summary().byHome)}, event loop delay max ${(lag.max / 1e6).toFixed(0)} ms`), 1000);
    c.cms.get('cm-a')!.signal('SIGKILL');
    const rehome = await homedSpread(f, 'cm-b', tKill, 'all homed on cm-b');
    const cpu4 = { broker: brokerCpuMs(mosq), fleet: ownCpuMs(), cmB: cpuMs(cmBPid) };
    const elu1 = f.utilization();
    cmBSampler.stop();
    clearInterval(progress);
    lag.disable();
    // Trace messages of the last phones may still be on their way from the workers.
    await waitFor(() => events.since(tKill, 'cm-b').length === count, { timeoutMs: 2000, what: 'trace' }).catch(() => {});
    const rehomedMs = events.since(tKill, 'cm-b');
    const after = f.summary();
    const cmBBusyUntilMs = cmBSampler.doneBy(0.95);
    note(
      `${tag}: all ${count} homed on cm-b ${rehome.allMs} ms after kill -9 (hrtime ${process.hrtime.bigint() / 1000n} µs); rehomed events: ${rehomedMs.length}, first ${rehomedMs[0]} ms, median ${rehomedMs[rehomedMs.length >> 1]} ms, last ${rehomedMs.at(-1)} ms; cm-b 95 % of its CPU by ${cmBBusyUntilMs} ms`,
    );
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
      workers: f.workerCount,
      count,
      intervalMs,
      startedMs,
      start,
      rssBefore,
      rssHomed: mem.rss,
      heapUsed: mem.heapUsed,
      rehome,
      rehomedMs,
      loadAtKill: loadAvgAtKill[0]!,
      loadAvgAtKill,
      lagMaxMs: lag.max / 1e6,
      lagP99Ms: lag.percentile(99) / 1e6,
      workerElu: elu1.map((e, i) => performance.eventLoopUtilization(e, elu0[i]).utilization),
      rehomesBefore: before.rehomes,
      rehomesAfter: after.rehomes,
      rssAfterRehome,
      stopMs,
      brokerCpu: { start: cpu1.broker - cpu0.broker, settle: cpu2.broker - cpu1.broker, rehome: cpu4.broker - cpu3.broker },
      fleetCpu: { start: cpu1.fleet - cpu0.fleet, settle: cpu2.fleet - cpu1.fleet, rehome: cpu4.fleet - cpu3.fleet },
      cmBCpuRehome: cpu4.cmB - cpu3.cmB,
      cmBBusyUntilMs,
    };
  } finally {
    await fleet?.stop();
    await c.close();
    await mosq.stop();
    pki?.remove();
  }
}

/** Run one (transport, workers) in a fresh child process of this script; its result is the JSON line it prints. */
function runChild(transport: Transport, workers: number): Promise<FleetRun> {
  const pass = ['--count', String(count), '--interval-ms', String(intervalMs), '--settle-ms', String(settleMs), '--log-level', logLevel, '--workers', String(workers)];
  const child = spawn(process.execPath, [...process.execArgv, fileURLToPath(import.meta.url), ...pass, '--transport', transport, '--json'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (out += s));
  return new Promise((resolve, reject) => {
    child.once('error', reject);
    child.once('exit', (code, signal) => {
      const line = out.split('\n').find((l) => l.startsWith('{'));
      if (code !== 0 || line === undefined) reject(new Error(`fleet-scale --transport ${transport} --workers ${workers}: exit ${code ?? signal}\n${out.slice(-2000)}`));
      else resolve(JSON.parse(line) as FleetRun);
    });
  });
}

/** `a ÷ b` as `1.23×`, or — when either is missing. */
const over = (a: number | undefined, b: number | undefined): string => (a === undefined || b === undefined || !Number.isFinite(a) || !Number.isFinite(b) || b === 0 ? '—' : `${(a / b).toFixed(2)}×`);

function table(runs: readonly FleetRun[], w: number): string {
  const by = (t: Transport, workers: number): FleetRun | undefined => runs.find((r) => r.transport === t && r.workers === workers);
  const plain = by('plain', w);
  const tls = by('tls', w);
  const plain1 = w === 1 ? undefined : by('plain', 1);
  const tls1 = w === 1 ? undefined : by('tls', 1);
  const pct = (v: number): string => `${(v * 100).toFixed(0)} %`;
  const rows: [string, (r: FleetRun) => number | undefined, (v: number) => string][] = [
    ['start() returned (batches of 100 per worker)', (r) => r.startedMs, secs],
    ['start → first phone homed on cm-a', (r) => r.start.firstMs, secs],
    ['start → median phone homed on cm-a', (r) => r.start.medianMs, secs],
    [`all ${count} homed on cm-a (from start())`, (r) => r.start.allMs, secs],
    ['broker CPU, start → all homed (the connects / handshakes)', (r) => r.brokerCpu.start, cpuS],
    ['fleet process CPU (all threads), start → all homed', (r) => r.fleetCpu.start, cpuS],
    [`broker CPU, ${secs(settleMs)} homed (steady keep-alives)`, (r) => r.brokerCpu.settle, cpuS],
    [`fleet process RSS, homed, after ${secs(settleMs)}`, (r) => r.rssHomed, mib],
    ['RSS before the fleet was built', (r) => r.rssBefore, mib],
    ['RSS per phone ((homed − before) ÷ phones; with the workers\' isolates)', (r) => (r.rssHomed - r.rssBefore) / count, (v) => `${(v / 1024).toFixed(1)} KiB`],
    ['V8 heap used, homed (main thread only)', (r) => r.heapUsed, mib],
    ['kill -9 cm-a → first phone seen homed on cm-b (polled; see note)', (r) => r.rehome.firstMs, secs],
    ['kill -9 cm-a → median phone homed on cm-b', (r) => r.rehome.medianMs, secs],
    ['kill -9 cm-a → p95 phone homed on cm-b', (r) => r.rehome.p95Ms, secs],
    [`kill -9 cm-a → all ${count} homed on cm-b`, (r) => r.rehome.allMs, secs],
    ['kill -9 cm-a → first phone\'s own `rehomed` event (to cm-b)', (r) => r.rehomedMs[0], secs],
    ['kill -9 cm-a → median phone\'s own `rehomed` event', (r) => r.rehomedMs[r.rehomedMs.length >> 1], secs],
    [`kill -9 cm-a → last phone's own \`rehomed\` event (phones with one: see note)`, (r) => r.rehomedMs.at(-1), secs],
    ['cm-b CPU, kill -9 → all homed (the product: keep-alives, acks, signed lists)', (r) => r.cmBCpuRehome, cpuS],
    ['kill -9 → cm-b had spent 95 % of that CPU (it answers as the phones ask and resend: trails the fleet)', (r) => r.cmBBusyUntilMs, secs],
    ['broker CPU, kill -9 → all homed on cm-b', (r) => r.brokerCpu.rehome, cpuS],
    ['fleet process CPU (all threads), kill -9 → all homed on cm-b', (r) => r.fleetCpu.rehome, cpuS],
    ['busiest worker thread\'s event loop utilization, kill -9 → all homed', (r) => (r.workerElu.length > 0 ? Math.max(...r.workerElu) : undefined), pct],
    ['main thread event loop delay during the rehome: max', (r) => r.lagMaxMs, (v) => `${v.toFixed(0)} ms`],
    ['main thread event loop delay during the rehome: p99', (r) => r.lagP99Ms, (v) => `${v.toFixed(0)} ms`],
    ['rehomes counted after the rehome (before: see note)', (r) => r.rehomesAfter, String],
    ['fleet process RSS after the rehome', (r) => r.rssAfterRehome, mib],
    ['stop() of all phones', (r) => r.stopMs, secs],
    ['machine load average (1 min) at the kill', (r) => r.loadAtKill, (v) => v.toFixed(2)],
  ];
  const cell = (r: FleetRun | undefined, get: (r: FleetRun) => number | undefined, fmt: (v: number) => string): string => {
    const v = r === undefined ? undefined : get(r);
    return v === undefined ? '—' : fmt(v);
  };
  const val = (r: FleetRun | undefined, get: (r: FleetRun) => number | undefined): number | undefined => (r === undefined ? undefined : get(r));
  const ws = `${w} worker${w === 1 ? '' : 's'}`;
  const lines = [
    `# fleet scale (${new Date().toISOString()}, node ${process.version}), ${count} phones, keep-alive ${intervalMs} ms × missLimit 3, phones on ${ws} (and on 1, side by side)`,
    '',
    `| figure | plain TCP, ${ws} | TLS, ${ws} | TLS ÷ plain | plain TCP, 1 worker | TLS, 1 worker | plain: ${w} ÷ 1 | TLS: ${w} ÷ 1 |`,
    '| --- | --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      ([k, get, fmt]) =>
        `| ${k} | ${cell(plain, get, fmt)} | ${cell(tls, get, fmt)} | ${ratio(tls && get(tls), plain && get(plain))} | ${cell(plain1, get, fmt)} | ${cell(tls1, get, fmt)} | ${over(val(plain, get), val(plain1, get))} | ${over(val(tls, get), val(tls1, get))} |`,
    ),
    '',
    `Runs in this order, each a fresh process: ${runs.map((r) => `${r.transport} ${r.workers}w`).join(', ')}. rehomed events seen: ${runs.map((r) => `${r.transport} ${r.workers}w ${r.rehomedMs.length} of ${r.count}`).join(', ')}. Load averages (1/5/15 min) at the kill: ${runs.map((r) => `${r.transport} ${r.workers}w ${(r.loadAvgAtKill ?? [r.loadAtKill]).map((l) => l.toFixed(2)).join('/')}`).join(', ')}.`,
    `rehomes before the kill: ${runs.map((r) => `${r.transport} ${r.workers}w ${r.rehomesBefore}`).join(', ')}. Worker event loop utilization in the rehome window: ${runs.map((r) => `${r.transport} ${r.workers}w ${r.workerElu.map(pct).join(' / ')}`).join(', ')}. TLS: client certificates required, one certificate shared by the fleet (so no use_username_as_clientid, no per-identity ACL); call managers over TLS with their own certificates; broker config otherwise identical (set_tcp_nodelay true).`,
    `Simulator and product: cm-b (the product) answers every phone's keep-alive after the kill with an ack and a signed list; its CPU in the window is the product's share of the work (a real deployment gives it its own cores). It can only answer what the phones send: when the fleet's threads are late reading the will, the keep-alives reach cm-b late, and phones that wait for an answer they have not yet read resend, so the moment cm-b had spent 95 % of its CPU (sampled every 20 ms) trails the fleet. The rest — the fleet's threads reading the answers, checking signatures, saving flash, every phone's socket writes — is the simulator: work a real phone does once, on its own CPU. fleet process CPU + cm-b CPU + broker CPU over the cores the run could use is the floor of the window.`,
    '',
  ];
  return lines.join('\n');
}

async function main(): Promise<void> {
  const transports = parseTransports(textArg('--transport', 'both'));
  if (process.argv.includes('--json')) {
    if (transports.length !== 1) throw new Error('--json runs one transport');
    process.stdout.write(`${JSON.stringify(await runOnce(transports[0]!, workersW))}\n`);
    return;
  }
  const runs: FleetRun[] = [];
  // Alternating order: 1 then W for the first transport, W then 1 for the next.
  for (const [i, t] of transports.entries()) {
    const order = workersW === 1 ? [1] : i % 2 === 0 ? [1, workersW] : [workersW, 1];
    for (const w of order) runs.push(await runChild(t, w));
  }
  process.stdout.write(table(runs, workersW));
  // --samples FILE: each transport's per-phone homing times after the kill -9 on W workers (bench/run.ts plots them).
  const samples = textArg('--samples', '');
  if (samples !== '') writeFileSync(samples, JSON.stringify(runs.filter((r) => r.workers === workersW).map((r) => ({ transport: r.transport, count: r.count, workers: r.workers, rehomeMs: r.rehome.sortedMs }))));
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fleet-scale: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
