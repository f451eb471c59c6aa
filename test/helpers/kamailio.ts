/**
 * A real Kamailio SIP registrar for integration tests: deploy/kamailio/kamailio.cfg
 * with its listen line rewritten to 127.0.0.1 and a free port. Kamailio forks
 * (a main process and its workers, the TCP listener among them): it runs in a
 * process group of its own, and kill/stop signal the whole group, so a
 * `kill('SIGKILL')` leaves nothing answering on the port — a dead PBX.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { connect } from 'node:net';
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort, waitFor } from './net.js';
import { isAddressInUse } from './ports.js';
import { killAtExit } from './reaper.js';

export interface Kamailio {
  readonly port: number;
  /** `sip:127.0.0.1:PORT;transport=tcp` — a member's `sip`, a call manager's `sip.registrar`. */
  readonly uri: string;
  /** With `tls`: the TLS listener's port and `sip:127.0.0.1:TLSPORT;transport=tls` (a member's `sip` for phones over TLS). */
  readonly tlsPort?: number;
  readonly tlsUri?: string;
  /** Pid of the main process of the current run. */
  readonly pid: number | undefined;
  /** Signal the whole process group (SIGKILL: a crash) and wait for the main process to exit. */
  kill(signal?: NodeJS.Signals): Promise<void>;
  /** Start again on the same port (registrations are gone: usrloc is in memory). */
  restart(): Promise<void>;
  /** SIGTERM to the group and wait. Idempotent. */
  stop(): Promise<void>;
  /** The last lines Kamailio logged. */
  logTail(): string;
}

const CFG = path.join(path.dirname(new URL(import.meta.url).pathname), '..', '..', 'deploy', 'kamailio', 'kamailio.cfg');
const BIN = '/usr/sbin/kamailio';
function killGroup(c: ChildProcess, signal: NodeJS.Signals): void {
  if (c.pid === undefined) return;
  try {
    process.kill(-c.pid, signal);
  } catch {
    // already gone
  }
}

/** True when nothing accepts TCP on 127.0.0.1:`port`. */
function refuses(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(port, '127.0.0.1');
    s.once('connect', () => {
      s.destroy();
      resolve(false);
    });
    s.once('error', () => resolve(true));
  });
}

let probes = 0;

/**
 * True when a SIP OPTIONS over TCP to 127.0.0.1:`port` gets a SIP answer (any status): Kamailio is
 * up and it is Kamailio on the port, not something that took the port while Kamailio failed to bind.
 */
function answersSip(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const id = `probe-${process.pid}-${++probes}`;
    const s = connect(port, '127.0.0.1', () => {
      s.write(
        [
          `OPTIONS sip:127.0.0.1:${port};transport=tcp SIP/2.0`,
          `Via: SIP/2.0/TCP 127.0.0.1:9;branch=z9hG4bK${id}`,
          'Max-Forwards: 70',
          `From: <sip:probe@127.0.0.1>;tag=${id}`,
          `To: <sip:127.0.0.1:${port}>`,
          `Call-ID: ${id}@127.0.0.1`,
          'CSeq: 1 OPTIONS',
          'Content-Length: 0',
          '',
          '',
        ].join('\r\n'),
      );
    });
    let got = '';
    const done = (ok: boolean): void => {
      clearTimeout(timer);
      s.destroy();
      resolve(ok);
    };
    const timer = setTimeout(() => done(false), 2000);
    s.setEncoding('utf8');
    s.on('data', (d: string) => {
      got += d;
      if (got.startsWith('SIP/2.0 ')) done(true);
    });
    s.on('error', () => done(false));
    s.on('close', () => done(false));
  });
}

/**
 * Variants of deploy/kamailio/kamailio.cfg (issue 17): `auth` switches on its WITH_AUTH digest
 * authentication with these subscribers (a db_text `subscriber` table in the run's directory);
 * `tls` its WITH_TLS listener with this certificate and key (PEM files), on a port of its own.
 */
export interface KamailioOptions {
  port?: number;
  auth?: readonly { user: string; password: string }[];
  tls?: { cert: string; key: string };
}

/** Start Kamailio on `opts.port` (default: a free one) and wait until it answers SIP there. */
export async function startKamailio(opts: KamailioOptions = {}): Promise<Kamailio> {
  // SIP: claimed for UDP too, though the shipped config listens on TCP only.
  let port = opts.port ?? (await freePort({ udp: true }));
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-kamailio-'));
  const cfg = path.join(dir, 'kamailio.cfg');
  const tlsPort = opts.tls === undefined ? undefined : await freePort();
  const defines: string[] = [];
  if (opts.auth !== undefined) {
    // db_text: a header line, then `user:password` rows (':' in a value would need escaping).
    mkdirSync(path.join(dir, 'ipphone-db'));
    writeFileSync(path.join(dir, 'ipphone-db', 'subscriber'), ['username(str) password(str)', ...opts.auth.map((a) => `${a.user}:${a.password}`), ''].join('\n'));
    defines.push('-A', 'WITH_AUTH', '-A', `DBURL="text://${path.join(dir, 'ipphone-db')}"`);
  }
  if (opts.tls !== undefined) {
    // The tls module reads `tls/server.pem` and `tls/server.key` relative to the config file.
    mkdirSync(path.join(dir, 'tls'));
    copyFileSync(opts.tls.cert, path.join(dir, 'tls', 'server.pem'));
    copyFileSync(opts.tls.key, path.join(dir, 'tls', 'server.key'));
    defines.push('-A', 'WITH_TLS');
  }
  const writeCfg = (): void => {
    let text = readFileSync(CFG, 'utf8')
      .replace(/^listen=.*$/m, `listen=tcp:127.0.0.1:${port}`)
      .replace(/^alias=.*$/m, `alias="127.0.0.1:${port}"`);
    if (!text.includes(`listen=tcp:127.0.0.1:${port}`)) throw new Error(`${CFG}: no listen= line to rewrite`);
    if (tlsPort !== undefined) {
      text = text.replace(/^listen=(?:tls:|LISTEN_TLS).*\n(alias=.*)?$/m, `listen=tls:127.0.0.1:${tlsPort}\nalias="127.0.0.1:${tlsPort}"`);
      if (!text.includes(`listen=tls:127.0.0.1:${tlsPort}`)) throw new Error(`${CFG}: no listen=tls: line to rewrite`);
    }
    writeFileSync(cfg, text);
  };
  writeCfg();
  const tail: string[] = [];
  let child: ChildProcess | undefined;
  let exited: Promise<void> = Promise.resolve();
  /** What the current run has logged (for "address in use"). */
  let runText = '';

  const spawnOnce = async (): Promise<void> => {
    runText = '';
    // -DD: no daemon, workers still forked; -E: log to stderr; -Y/-P: runtime files in our dir.
    const c = spawn(BIN, ['-DD', '-E', ...defines, '-Y', dir, '-P', path.join(dir, 'kamailio.pid'), '-f', cfg], { stdio: ['ignore', 'ignore', 'pipe'], detached: true });
    child = c;
    killAtExit(c, (k) => killGroup(k, 'SIGKILL'));
    c.stderr?.setEncoding('utf8');
    c.stderr?.on('data', (t: string) => {
      if (c === child && runText.length < 20_000) runText += t;
      tail.push(...t.split('\n').filter(Boolean));
      if (tail.length > 200) tail.splice(0, tail.length - 200);
    });
    exited = new Promise<void>((resolve) =>
      c.once('exit', () => resolve()),
    );
    try {
      // Generous: a loaded machine may take seconds to start Kamailio and fork its workers. A SIP
      // answer, not a TCP accept: something else may hold the port Kamailio failed to bind.
      await waitFor(
        async () => {
          if (c.exitCode !== null || c.signalCode !== null || isAddressInUse(runText)) throw new Error('exited, or its port was taken');
          return answersSip(port);
        },
        { timeoutMs: 30_000, intervalMs: 50, what: `kamailio answering SIP on ${port}` },
      );
    } catch (err) {
      killGroup(c, 'SIGKILL');
      throw new Error(`kamailio did not listen on ${port}: ${(err as Error).message}\n${tail.slice(-30).join('\n')}`);
    }
  };
  // The first start: a port taken by something outside the claim scheme (test/helpers/ports.ts) is
  // given up for a new one; a port the caller chose is kept.
  for (let i = 0; ; i++) {
    try {
      await spawnOnce();
      break;
    } catch (err) {
      if (i >= 4 || opts.port !== undefined || !isAddressInUse(runText)) throw err;
      port = await freePort({ udp: true });
      writeCfg();
    }
  }

  const signalAndWait = async (signal: NodeJS.Signals): Promise<void> => {
    const c = child;
    if (c === undefined || c.exitCode !== null || c.signalCode !== null) return;
    killGroup(c, signal);
    await exited;
    // The workers are in the group too and die on their own schedule: the TCP listener is one
    // of them. Dead means the port refuses (bounded wait).
    for (let i = 0; i < 250 && !(await refuses(port)); i++) {
      killGroup(c, 'SIGKILL');
      await new Promise((r) => setTimeout(r, 20));
    }
  };

  return {
    port,
    uri: `sip:127.0.0.1:${port};transport=tcp`,
    ...(tlsPort !== undefined ? { tlsPort, tlsUri: `sip:127.0.0.1:${tlsPort};transport=tls` } : {}),
    get pid() {
      return child?.pid;
    },
    kill: (signal = 'SIGKILL') => signalAndWait(signal),
    restart: async () => {
      await signalAndWait('SIGKILL');
      await spawnOnce();
    },
    stop: async () => {
      await signalAndWait('SIGTERM');
      rmSync(dir, { recursive: true, force: true });
    },
    logTail: () => tail.slice(-40).join('\n'),
  };
}
