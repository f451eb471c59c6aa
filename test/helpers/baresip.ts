/**
 * A real baresip 1.0.0 (Debian's `baresip-core`) for integration tests: headless
 * (aubridge/nil audio, no console UI), SIP on 127.0.0.1 only, its ctrl_tcp
 * socket on a free loopback port. Every child is SIGKILLed when the test
 * process exits.
 *
 * Traps this helper works around: `sip_listen P` also binds P+1 (TLS), so two
 * adjacent ports are claimed (TCP and UDP: SIP listens on both); a ctrl_tcp that
 * cannot listen still ends in "baresip is ready." (without its socket), so the
 * output is read for the failure too, and a first start whose port was taken
 * starts again on new ports; RTP (`rtp_ports`) stays below the test-port pool
 * (test/helpers/ports.ts) so no call takes a port claimed for a listener; ctrl_tcp serves one client and a new
 * connection replaces the old, so readiness is read from baresip's output
 * ("baresip is ready.") and never probed by connecting: a probe after a
 * restart would steal the connection an adapter has just made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './net.js';
import { isAddressInUse } from './ports.js';
import { killAtExit, removeAtExit } from './reaper.js';

export interface Baresip {
  /** SIP listen port (TCP/UDP on 127.0.0.1; P+1 is TLS). */
  readonly sipPort: number;
  /** ctrl_tcp port on 127.0.0.1. */
  readonly ctrlPort: number;
  /** Pid of the current process (changes on {@link restart}). */
  readonly pid: number | undefined;
  /** SIGTERM and wait for exit (SIGKILL after 3 s). */
  stop(): Promise<void>;
  /** Send `sig` (e.g. SIGKILL, SIGSTOP) and, for a deadly one, wait for exit. */
  kill(sig?: NodeJS.Signals): Promise<void>;
  /** Start again with the same config and ports (after {@link stop} or {@link kill}). */
  restart(): Promise<void>;
  /** The last lines baresip wrote (stdout and stderr), for failing tests. */
  output(): string;
}

/** The config file's text (headless, loopback only, ctrl_tcp on `ctrlPort`). */
export function baresipConfig(sipPort: number, ctrlPort: number, extra: readonly string[] = []): string {
  return [
    'poll_method epoll',
    `sip_listen 127.0.0.1:${sipPort}`,
    'net_interface 127.0.0.1',
    'audio_player aubridge,nil',
    'audio_source aubridge,nil',
    'audio_alert aubridge,nil',
    // Below POOL_FLOOR (test/helpers/ports.ts): a call's RTP never takes a port claimed for a listener.
    'rtp_ports 10000-19999',
    'module_path /usr/lib/baresip/modules',
    'module g711.so',
    'module aubridge.so',
    'module_app menu.so',
    'module_app ctrl_tcp.so',
    `ctrl_tcp_listen 127.0.0.1:${ctrlPort}`,
    ...extra,
    '',
  ].join('\n');
}

/**
 * Start baresip with a temp config dir (`-f DIR`: config + empty accounts) and
 * wait until it says it is ready. `opts.ctrlPort` reuses a port (a "restarted"
 * baresip seen by a connected adapter); `opts.conf` adds config lines.
 */
export async function startBaresip(opts: { ctrlPort?: number; sipPort?: number; conf?: readonly string[] } = {}): Promise<Baresip> {
  // SIP listens on TCP and UDP at P, TLS at P+1.
  const newSipPort = (): Promise<number> => freePort({ span: 2, udp: true });
  let sipPort = opts.sipPort ?? (await newSipPort());
  let ctrlPort = opts.ctrlPort ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-baresip-'));
  removeAtExit(dir);
  const writeConfig = (): void => writeFileSync(path.join(dir, 'config'), baresipConfig(sipPort, ctrlPort, opts.conf));
  writeConfig();
  writeFileSync(path.join(dir, 'accounts'), '');
  writeFileSync(path.join(dir, 'contacts'), '');

  const tail: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let ready = false;
  let last = '';
  /** Everything the current run has written (for "address in use"). */
  let runText = '';
  const onText = (text: string): void => {
    // Printed after every module is loaded, listening or not (ctrl_tcp's failure is only logged); a chunk may split it.
    if ((last + text).includes('baresip is ready.')) ready = true;
    last = text.slice(-32);
    if (runText.length < 20_000) runText += text;
    tail.push(...text.split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 80));
  };

  const spawnOnce = async (): Promise<void> => {
    ready = false;
    last = '';
    runText = '';
    // stdin stays an open pipe: baresip's stdio UI is not loaded, but a closed stdin must not end it.
    const c = spawn('baresip', ['-f', dir], { stdio: ['pipe', 'pipe', 'pipe'] });
    child = c;
    killAtExit(c);
    c.stdout?.setEncoding('utf8');
    c.stderr?.setEncoding('utf8');
    c.stdout?.on('data', onText);
    c.stderr?.on('data', onText);
    let onExit!: () => void;
    exited = new Promise<void>((resolve) => {
      onExit = resolve;
    });
    let hasExited = false;
    const done = (): void => {
      hasExited = true;
      onExit();
    };
    c.once('exit', done);
    c.once('error', (err) => {
      tail.push(`spawn error: ${err.message}`);
      done();
    });
    const died = exited.then(() => {
      throw new Error(`baresip exited before ctrl_tcp accepted on ${ctrlPort}:\n${tail.join('\n')}`);
    });
    try {
      await Promise.race([waitFor(() => ready, { timeoutMs: 30_000, what: `baresip ready (ctrl ${ctrlPort})` }), died]);
      if (isAddressInUse(runText)) throw new Error(`baresip could not listen (sip ${sipPort}, ctrl ${ctrlPort}):\n${tail.join('\n')}`);
    } catch (err) {
      if (!hasExited) c.kill('SIGKILL');
      throw err;
    }
    died.catch(() => undefined);
  };

  const signal = async (sig: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (!c || c.exitCode !== null || c.signalCode !== null) return;
    c.kill(sig);
    if (sig === 'SIGSTOP' || sig === 'SIGCONT') return;
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([exited, new Promise<void>((r) => (timer = setTimeout(r, 3000)))]);
    clearTimeout(timer);
    if (c.exitCode === null && c.signalCode === null) {
      c.kill('SIGKILL');
      await exited;
    }
  };

  // A restart may find the port briefly held by the old socket; retry a few times on the same ports.
  const start = async (): Promise<void> => {
    for (let i = 0; ; i++) {
      try {
        await spawnOnce();
        return;
      } catch (err) {
        if (i >= 4) throw err;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  };

  // The first start: a port taken by something outside the claim scheme is given up for a new one
  // (a port the caller chose is kept, and retried as on a restart).
  for (let i = 0; ; i++) {
    try {
      await spawnOnce();
      break;
    } catch (err) {
      if (i >= 4) throw err;
      if (isAddressInUse(runText) && (opts.sipPort === undefined || opts.ctrlPort === undefined)) {
        if (opts.sipPort === undefined) sipPort = await newSipPort();
        if (opts.ctrlPort === undefined) ctrlPort = await freePort();
        writeConfig();
      } else {
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  return {
    sipPort,
    ctrlPort,
    get pid() {
      return child?.pid;
    },
    stop: () => signal('SIGTERM'),
    kill: (sig: NodeJS.Signals = 'SIGKILL') => signal(sig),
    restart: start,
    output: () => tail.join('\n'),
  };
}
