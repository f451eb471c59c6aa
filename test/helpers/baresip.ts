/**
 * A real baresip 1.0.0 (Debian's `baresip-core`) for integration tests: headless
 * (aubridge/nil audio, no console UI), SIP on 127.0.0.1 only, its ctrl_tcp
 * socket on a free loopback port. Every child is SIGKILLed when the test
 * process exits.
 *
 * Traps this helper works around: `sip_listen P` also binds P+1 (TLS), so two
 * adjacent free ports are picked; ctrl_tcp serves one client and a new
 * connection replaces the old, so readiness is read from baresip's output
 * ("baresip is ready.") and never probed by connecting: a probe after a
 * restart would steal the connection an adapter has just made.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { freePort, waitFor } from './net.js';
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

/** True when 127.0.0.1:`port` can be bound right now. */
function portFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

/** A free port P whose P+1 is free too (baresip's TLS listener takes P+1). Bounded tries. */
async function freePortPair(): Promise<number> {
  for (let i = 0; i < 50; i++) {
    const p = await freePort();
    if (p < 65535 && (await portFree(p + 1))) return p;
  }
  throw new Error('freePortPair: no two adjacent free ports on 127.0.0.1 in 50 tries');
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
    'rtp_ports 10000-60000',
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
  const sipPort = opts.sipPort ?? (await freePortPair());
  const ctrlPort = opts.ctrlPort ?? (await freePort());
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-baresip-'));
  removeAtExit(dir);
  writeFileSync(path.join(dir, 'config'), baresipConfig(sipPort, ctrlPort, opts.conf));
  writeFileSync(path.join(dir, 'accounts'), '');
  writeFileSync(path.join(dir, 'contacts'), '');

  const tail: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  let ready = false;
  let last = '';
  const onText = (text: string): void => {
    // Printed after every module (ctrl_tcp among them) is loaded and listening; a chunk may split it.
    if ((last + text).includes('baresip is ready.')) ready = true;
    last = text.slice(-32);
    tail.push(...text.split('\n').filter(Boolean));
    tail.splice(0, Math.max(0, tail.length - 80));
  };

  const spawnOnce = async (): Promise<void> => {
    ready = false;
    last = '';
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
      await Promise.race([waitFor(() => ready, { timeoutMs: 10_000, what: `baresip ready (ctrl ${ctrlPort})` }), died]);
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

  // A restart may find the port briefly held by the old socket; retry a few times.
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

  await start();
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
