/**
 * One call manager of the demo group as a child process (`ipphone-cm
 * --config FILE`), so that a crash is a real `kill -9`. Its JSON log goes to a
 * file; its stdin is a pipe the orphan guard watches (see orphan-guard.ts).
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { IpphoneError } from '../lib/errors.js';
import { waitUntil, withTimeout } from './wait.js';
import type { CmSpec } from './workspace.js';

const here = dirname(fileURLToPath(import.meta.url));
/** Run from sources (tsx) or from dist: the children run the same way. */
const fromSource = import.meta.url.endsWith('.ts');
const ext = fromSource ? '.ts' : '.js';
/** The package root: src/demo/ or dist/demo/ → two levels up. */
export const PACKAGE_ROOT = resolve(here, '..', '..');

function commandLine(configFile: string): string[] {
  const guard = pathToFileURL(join(here, `orphan-guard${ext}`)).href;
  return [...(fromSource ? ['--import', 'tsx'] : []), '--import', guard, join(here, '..', 'bin', `ipphone-cm${ext}`), '--config', configFile];
}

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export class CmProcess {
  readonly spec: CmSpec;
  #child: ChildProcess | undefined;
  #exited: Promise<ExitInfo> | undefined;
  #exit: ExitInfo | undefined;
  /** Every pid this call manager ran as, for the final check. */
  readonly pids: number[] = [];

  constructor(spec: CmSpec) {
    this.spec = spec;
  }

  get id(): string {
    return this.spec.id;
  }

  /** The pid of the running child, if any. */
  get pid(): number | undefined {
    return this.running ? this.#child?.pid : undefined;
  }

  get running(): boolean {
    return this.#child !== undefined && this.#exit === undefined;
  }

  /** Spawn the child (its log is appended to `spec.logFile`). Throws when it cannot start. */
  async start(): Promise<number> {
    if (this.running) throw new IpphoneError(`${this.id} is already running`, 'USAGE');
    const log = openSync(this.spec.logFile, 'a');
    let child: ChildProcess;
    try {
      child = spawn(process.execPath, commandLine(this.spec.configFile), { cwd: PACKAGE_ROOT, stdio: ['pipe', log, log] });
    } finally {
      closeSync(log);
    }
    this.#child = child;
    this.#exit = undefined;
    this.#exited = new Promise<ExitInfo>((done) => {
      child.once('exit', (code, signal) => {
        this.#exit = { code, signal };
        done(this.#exit);
      });
    });
    // Our end of the guard pipe: EPIPE once the child is gone is expected.
    child.stdin?.on('error', () => undefined);
    await new Promise<void>((ok, fail) => {
      child.once('spawn', ok);
      child.once('error', (err) => fail(new IpphoneError(`${this.id}: cannot start: ${err.message}`, 'TRANSPORT', { cm: this.id }, { cause: err })));
    });
    this.pids.push(child.pid!);
    return child.pid!;
  }

  /** Resolve once `GET /healthz` answers 200 (connected to the broker); fail fast if the child exits. */
  async waitHealthy(timeoutMs: number, signal?: AbortSignal): Promise<void> {
    const url = `http://127.0.0.1:${this.spec.httpPort}/healthz`;
    await waitUntil(
      async () => {
        if (!this.running) {
          const e = this.#exit;
          throw new IpphoneError(`${this.id} exited during start (code ${e?.code ?? '-'}, signal ${e?.signal ?? '-'}); see ${this.spec.logFile}`, 'TRANSPORT', { cm: this.id });
        }
        try {
          const res = await fetch(url, { signal: AbortSignal.timeout(500) });
          await res.body?.cancel();
          return res.status === 200;
        } catch {
          return false;
        }
      },
      { timeoutMs, intervalMs: 50, what: `${this.id} healthy at ${url}`, ...(signal ? { signal } : {}) },
    );
  }

  /** `kill -9`: the call manager gets no chance to say goodbye. Resolves once it is gone. */
  async kill9(): Promise<void> {
    const child = this.#child;
    if (!this.running || child === undefined) return;
    child.kill('SIGKILL');
    await withTimeout(this.#exited!, 5000, `${this.id} exit after SIGKILL`);
  }

  /** Graceful stop: SIGTERM, then SIGKILL after `graceMs`. Idempotent; never throws. */
  async stop(graceMs = 3000): Promise<void> {
    const child = this.#child;
    if (!this.running || child === undefined) return;
    try {
      child.kill('SIGTERM');
      await withTimeout(this.#exited!, graceMs, `${this.id} exit after SIGTERM`);
    } catch {
      child.kill('SIGKILL');
      await withTimeout(this.#exited!, 2000, `${this.id} exit after SIGKILL`).catch(() => undefined);
    }
  }

  /** SIGKILL without waiting, for `process.on('exit')` where nothing async can run. */
  killNow(): void {
    if (this.running) this.#child?.kill('SIGKILL');
  }
}
