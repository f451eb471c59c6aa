import type { CmConfig } from '../config/cm-config.js';
import { problemsOf, processIo, type MainIo } from '../lib/cli.js';
import { loadCmConfigFile } from '../config/cm-config.js';
import { errorMessage, isIpphoneError } from '../lib/errors.js';
import { createLogger } from '../lib/log.js';
import { CallManager } from './call-manager.js';
import { SdNotify } from '../lib/sd-notify.js';

/**
 * `ipphone-cm`: argument parsing, config loading and the signal-driven
 * lifecycle around {@link CallManager}. Returns the process exit code.
 */

export const USAGE = `Usage:
  ipphone-cm --config FILE         run a call manager (keep-alive responder, services
                                   web server, load monitor) with the JSON config FILE
  ipphone-cm --check-config FILE   validate FILE only: exit 0, or exit 1 with one line
                                   per problem on stderr
  ipphone-cm --help                print this text

Logs are JSON lines on stdout. SIGTERM/SIGINT: publish the offline state, disconnect,
exit 0. Exit 1 on a bad config or an unusable key/port, 2 on bad arguments.
`;

type Args = { kind: 'help' } | { kind: 'run'; config: string } | { kind: 'check'; config: string } | { kind: 'usage'; error: string };

/** Parse argv (without node and script). */
export function parseArgs(argv: readonly string[]): Args {
  let run: string | undefined;
  let check: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.indexOf('=');
    const flag = a.startsWith('--') && eq > 0 ? a.slice(0, eq) : a;
    const inline = a.startsWith('--') && eq > 0 ? a.slice(eq + 1) : undefined;
    if (flag === '--help' || flag === '-h') return { kind: 'help' };
    if (flag === '--config' || flag === '--check-config') {
      const v = inline ?? argv[++i];
      if (v === undefined || v === '') return { kind: 'usage', error: `${flag} needs a FILE` };
      if (flag === '--config') run = v;
      else check = v;
      continue;
    }
    return { kind: 'usage', error: `unknown argument ${JSON.stringify(a)}` };
  }
  if (check !== undefined) return { kind: 'check', config: check };
  if (run !== undefined) return { kind: 'run', config: run };
  return { kind: 'usage', error: '--config FILE is required' };
}

export type { MainIo };

function loadConfig(path: string, io: MainIo): CmConfig | undefined {
  try {
    return loadCmConfigFile(path);
  } catch (err) {
    for (const p of problemsOf(err)) io.stderr(`${path}: ${p.replace(/\n/g, ' ')}\n`);
    return undefined;
  }
}

/** Run the call manager until SIGTERM/SIGINT; resolves with the exit code. */
export async function main(argv: readonly string[], io: MainIo = processIo): Promise<number> {
  const args = parseArgs(argv);
  if (args.kind === 'help') {
    io.stdout(USAGE);
    return 0;
  }
  if (args.kind === 'usage') {
    io.stderr(`ipphone-cm: ${args.error}\n${USAGE}`);
    return 2;
  }
  const config = loadConfig(args.config, io);
  if (config === undefined) return 1;
  if (args.kind === 'check') {
    io.stdout(`${args.config}: ok\n`);
    return 0;
  }

  const root = createLogger(config.log.level, { cmId: config.cmId });
  const log = root.child({ mod: 'main' });
  const cm = new CallManager({ config, log: root });
  try {
    await cm.start();
  } catch (err) {
    log.error({ err: errorMessage(err), code: isIpphoneError(err) ? err.code : undefined }, 'start failed');
    io.stderr(`ipphone-cm: ${errorMessage(err).replace(/\n/g, ' ')}\n`);
    await cm.stop().catch(() => undefined);
    return 1;
  }
  const sd = new SdNotify({ log });
  const describe = (): string => `${config.cmId}: ${cm.phonesHomed()} phones, broker ${cm.connected ? 'up' : 'down'}`;
  void sd.ready(describe());
  const statusTimer = setInterval(() => void sd.status(describe()), 5000);
  statusTimer.unref();
  const stopWatchdog = sd.startWatchdog(() => cm.healthy());
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      process.off('SIGTERM', onSignal);
      process.off('SIGINT', onSignal);
      log.info({ signal }, 'shutting down');
      clearInterval(statusTimer);
      stopWatchdog();
      sd.stopping(`stopping on ${signal}`)
        .then(() => cm.stop())
        .then(
        () => resolve(0),
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, 'shutdown failed');
          resolve(1);
        },
      );
    };
    process.on('SIGTERM', onSignal);
    process.on('SIGINT', onSignal);
  });
}
