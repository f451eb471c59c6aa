/**
 * `npm start`: the demo. An embedded MQTT broker (aedes), a call-manager group
 * of three as child processes, four phones in this process (one drawn as a
 * 20×4 LCD), and a narrated failover and fallback. Needs nothing beyond
 * `npm ci`. Everything it starts is stopped on exit, on Ctrl-C and on errors;
 * its temp dir is removed.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { errorMessage } from '../lib/errors.js';
import { TerminalDisplay } from '../hw/terminal-display.js';
import { startBroker, type EmbeddedBroker } from './broker.js';
import { CmProcess } from './cm-process.js';
import { RehomeWatcher } from './events.js';
import { Narrator } from './narrator.js';
import { buildPhones, stopPhones, type DemoPhone } from './phones.js';
import { runScript, summaryTable } from './script.js';
import { withTimeout } from './wait.js';
import { createWorkspace, type Workspace } from './workspace.js';

export const USAGE = `Usage: npm start [-- --keep]     (or: tsx src/demo/main.ts [--keep])

Starts an embedded MQTT broker, call managers cm-a, cm-b, cm-c (child
processes) and four phones, then kills cm-a with kill -9, shows every phone
failing over to cm-b, restarts cm-a and shows the phones falling back to it
after the hold-down, prints a summary and exits 0.

  --keep    stay running after the story until Ctrl-C (the operator console,
            printed at the start with its token file, stays open)
  --help    print this text

Ctrl-C at any time stops everything and removes the demo's temp dir.

Environment, for digging into a failed run:
  IPPHONE_DEMO_KEEP_TMP=1     keep the temp dir (configs, call-manager logs, phones.log)
  IPPHONE_DEMO_LOG_LEVEL=L    phones' log level in phones.log (default warn)
`;

const CM_IDS = ['cm-a', 'cm-b', 'cm-c'] as const;
const PHONES = 4;
/** Fallback hold-down, ms: short so the story fits in well under a minute. */
const HOLD_MS = 5000;

/** What is running, so that any exit path can stop it. */
interface Running {
  broker?: EmbeddedBroker;
  workspace?: Workspace;
  cms: CmProcess[];
  phones: DemoPhone[];
  watcher?: RehomeWatcher;
  lcd?: TerminalDisplay;
}

const running: Running = { cms: [], phones: [] };
/** Fired on Ctrl-C or a fatal error: the story stops at its next step. */
const aborter = new AbortController();
let cleaning: Promise<void> | undefined;

/** Stop everything, in dependency order (phones and CMs before their broker). Never throws; idempotent. */
function cleanup(): Promise<void> {
  aborter.abort();
  cleaning ??= (async () => {
    const r = running;
    await withTimeout(stopPhones(r.phones), 5000, 'stopping phones').catch(() => undefined);
    await r.watcher?.close();
    await Promise.all(r.cms.map((cm) => cm.stop()));
    await withTimeout(r.broker?.close() ?? Promise.resolve(), 3000, 'closing the broker').catch(() => undefined);
    r.workspace?.remove();
  })();
  return cleaning;
}

/** Last lines of the demo's logs, to explain a failed step. */
function logTails(ws: Workspace | undefined, lines = 8): string {
  if (ws === undefined) return '';
  const parts: string[] = [];
  for (const name of [...CM_IDS.map((id) => `${id}.log`), 'phones.log']) {
    try {
      const text = readFileSync(join(ws.dir, name), 'utf8').trimEnd();
      if (text) parts.push(`--- ${name} (last ${lines} lines)\n${text.split('\n').slice(-lines).join('\n')}`);
    } catch {
      // A log that was never written has nothing to say.
    }
  }
  return parts.join('\n');
}

async function run(keep: boolean, say: Narrator): Promise<number> {
  const broker = await startBroker();
  running.broker = broker;
  say.say(`embedded MQTT broker (aedes, MQTT 3.1.1) on ${broker.url}`);
  const ws = await createWorkspace({ brokerUrl: broker.url, cmIds: CM_IDS, keep: process.env.IPPHONE_DEMO_KEEP_TMP === '1' });
  running.workspace = ws;
  say.say(`temp dir ${ws.dir} (Ed25519 signing key, console token, configs, logs, phone state)`);
  say.say(`operator console: ${ws.cms.map((c) => `http://127.0.0.1:${c.httpPort}/ (${c.id})`).join(', ')}; log in with the token in ${ws.consoleTokenFile}, or curl -H "Authorization: Bearer $(cat ${ws.consoleTokenFile})"`);
  running.cms = ws.cms.map((spec) => new CmProcess(spec));
  running.watcher = await RehomeWatcher.connect(broker.url);
  running.phones = buildPhones({ workspace: ws, count: PHONES, lcd: running.lcd!, holdMs: HOLD_MS, logLevel: process.env.IPPHONE_DEMO_LOG_LEVEL ?? 'warn' });

  const rows = await runScript({ say, cms: running.cms, phones: running.phones, watcher: running.watcher, lcd: running.lcd!, holdMs: HOLD_MS, signal: aborter.signal });
  say.plain('');
  say.plain(summaryTable(rows, CM_IDS[0]));
  say.plain('');
  if (keep) {
    running.watcher.onRehome = (r) => say.say(`${r.phone} rehomed ${r.from ?? '-'} → ${r.to} (${r.reason})`);
    const pids = running.cms.map((cm) => `${cm.id} pid ${cm.pid}`).join(', ');
    say.say(`--keep: running until Ctrl-C (${pids}; try kill -9 on one from another terminal)`);
    await new Promise<void>(() => undefined); // the signal handler ends the process
  }
  return 0;
}

async function finish(code: number, say: Narrator): Promise<never> {
  await cleanup();
  const pids = running.cms.flatMap((cm) => cm.pids);
  say.say(`stopped: call-manager processes ended (pids ${pids.join(', ') || 'none'}), broker closed, ${running.workspace?.kept ? `temp dir kept: ${running.workspace.dir}` : 'temp dir removed'}`);
  await running.lcd?.close();
  process.exit(code);
}

export async function main(argv: readonly string[]): Promise<void> {
  if (argv.includes('--help') || argv.includes('-h')) {
    process.stdout.write(USAGE);
    return;
  }
  const unknown = argv.filter((a) => a !== '--keep');
  if (unknown.length > 0) {
    process.stderr.write(`demo: unknown argument ${JSON.stringify(unknown[0])}\n${USAGE}`);
    process.exit(2);
  }
  const keep = argv.includes('--keep');
  // A reader that goes away (`npm start | head`) must not crash the cleanup.
  process.stdout.on('error', () => undefined);
  const tty = process.stdout.isTTY === true;
  const lcd = new TerminalDisplay({ cols: 20, rows: 4, out: process.stdout, isTTY: tty, title: 'phone-1' });
  running.lcd = lcd;
  const say = new Narrator({ out: process.stdout, t0: Date.now(), printAbove: (t) => lcd.printAbove(t) });

  let interrupted = 0;
  const onSignal = (signal: NodeJS.Signals): void => {
    interrupted++;
    if (interrupted > 1) {
      // Second Ctrl-C: no more waiting.
      for (const cm of running.cms) cm.killNow();
      running.workspace?.remove();
      process.exit(130);
    }
    say.say(`${signal}: stopping everything (Ctrl-C again to force)`);
    void finish(keep ? 0 : 130, say);
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const onFatal = (err: unknown): void => {
    if (interrupted > 0) return; // shutting down: late errors from stopped parts are expected
    interrupted++;
    process.stderr.write(`demo failed: ${errorMessage(err)}\n`);
    const tails = logTails(running.workspace);
    if (tails) process.stderr.write(`${tails}\n`);
    void finish(1, say);
  };
  process.on('uncaughtException', onFatal);
  process.on('unhandledRejection', onFatal);
  // Last resort if something calls process.exit early: nothing async can run here.
  process.on('exit', () => {
    for (const cm of running.cms) cm.killNow();
    running.workspace?.remove();
  });

  say.plain(`ipphone demo: ${CM_IDS.length} call managers (child processes), ${PHONES} phones (in this process), embedded MQTT broker`);
  let code: number;
  try {
    code = await run(keep, say);
  } catch (err) {
    onFatal(err);
    return;
  }
  if (interrupted === 0) await finish(code, say);
}

await main(process.argv.slice(2));
