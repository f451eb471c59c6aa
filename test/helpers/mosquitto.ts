/**
 * A real mosquitto broker for integration tests, on 127.0.0.1 and a port of its
 * own. Every child is SIGKILLed when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { accessSync, constants, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitFor, waitForPort } from './net.js';
import { isAddressInUse } from './ports.js';
import { killAtExit, removeAtExit } from './reaper.js';

export interface Mosquitto {
  readonly port: number;
  /** `mqtt://127.0.0.1:PORT`, or `mqtts://127.0.0.1:PORT` with {@link MosquittoTls}. */
  readonly url: string;
  /** Pid of the current broker process (changes on restart). */
  readonly pid: number | undefined;
  /** SIGTERM and wait for exit. */
  stop(): Promise<void>;
  /** SIGKILL and wait for exit: no DISCONNECT, no clean shutdown. */
  kill(): Promise<void>;
  /** Stop, then start again on the same port (no persistence: sessions and retained messages are gone). */
  restart(): Promise<void>;
  /** The last lines mosquitto wrote to stderr. */
  logTail(): string;
}

function findBinary(): string {
  const candidates = ['/usr/sbin/mosquitto', ...(process.env.PATH ?? '').split(path.delimiter).filter(Boolean).map((d) => path.join(d, 'mosquitto'))];
  for (const file of candidates) {
    try {
      accessSync(file, constants.X_OK);
      return file;
    } catch {
      // try the next one
    }
  }
  throw new Error('mosquitto binary not found (looked in /usr/sbin and PATH): run `apt-get install -y mosquitto`');
}

/**
 * A TLS-only listener in the production shape (deploy/mosquitto/mosquitto.conf):
 * client certificates required, the CN as user name and as client id, no
 * anonymous clients. Each switch defaults to the production value.
 */
export interface MosquittoTls {
  cafile: string;
  certfile: string;
  keyfile: string;
  /** `require_certificate` (default true). */
  requireCertificate?: boolean;
  /** `use_identity_as_username` (default true). */
  identityAsUsername?: boolean;
  /** `use_username_as_clientid` (default true). */
  usernameAsClientid?: boolean;
  /** `acl_file`: readable by user mosquitto (mosquitto started as root drops to it). */
  aclFile?: string;
  /** `set_tcp_nodelay` (default true, as shipped). */
  tcpNodelay?: boolean;
}

/** The config lines of the listener. */
function listenerLines(port: number, tls: MosquittoTls | undefined): string[] {
  if (tls === undefined) return [`listener ${port} 127.0.0.1`, 'allow_anonymous true'];
  const on = (v: boolean | undefined): string => (v ?? true ? 'true' : 'false');
  return [
    `listener ${port} 127.0.0.1`,
    `cafile ${tls.cafile}`,
    `certfile ${tls.certfile}`,
    `keyfile ${tls.keyfile}`,
    `require_certificate ${on(tls.requireCertificate)}`,
    `use_identity_as_username ${on(tls.identityAsUsername)}`,
    `use_username_as_clientid ${on(tls.usernameAsClientid)}`,
    'allow_anonymous false',
    `set_tcp_nodelay ${on(tls.tcpNodelay)}`,
    ...(tls.aclFile !== undefined ? [`acl_file ${tls.aclFile}`] : []),
  ];
}

/** Start mosquitto on `opts.port` (default: a free port) and wait until it accepts TCP. */
/** @param opts.onLog called with every line mosquitto logs (e.g. to count connects). */
/** @param opts.tls a TLS-only listener instead of the open plain one. */
/** @param opts.confText the whole config instead (e.g. deploy/mosquitto/mosquitto.conf rewritten for the port); `url` is mqtts: when it has a certfile. */
/** @param opts.conf extra mosquitto.conf lines after the listener's (e.g. `set_tcp_nodelay true`); not with confText. */
export async function startMosquitto(
  opts: { port?: number; onLog?: (line: string) => void; tls?: MosquittoTls; confText?: (port: number) => string; conf?: readonly string[] } = {},
): Promise<Mosquitto> {
  const bin = findBinary();
  let port = opts.port ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-mosquitto-'));
  removeAtExit(dir);
  const conf = path.join(dir, 'mosquitto.conf');
  const confFor = (p: number): string => opts.confText?.(p) ?? [...listenerLines(p, opts.tls), 'persistence false', 'log_dest stderr', 'max_queued_messages 1000', ...(opts.conf ?? []), ''].join('\n');
  let text = confFor(port);
  writeFileSync(conf, text);
  const tlsOn = opts.tls !== undefined || /^\s*certfile\s/m.test(text);
  // "mosquitto version X running" (information) is logged once every listener is open: with it, a
  // port that something else answers on is not taken for ours.
  const logsRunning = (): boolean => /^log_dest stderr/m.test(text) && (!/^log_type /m.test(text) || /^log_type (information|all)\s*$/m.test(text));

  const tail: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  /** What the current run has logged (for "running" and "address in use"). */
  let runText = '';

  const spawnOnce = async (): Promise<void> => {
    runText = '';
    const c = spawn(bin, ['-c', conf], { stdio: ['ignore', 'ignore', 'pipe'] });
    child = c;
    killAtExit(c);
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (text: string) => {
      if (c === child && runText.length < 20_000) runText += text;
      const lines = text.split('\n').filter(Boolean);
      if (opts.onLog) for (const l of lines) opts.onLog(l);
      tail.push(...lines);
      tail.splice(0, Math.max(0, tail.length - 30));
    });
    let onExit!: () => void;
    exited = new Promise<void>((resolve) => {
      onExit = resolve;
    });
    let hasExited = false;
    c.once('exit', () => {
      hasExited = true;
      onExit();
    });
    c.once('error', (err) => {
      tail.push(`spawn error: ${err.message}`);
      hasExited = true;
      onExit();
    });
    const died = exited.then(() => {
      throw new Error(`mosquitto exited before accepting on port ${port}:\n${tail.join('\n')}`);
    });
    try {
      // Generous: a loaded machine may take seconds to start a process.
      await Promise.race([waitForPort(port, 30_000), died]);
      if (logsRunning()) await Promise.race([waitFor(() => / running\b/.test(runText), { timeoutMs: 30_000, what: `mosquitto running on ${port}` }), died]);
    } catch (err) {
      if (!hasExited) c.kill('SIGKILL');
      throw err;
    }
    died.catch(() => undefined);
  };

  // A restart may find the port briefly held by the old socket; retry a few times.
  const start = async (): Promise<void> => {
    for (let i = 0; ; i++) {
      try {
        await spawnOnce();
        return;
      } catch (err) {
        if (i >= 4) throw err;
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(sig);
    await exited;
  };

  // The first start: a port taken by something outside the claim scheme (test/helpers/ports.ts) is
  // given up for a new one; a port the caller chose is kept and retried, as on a restart.
  for (let i = 0; ; i++) {
    try {
      await spawnOnce();
      break;
    } catch (err) {
      if (i >= 4) throw err;
      if (opts.port === undefined && isAddressInUse(runText)) {
        port = await freePort();
        text = confFor(port);
        writeFileSync(conf, text);
      } else {
        await new Promise((r) => setTimeout(r, 100));
      }
    }
  }
  return {
    port,
    url: `${tlsOn ? 'mqtts' : 'mqtt'}://127.0.0.1:${port}`,
    get pid() {
      return child?.pid;
    },
    stop: () => signal('SIGTERM'),
    kill: () => signal('SIGKILL'),
    async restart() {
      await signal('SIGTERM');
      await start();
    },
    logTail: () => tail.join('\n'),
  };
}
