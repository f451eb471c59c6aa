/**
 * Fleet scale: N in-process phones (default 2,000) against a local mosquitto
 * and call managers run as child processes.
 *
 *   node --expose-gc --import tsx bench/fleet-scale.ts [--count 2000]
 *        [--interval-ms 5000] [--settle-ms 10000] [--log-level error]
 *
 * 1. cm-a up (cm-b defined, down; rebalancing off so nothing but failure moves
 *    phones); start the fleet; time until every phone is homed on cm-a.
 * 2. After `settleMs`, RSS of this process (which is the fleet: no observer
 *    client, nothing else per phone) minus the RSS before the fleet was built.
 * 3. Start cm-b, wait until it is up, `kill -9` cm-a; time until every phone is
 *    homed on cm-b.
 * 4. Stop the fleet; time to stop.
 *
 * Times are from this process's wall clock, polled every 20 ms on
 * `Fleet.summary()` (the agents' own machine state): an upper bound, since
 * under a flood of MQTT callbacks the poll's timer can run late. For the
 * per-phone spread, run with `--log-level info` and read the phones'
 * `rehomed` lines on stderr. Prints a table on stdout.
 */
import { join } from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { pino } from 'pino';
import { Fleet } from '../src/fleet/fleet.js';
import { loadFleetConfigFile } from '../src/fleet/config.js';
import { Cluster } from '../test/helpers/cluster.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { waitFor } from '../test/helpers/net.js';

function arg(name: string, fallback: number): number {
  const i = process.argv.indexOf(name);
  const v = i >= 0 ? Number(process.argv[i + 1]) : fallback;
  if (!Number.isSafeInteger(v) || v <= 0) throw new Error(`${name} needs a positive whole number`);
  return v;
}

const count = arg('--count', 2000);
const intervalMs = arg('--interval-ms', 5000);
const settleMs = arg('--settle-ms', 10_000);
/** Phone log level (to stderr); default error. */
const logLevel = process.argv.includes('--log-level') ? (process.argv[process.argv.indexOf('--log-level') + 1] ?? 'error') : 'error';
const MiB = 1024 * 1024;
const mib = (b: number): string => `${(b / MiB).toFixed(1)} MiB`;
const secs = (ms: number): string => `${(ms / 1000).toFixed(2)} s`;
const note = (s: string): void => void process.stderr.write(`[fleet-scale] ${s}\n`);

/** Force a GC when run with --expose-gc, so RSS reads are less noisy. */
const gc = (): void => (globalThis as { gc?: () => void }).gc?.();

async function main(): Promise<void> {
  const mosq = await startMosquitto();
  const c = new Cluster();
  let fleet: Fleet | undefined;
  try {
    await c.defineGroup([
      { id: 'cm-a', broker: mosq.url, capacity: count * 2 },
      { id: 'cm-b', broker: mosq.url, capacity: count * 2 },
    ]);
    const cmExtra = { rebalance: { enabled: false }, keepalive: { phoneIntervalMs: intervalMs } };
    await c.startCm('cm-a', cmExtra);
    const config = loadFleetConfigFile(
      c.agentConfig('ignored', { keepalive: { intervalMs, missLimit: 3 }, log: { level: 'warn' }, mqtt: { connectTimeoutMs: 10_000, backoff: { baseMs: 500, maxMs: 5000 } } }),
    );
    gc();
    const rssBefore = process.memoryUsage().rss;
    fleet = new Fleet({ config, count, stateDir: join(c.dir, 'fleet'), log: pino({ level: logLevel }, pino.destination({ dest: 2, sync: true })) });
    const f = fleet;
    const t0 = Date.now();
    await f.start();
    const startedMs = Date.now() - t0;
    note(`start() returned after ${startedMs} ms: ${JSON.stringify(f.summary())}`);
    await waitFor(() => f.summary().byHome['cm-a'] === count, { timeoutMs: 300_000, intervalMs: 20, what: `all homed on cm-a: ${JSON.stringify(f.summary())}` });
    const homedMs = Date.now() - t0;
    note(`all ${count} homed on cm-a after ${homedMs} ms`);

    await new Promise((r) => setTimeout(r, settleMs));
    gc();
    const mem = process.memoryUsage();
    const perPhone = (mem.rss - rssBefore) / count;
    note(`rss ${mib(mem.rss)} (before ${mib(rssBefore)}), heapUsed ${mib(mem.heapUsed)}`);

    await c.startCm('cm-b', cmExtra);
    await new Promise((r) => setTimeout(r, 2000));
    const before = f.summary();
    const lag = monitorEventLoopDelay({ resolution: 10 });
    lag.enable();
    const tKill = Date.now();
    const progress = setInterval(() => note(`+${Date.now() - tKill} ms: ${JSON.stringify(f.summary().byHome)}, event loop delay max ${(lag.max / 1e6).toFixed(0)} ms`), 1000);
    c.cms.get('cm-a')!.signal('SIGKILL');
    let firstMovedMs: number | undefined;
    await waitFor(
      () => {
        const s = f.summary();
        if (firstMovedMs === undefined && (s.byHome['cm-b'] ?? 0) > 0) firstMovedMs = Date.now() - tKill;
        return s.byHome['cm-b'] === count;
      },
      { timeoutMs: 300_000, intervalMs: 20, what: `all homed on cm-b: ${JSON.stringify(f.summary())}` },
    );
    const rehomeMs = Date.now() - tKill;
    clearInterval(progress);
    lag.disable();
    const after = f.summary();
    note(`all ${count} homed on cm-b ${rehomeMs} ms after kill -9`);
    const rssAfterRehome = process.memoryUsage().rss;

    const tStop = Date.now();
    await f.stop();
    const stopMs = Date.now() - tStop;

    const rows: [string, string][] = [
      ['phones', String(count)],
      ['keep-alive interval', `${intervalMs} ms × missLimit 3`],
      ['start() returned (batches of 100)', secs(startedMs)],
      [`all ${count} homed on cm-a (from start())`, secs(homedMs)],
      [`fleet process RSS, homed, after ${secs(settleMs)}`, mib(mem.rss)],
      ['RSS before the fleet was built', mib(rssBefore)],
      ['RSS per phone ((homed − before) ÷ phones)', `${(perPhone / 1024).toFixed(1)} KiB`],
      ['V8 heap used, homed', mib(mem.heapUsed)],
      ['kill -9 cm-a → first phone seen homed on cm-b (polled; see note)', firstMovedMs === undefined ? '—' : secs(firstMovedMs)],
      [`kill -9 cm-a → all ${count} homed on cm-b`, secs(rehomeMs)],
      ['fleet event loop delay during the rehome: max / p99', `${(lag.max / 1e6).toFixed(0)} ms / ${(lag.percentile(99) / 1e6).toFixed(0)} ms`],
      ['rehomes counted (before → after)', `${before.rehomes} → ${after.rehomes}`],
      ['fleet process RSS after the rehome', mib(rssAfterRehome)],
      ['stop() of all phones', secs(stopMs)],
    ];
    const out = [`# fleet scale (${new Date().toISOString()}, node ${process.version})`, '', '| figure | value |', '| --- | --- |', ...rows.map(([k, v]) => `| ${k} | ${v} |`), ''];
    process.stdout.write(out.join('\n'));
  } finally {
    await fleet?.stop();
    await c.close();
    await mosq.stop();
  }
}

main().then(
  () => process.exit(0),
  (err: unknown) => {
    process.stderr.write(`fleet-scale: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  },
);
