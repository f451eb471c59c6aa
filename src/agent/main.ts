/**
 * `ipphone-agent`: argument parsing, config and board loading, and the
 * signal-driven lifecycle around one {@link Agent}. Returns the exit code.
 */
import { resolve } from 'node:path';
import { problemsOf, processIo, type MainIo } from '../lib/cli.js';
import { loadAgentConfigFile, type AgentConfig } from '../config/agent-config.js';
import { errorMessage } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { hardwareFor, loadBoardFile } from '../hw/board.js';
import { agentStore, composeAgent } from './compose.js';
import { effectiveConfig, reconcileWithFile } from './boot-config.js';
import { SdNotify } from '../lib/sd-notify.js';
import { monitorEventLoopDelay } from 'node:perf_hooks';

export const USAGE = `Usage:
  ipphone-agent --config FILE [--board FILE] [--state-dir DIR]
                                   run the phone agent with the JSON config FILE;
                                   --board and --state-dir override the config file
  ipphone-agent --check-config FILE [--board FILE]
                                   validate FILE and the board profile it names
                                   (or --board) only: "FILE: ok" and exit 0, or
                                   exit 1 with one line per problem on stderr
  ipphone-agent --help             print this text

Logs are JSON lines on stdout. SIGTERM/SIGINT: publish the offline status,
disconnect, exit 0. Exit 1 on a bad config or an unusable board, 2 on bad arguments.
`;

export interface AgentArgs {
  kind: 'help' | 'run' | 'check' | 'usage';
  config?: string;
  board?: string;
  stateDir?: string;
  error?: string;
}

export function parseAgentArgs(argv: readonly string[]): AgentArgs {
  const out: AgentArgs = { kind: 'usage' };
  let check: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    if (flag === '--help' || flag === '-h') return { kind: 'help' };
    const takes = ['--config', '--check-config', '--board', '--state-dir'];
    if (!takes.includes(flag)) return { kind: 'usage', error: `unknown argument ${JSON.stringify(a)}` };
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '') return { kind: 'usage', error: `${flag} needs a value` };
    if (flag === '--config') out.config = v;
    else if (flag === '--check-config') check = v;
    else if (flag === '--board') out.board = v;
    else out.stateDir = v;
  }
  if (check !== undefined) return { kind: 'check', config: check, ...(out.board !== undefined ? { board: out.board } : {}) };
  if (out.config === undefined) return { kind: 'usage', error: '--config FILE is required' };
  return { ...out, kind: 'run' };
}

export type { MainIo };

function load(path: string, io: MainIo): AgentConfig | undefined {
  try {
    return loadAgentConfigFile(path);
  } catch (err) {
    for (const p of problemsOf(err)) io.stderr(`${path}: ${p.replace(/\n/g, ' ')}\n`);
    return undefined;
  }
}

export async function main(argv: readonly string[], io: MainIo = processIo): Promise<number> {
  const args = parseAgentArgs(argv);
  if (args.kind === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (args.kind === 'usage') {
    io.stderr(`ipphone-agent: ${args.error}\n${USAGE}`);
    return 2;
  }
  const config = load(args.config!, io);
  if (config === undefined) return 1;
  if (args.kind === 'check') return checkBoard(args.config!, args.board ?? config.board, io);
  if (args.stateDir !== undefined) config.stateDir = args.stateDir;
  if (args.board !== undefined) config.board = args.board;

  const log = createLogger(config.log.level, { phone: config.phoneId });
  // The board as the phone runs it: a remote `board` change (saved overlay) wins over the file and --board.
  const store = agentStore(config, log);
  const saved = reconcileWithFile(config, await store.load(), log).state;
  const board = effectiveConfig(config, saved?.configOverlay ?? {}, log).config.board;
  let hardware: Awaited<ReturnType<typeof openBoard>>;
  try {
    hardware = await openBoard(board, log).catch(async (err: unknown) => {
      if (board === config.board) throw err;
      // A remotely set board that does not work must not restart-loop the phone: back to the file's.
      log.error({ board, fileBoard: config.board, err: problemsOf(err).join('; ') }, 'remotely set board unusable; using the config file board');
      return openBoard(config.board, log);
    });
  } catch (err) {
    io.stderr(`ipphone-agent: unusable board: ${problemsOf(err).join('; ').replace(/\n/g, '; ')}\n`);
    return 1;
  }
  let agent: ReturnType<typeof composeAgent>;
  try {
    agent = composeAgent({ config, log, hardware, store });
  } catch (err) {
    // E.g. a `sip.driver` this build has no adapter for.
    io.stderr(`ipphone-agent: ${errorMessage(err).replace(/\n/g, '; ')}\n`);
    await hardware.display.close().catch(() => {});
    return 1;
  }
  const sd = new SdNotify({ log });
  try {
    await agent.start();
  } catch (err) {
    io.stderr(`ipphone-agent: ${errorMessage(err).replace(/\n/g, '; ')}\n`);
    await agent.stop().catch(() => {});
    return 1;
  }
  // READY once started, not once homed: a phone whose call managers are all down must not
  // hit the start timeout and restart in a loop; STATUS says where it is homed.
  const describe = (): string => (agent.home !== null ? `homed to ${agent.home}` : 'no home: searching');
  void sd.ready(describe());
  // Left ref'd on purpose: it is what keeps the process alive while every broker is down
  // (the agent's clock timers are unref'd and no socket is open between retries).
  const statusTimer = setInterval(() => void sd.status(describe()), 1000);
  const stopWatchdog = sd.startWatchdog(() => agent.healthy());
  const stopHealthLog = healthLog(log, Number(process.env.IPPHONE_HEALTH_LOG_MS ?? 60_000));
  const signal = await new Promise<NodeJS.Signals>((done) => {
    process.once('SIGTERM', () => done('SIGTERM'));
    process.once('SIGINT', () => done('SIGINT'));
  });
  log.info({ signal }, 'stopping');
  clearInterval(statusTimer);
  stopWatchdog();
  stopHealthLog();
  await sd.stopping(`stopping on ${signal}`);
  await agent.stop();
  await hardware.display.close();
  await hardware.keypad.close();
  await hardware.hook?.close();
  for (const led of Object.values(hardware.leds ?? {})) await led.close();
  log.info({}, 'stopped');
  return 0;
}

/**
 * `--check-config`: the board profile the config names (or --board), read and
 * checked as the agent would at start (a relative path from the working
 * directory), without opening any device. Prints `FILE: ok` like the call
 * manager, or one line per problem naming the board file.
 */
function checkBoard(configPath: string, board: string | null, io: MainIo): number {
  if (board !== null) {
    try {
      loadBoardFile(resolve(board));
    } catch (err) {
      for (const p of problemsOf(err)) io.stderr(`${configPath}: board ${board}: ${p.replace(/\n/g, ' ')}\n`);
      return 1;
    }
  }
  io.stdout(`${configPath}: ok\n`);
  return 0;
}

/** Load a board profile (null: headless) and start its parts; closes the display again on failure. */
async function openBoard(board: string | null, log: ReturnType<typeof createLogger>) {
  let hardware;
  try {
    hardware = await hardwareFor(board === null ? null : loadBoardFile(resolve(board)), { log });
    // A missing serial LCD is retried in the background; missing GPIO lines are fatal here.
    await hardware.display.start();
    await hardware.keypad.start();
    await hardware.hook?.start();
    for (const led of Object.values(hardware.leds ?? {})) await led.start();
    return hardware;
  } catch (err) {
    await hardware?.display.close().catch(() => {});
    throw err;
  }
}

/**
 * One info line every `periodMs` (default a minute; env IPPHONE_HEALTH_LOG_MS)
 * with the event-loop delay and memory of the last period: what a soak test or
 * journald needs to see that the agent stays responsive and does not grow.
 */
function healthLog(log: ReturnType<typeof createLogger>, periodMs: number): () => void {
  if (!Number.isFinite(periodMs) || periodMs <= 0) return () => {};
  const h = monitorEventLoopDelay({ resolution: 10 });
  h.enable();
  const timer = setInterval(() => {
    const mem = process.memoryUsage();
    const ms = (ns: number): number => Math.round(ns / 1e4) / 100;
    log.info({ mod: 'health', eventLoopP99Ms: ms(h.percentile(99)), eventLoopMaxMs: ms(h.max), rssMiB: Math.round(mem.rss / 1048576), heapUsedMiB: Math.round(mem.heapUsed / 1048576) }, 'health');
    h.reset();
  }, periodMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    h.disable();
  };
}
