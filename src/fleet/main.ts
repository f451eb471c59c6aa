/**
 * `ipphone-fleet`: argument parsing, config loading, and the signal-driven
 * lifecycle around one {@link Fleet}, with a summary line on stdout every few
 * seconds. Returns the exit code.
 */
import { problemsOf, processIo, type MainIo } from '../lib/cli.js';
import { createLogger } from '../lib/log.js';
import { loadFleetConfigFile } from './config.js';
import type { FleetSummary } from './fleet.js';
import { MAX_WORKERS, defaultWorkers, workersProblems } from './split.js';
import { WorkerFleet } from './workers.js';
import { DEFAULT_PREFIX, fleetProblems } from './phones.js';
import type { AgentConfig } from '../config/agent-config.js';

export const USAGE = `Usage:
  ipphone-fleet --config FILE --count N [--prefix P] [--state-dir DIR] [--busy N]
                [--summary-ms MS] [--cert-dir DIR] [--workers W]
                                   run N phones in this process, each the real agent
                                   with its own MQTT connection and state directory,
                                   on headless hardware. FILE is an agent config; its
                                   phoneId is ignored (may be absent) and its board is
                                   not used. Phone ids are P1 … PN (default P: ${DEFAULT_PREFIX});
                                   phone Pn keeps its state in DIR/Pn (default DIR:
                                   the config's stateDir).
                                   --busy N: phones P1 … PN start off-hook (busy) and
                                   stay so: rebalance and fallback moves wait for them,
                                   failover does not.
                                   --summary-ms MS: period of the summary line
                                   (default 5000)
                                   --cert-dir DIR: phone Pn connects with its own
                                   client certificate DIR/Pn.crt and key DIR/Pn.key
                                   (its CN the phone id, as the printed ACL expects);
                                   the config's mqtt.ca is kept
                                   --workers W: run the phones on W worker threads,
                                   phone Pn on thread (n-1) mod W, each thread with
                                   its phones' connections, flash and timers (default:
                                   the CPUs available, ${defaultWorkers()} here; 1 to ${MAX_WORKERS},
                                   never more than N); 1 puts every phone on one thread
  ipphone-fleet --help             print this text

Logs are JSON lines on stdout at the config's log level, one child logger per
phone ("phone" field). Whatever the level, a summary line is printed when all
phones have started, every --summary-ms and after stopping:
  {"level":30,"time":…,"msg":"fleet","count":N,"homed":…,"byHome":{"cm-a":…},
   "noService":…,"rehomes":…,"busy":…}
SIGTERM/SIGINT: every phone publishes its offline status and disconnects; exit 0.
Exit 1 on a bad config, a phone that cannot start or a worker thread that
dies, 2 on bad arguments.
`;

export interface FleetArgs {
  kind: 'help' | 'run' | 'usage';
  config?: string;
  count?: number;
  prefix?: string;
  stateDir?: string;
  busy?: number;
  summaryMs?: number;
  certDir?: string;
  workers?: number;
  error?: string;
}

const TAKES = ['--config', '--count', '--prefix', '--state-dir', '--busy', '--summary-ms', '--cert-dir', '--workers'];

function integer(text: string): number {
  return /^\d+$/.test(text) ? Number(text) : Number.NaN;
}

/** Parse the command line (without `node` and the script). Never throws. */
export function parseFleetArgs(argv: readonly string[]): FleetArgs {
  const out: FleetArgs = { kind: 'usage' };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flag === '--help' || flag === '-h') return { kind: 'help' };
    if (!TAKES.includes(flag)) return { kind: 'usage', error: `unknown argument ${JSON.stringify(a)}` };
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '') return { kind: 'usage', error: `${flag} needs a value` };
    if (flag === '--config') out.config = v;
    else if (flag === '--prefix') out.prefix = v;
    else if (flag === '--state-dir') out.stateDir = v;
    else if (flag === '--cert-dir') out.certDir = v;
    else {
      const n = integer(v);
      if (Number.isNaN(n)) return { kind: 'usage', error: `${flag} needs a whole number (got ${JSON.stringify(v)})` };
      if (flag === '--count') out.count = n;
      else if (flag === '--busy') out.busy = n;
      else if (flag === '--workers') out.workers = n;
      else out.summaryMs = n;
    }
  }
  if (out.config === undefined) return { kind: 'usage', error: '--config FILE is required' };
  if (out.count === undefined) return { kind: 'usage', error: '--count N is required' };
  const problems = fleetProblems(out.count, out.prefix ?? DEFAULT_PREFIX);
  if (problems.length > 0) return { kind: 'usage', error: problems.join('; ') };
  if (out.busy !== undefined && out.busy > out.count) return { kind: 'usage', error: `--busy ${out.busy} is more than --count ${out.count}` };
  if (out.workers !== undefined && workersProblems(out.workers).length > 0) return { kind: 'usage', error: `--${workersProblems(out.workers)[0]!}` };
  if (out.summaryMs !== undefined && (out.summaryMs < 100 || out.summaryMs > 3_600_000)) return { kind: 'usage', error: `--summary-ms must be from 100 to 3600000 (got ${out.summaryMs})` };
  return { ...out, kind: 'run' };
}

export type { MainIo };

/** The summary as one pino-shaped JSON line (level 30 = info). */
export function summaryLine(s: FleetSummary, now = Date.now()): string {
  return `${JSON.stringify({ level: 30, time: now, msg: 'fleet', ...s })}\n`;
}

export async function main(argv: readonly string[], io: MainIo = processIo): Promise<number> {
  const args = parseFleetArgs(argv);
  if (args.kind === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (args.kind === 'usage') {
    io.stderr(`ipphone-fleet: ${args.error}\n${USAGE}`);
    return 2;
  }
  let config: AgentConfig;
  try {
    config = loadFleetConfigFile(args.config!);
  } catch (err) {
    for (const p of problemsOf(err)) io.stderr(`${args.config}: ${p.replace(/\n/g, ' ')}\n`);
    return 1;
  }
  const log = createLogger(config.log.level, { fleet: args.prefix ?? DEFAULT_PREFIX });
  const fleet = new WorkerFleet({ config, count: args.count!, log, busy: args.busy ?? 0, ...(args.workers !== undefined ? { workers: args.workers } : {}), phoneLog: { level: config.log.level, bindings: { fleet: args.prefix ?? DEFAULT_PREFIX } }, ...(args.prefix !== undefined ? { prefix: args.prefix } : {}), ...(args.stateDir !== undefined ? { stateDir: args.stateDir } : {}), ...(args.certDir !== undefined ? { certDir: args.certDir } : {}) });

  // Listen before starting: starting thousands of phones takes a while and a
  // SIGTERM meanwhile must still end in a clean stop.
  let onSignal!: (sig: NodeJS.Signals) => void;
  const signalled = new Promise<NodeJS.Signals>((done) => (onSignal = done));
  process.once('SIGTERM', onSignal);
  process.once('SIGINT', onSignal);
  // Also what keeps the process alive while every broker is down (the agents' timers are unref'd).
  const ticker = setInterval(() => io.stdout(summaryLine(fleet.summary())), args.summaryMs ?? 5000);
  let code = 0;
  try {
    const starting = fleet.start().then(() => true);
    starting.catch(() => {}); // handled by the race when it wins; a signal may win first
    const started = await Promise.race([starting, signalled.then(() => false)]);
    if (started) io.stdout(summaryLine(fleet.summary()));
    // A worker thread that dies takes its phones with it: stop the rest and exit 1, as the one-thread fleet's crash did.
    const signal = await Promise.race([signalled, fleet.failure.then((err) => Promise.reject(err))]);
    log.info({ signal }, 'stopping');
  } catch (err) {
    io.stderr(`ipphone-fleet: ${problemsOf(err).join('; ')}\n`);
    code = 1;
  } finally {
    clearInterval(ticker);
    process.off('SIGTERM', onSignal);
    process.off('SIGINT', onSignal);
    await fleet.stop();
  }
  io.stdout(summaryLine(fleet.summary()));
  log.info({}, 'stopped');
  return code;
}
