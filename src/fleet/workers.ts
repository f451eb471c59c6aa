/**
 * A fleet whose phones run on worker threads (`node:worker_threads`): N
 * workers, each a {@link Fleet} over its slice of the phones ({@link fleetSlices})
 * with their own MQTT connections, flash dirs and timers. This thread keeps the
 * fleet's surface — the summary, per-phone homes, hook switches, stop — from
 * the workers' messages (worker-side.ts), and holds no agent.
 *
 * Why: a phone writes its own socket and flash and checks its own signatures
 * on its own CPU; 2,000 agent cores in one Node thread do all of that one
 * after another, and the 2,000-phone failover then measured the simulator,
 * not the call manager (bench/fleet-profile.md). Workers let the simulator
 * use every core.
 *
 * This module is also the workers' entry: loaded in a thread whose
 * `workerData` carries {@link WORKER_MARK}, it runs the worker. One file for
 * both sides keeps the entry inside whatever file holds this code — the
 * compiled dist/fleet/workers.js, or the single-file program of the bundle.
 * Run from src/ under tsx, the workers load the compiled twin in dist/ (no
 * TypeScript loader in the workers), refused with a clear error when missing
 * or older than its sources.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import type { EventLoopUtilization } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Worker, isMainThread, parentPort, workerData } from 'node:worker_threads';
import type { AgentConfig } from '../config/agent-config.js';
import { IpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { FleetSummary } from './fleet.js';
import { DEFAULT_PREFIX, assertFleetShape, fleetPhoneId } from './phones.js';
import { defaultWorkers, fleetSlices, workerOf } from './split.js';
import { WORKER_MARK, runFleetWorker, type FromWorker, type PhoneLogSpec, type ToWorker, type WireError, type WorkerInit } from './worker-side.js';

export { WORKER_MARK, type PhoneLogSpec } from './worker-side.js';

export interface WorkerFleetOptions {
  /** The agent config every phone starts from (as {@link FleetOptions.config}). */
  config: AgentConfig;
  count: number;
  prefix?: string;
  stateDir?: string;
  certDir?: string;
  busy?: number;
  /** Phones each worker starts together before yielding. Default 100. */
  batchSize?: number;
  /** Worker threads, 1 to 64; never more than phones. Default {@link defaultWorkers} (the CPUs available). */
  workers?: number;
  /** The fleet's own lines (starting, started, stopped, a worker lost) in this thread. */
  log: Logger;
  /** The phones' loggers, one root per worker. Default: the config's level on stdout. */
  phoneLog?: PhoneLogSpec;
  /** How often a worker checks its phones for a change to report (and sends its traced events). Default 50 ms. */
  reportMs?: number;
  /** Agent event types to pass to {@link onEvent} (e.g. `['rehomed']`). Default none. */
  trace?: readonly string[];
  /** A traced event of phone `phone`, emitted by its agent at `atMs` (`Date.now()` in its worker). */
  onEvent?: (phone: string, event: Record<string, unknown>, atMs: number) => void;
}

interface Slot {
  worker: Worker;
  summary: FleetSummary;
  started: boolean;
  /** stop() asked it to stop: its thread ending is no longer a loss. */
  stopping: boolean;
  stopped: boolean;
  /** The thread has ended ('exit' seen). */
  gone: boolean;
  exited: Promise<void>;
}

const EMPTY: FleetSummary = { count: 0, homed: 0, byHome: {}, noService: 0, rehomes: 0, busy: 0 };

function fromWire(e: WireError): Error {
  return e.code === undefined ? new Error(e.message) : new IpphoneError(e.message, e.code as IpphoneError['code'], e.context);
}

/** Per-thread node options a worker takes from this process (profilers, source maps, warnings). */
const FOR_WORKERS = /^--(cpu-prof|heap-prof|enable-source-maps|no-warnings|trace-warnings|trace-uncaught)/;
/** Of those, the ones whose value may come as the next argument. */
const TAKES_VALUE = /^--(cpu-prof|heap-prof)-(dir|name|interval)$/;

/**
 * The node options of this process that the workers get: only per-thread
 * ones ({@link FOR_WORKERS}). Not a TypeScript loader (the workers run
 * compiled JavaScript), not `-e` and its code (the worker would run it
 * again), not process-wide V8 flags (a worker refuses them; they apply to it
 * anyway).
 */
export function workerExecArgv(execArgv: readonly string[]): string[] {
  const out: string[] = [];
  for (let i = 0; i < execArgv.length; i++) {
    const a = execArgv[i]!;
    if (!FOR_WORKERS.test(a)) continue;
    out.push(a);
    if (TAKES_VALUE.test(a) && execArgv[i + 1] !== undefined) out.push(execArgv[++i]!);
  }
  return out;
}

/** Relative imports of a module's source, as written (`./x.js`). */
function relativeImports(source: string): string[] {
  return [...source.matchAll(/\bfrom\s+'(\.{1,2}\/[^']+)'/g)].map((m) => m[1]!);
}

/**
 * The compiled twin of `entryTs` (src/…/x.ts → dist/…/x.js). Throws USAGE when
 * it, or the twin of any source it imports (followed through relative
 * imports), is missing or older than the source.
 */
export function compiledTwin(entryTs: string): string {
  const srcRoot = join(dirname(entryTs), '..');
  const distRoot = join(srcRoot, '..', 'dist');
  const twin = (ts: string): string => join(distRoot, ts.slice(srcRoot.length + 1).replace(/\.ts$/, '.js'));
  const seen = new Set<string>();
  const stale: string[] = [];
  const walk = (ts: string): void => {
    if (seen.has(ts) || !existsSync(ts)) return;
    seen.add(ts);
    const js = twin(ts);
    if (!existsSync(js) || statSync(js).mtimeMs < statSync(ts).mtimeMs) stale.push(js);
    for (const rel of relativeImports(readFileSync(ts, 'utf8'))) walk(join(dirname(ts), rel.replace(/\.js$/, '.ts')));
  };
  walk(entryTs);
  if (stale.length > 0) {
    throw new IpphoneError(`the fleet's worker threads run the compiled JavaScript in dist/, and ${stale.length} file(s) are missing or older than their sources (e.g. ${stale[0]}): run \`npm run build\``, 'USAGE', { stale });
  }
  return twin(entryTs);
}

/** The script the workers run: this module, or its compiled twin when this is the TypeScript source. */
export function workerScript(here: string = import.meta.url): URL {
  if (!here.endsWith('.ts')) return new URL(here);
  return pathToFileURL(compiledTwin(fileURLToPath(here)));
}

/**
 * N phones on worker threads. Same lifecycle as {@link Fleet}: the constructor
 * only assigns; `start()` starts every worker and resolves when each has
 * started its phones; `stop()` is idempotent and ends with every worker
 * thread exited.
 */
export class WorkerFleet {
  readonly #o: WorkerFleetOptions;
  readonly #prefix: string;
  #slots: Slot[] = [];
  /** Home of phone n at index n − 1, as last reported (undefined: not reported yet). */
  readonly #homes: Array<string | null | undefined>;
  #started = false;
  #stopping: Promise<void> | undefined;
  #lost!: (err: Error) => void;
  #stopAsked!: () => void;
  /** Resolves when stop() is called: a start in progress returns then, as {@link Fleet.start} does. */
  readonly #stopAskedP = new Promise<void>((r) => (this.#stopAsked = r));
  /** Rejects… never; resolves with the error when a worker thread ends other than by stop(). */
  readonly failure: Promise<Error>;

  constructor(opts: WorkerFleetOptions) {
    this.#o = opts;
    this.#prefix = opts.prefix ?? DEFAULT_PREFIX;
    this.#homes = [];
    this.failure = new Promise<Error>((lost) => (this.#lost = lost));
  }

  /** Worker threads this fleet runs (or will run): min(workers, count). */
  get workerCount(): number {
    return Math.min(this.#o.workers ?? defaultWorkers(), this.#o.count);
  }

  /**
   * Start the workers and their phones. Throws USAGE on a bad count, prefix,
   * busy or worker count, or a second call; if a phone cannot start, stops
   * every worker and rethrows that phone's error (its code kept). Returns
   * early when stop() is called meanwhile.
   */
  async start(): Promise<void> {
    const o = this.#o;
    if (this.#started) throw new IpphoneError('the fleet was already started', 'USAGE');
    this.#started = true;
    assertFleetShape(o.count, this.#prefix);
    const busy = o.busy ?? 0;
    if (!Number.isSafeInteger(busy) || busy < 0 || busy > o.count) throw new IpphoneError(`busy must be an integer from 0 to count (${o.count}) (got ${busy})`, 'USAGE');
    const slices = fleetSlices(o.count, o.workers ?? defaultWorkers());
    const script = workerScript();
    // Stopped before it started: no thread (stop() found none to end).
    if (this.#stopping) return;
    const log = o.log.child({ mod: 'fleet' });
    log.info({ count: o.count, prefix: this.#prefix, workers: slices.length }, 'fleet starting on worker threads');
    const execArgv = workerExecArgv(process.execArgv);
    const phoneLog: PhoneLogSpec = o.phoneLog ?? { level: o.config.log.level };
    let failStart!: (err: Error) => void;
    const startFailed = new Promise<never>((_, reject) => (failStart = reject));
    startFailed.catch(() => {});
    const allStarted: Promise<void>[] = [];
    this.#slots = slices.map((numbers, index) => {
      const init: WorkerInit = {
        mark: WORKER_MARK,
        index,
        config: o.config,
        count: o.count,
        prefix: this.#prefix,
        numbers,
        busy,
        log: phoneLog,
        reportMs: o.reportMs ?? 50,
        trace: [...(o.trace ?? [])],
        ...(o.stateDir !== undefined ? { stateDir: o.stateDir } : {}),
        ...(o.certDir !== undefined ? { certDir: o.certDir } : {}),
        ...(o.batchSize !== undefined ? { batchSize: o.batchSize } : {}),
      };
      const worker = new Worker(script, { workerData: init, execArgv, name: `fleet-${index}` });
      let exited!: () => void;
      const slot: Slot = { worker, summary: EMPTY, started: false, stopping: false, stopped: false, gone: false, exited: new Promise<void>((r) => (exited = r)) };
      let started!: () => void;
      allStarted.push(new Promise<void>((r) => (started = r)));
      worker.on('message', (m: FromWorker) => {
        if (m.type === 'status') {
          slot.summary = m.summary;
          for (const [n, home] of m.homes) this.#homes[n - 1] = home;
          for (const e of m.events) o.onEvent?.(e.phone, e.event, e.at);
        } else if (m.type === 'started') {
          slot.started = true;
          started();
        } else if (m.type === 'failed') failStart(fromWire(m.error));
        else if (m.type === 'stopped') {
          slot.summary = m.summary;
          slot.stopped = true;
        }
      });
      const lost = (err: Error): void => {
        if (slot.stopped || slot.stopping) return;
        slot.stopped = true;
        failStart(err);
        if (slot.started) {
          log.error({ worker: index, err: err.message }, 'a fleet worker thread ended unexpectedly');
          this.#lost(err);
        }
      };
      // A thread that dies is a bug, not a condition with a code: plain errors.
      worker.on('error', (err) => lost(new Error(`fleet worker ${index} failed: ${err.message}`, { cause: err })));
      worker.on('exit', (code) => {
        lost(new Error(`fleet worker ${index} exited (code ${code}) before it was stopped`));
        slot.gone = true;
        exited();
      });
      return slot;
    });
    try {
      await Promise.race([Promise.all(allStarted), startFailed, this.#stopAskedP]);
      if (this.#stopping) return;
    } catch (err) {
      log.error({ err: (err as Error).message }, 'a phone failed to start; stopping the fleet');
      await this.stop();
      throw err;
    }
    log.info({ count: o.count, workers: this.#slots.length }, 'fleet started');
  }

  /**
   * Stop every phone (each publishes its offline status and disconnects),
   * then end every worker thread. Idempotent: later calls return the same
   * promise.
   */
  stop(): Promise<void> {
    this.#stopAsked();
    this.#stopping ??= (async () => {
      await Promise.all(
        this.#slots.map(async (slot) => {
          slot.stopping = true;
          if (!slot.stopped) {
            const stopped = new Promise<void>((r) => slot.worker.on('message', (m: FromWorker) => m.type === 'stopped' && r()));
            slot.worker.postMessage({ type: 'stop' } satisfies ToWorker);
            await Promise.race([stopped, slot.exited]);
          }
          // Nothing of a stopped worker is needed any more; a handle it still holds must not keep this process up.
          await slot.worker.terminate();
          await slot.exited;
        }),
      );
      this.#o.log.child({ mod: 'fleet' }).info({ count: this.summary().count }, 'fleet stopped');
    })();
    return this.#stopping;
  }

  /** Worker threads of this fleet still running (0 before start() and after stop()). */
  get threads(): number {
    return this.#slots.filter((s) => !s.gone).length;
  }

  /** The summary over every worker's last report. */
  summary(): FleetSummary {
    const out: FleetSummary = { count: 0, homed: 0, byHome: {}, noService: 0, rehomes: 0, busy: 0 };
    for (const { summary: s } of this.#slots) {
      out.count += s.count;
      out.homed += s.homed;
      out.noService += s.noService;
      out.rehomes += s.rehomes;
      out.busy += s.busy;
      for (const [cm, n] of Object.entries(s.byHome)) out.byHome[cm] = (out.byHome[cm] ?? 0) + n;
    }
    return out;
  }

  /**
   * Each worker thread's event loop utilization so far (`worker.performance`,
   * read from this thread without disturbing the worker): how busy the
   * phones' threads are. Diff two readings with `performance.eventLoopUtilization(b, a)`.
   */
  utilization(): EventLoopUtilization[] {
    return this.#slots.map((s) => s.worker.performance.eventLoopUtilization());
  }

  /** Every phone id, `{prefix}1` … `{prefix}{count}`. */
  ids(): string[] {
    return Array.from({ length: this.#o.count }, (_, i) => fleetPhoneId(this.#prefix, i + 1));
  }

  /** Home of phone number n (1 first) as last reported: a call manager id, null (none), undefined (not reported yet). */
  home(n: number): string | null | undefined {
    return this.#homes[n - 1];
  }

  /** Lift (true) or replace (false) the handset of phone `id`. Throws USAGE for an id not of this fleet. */
  setBusy(id: string, offHook: boolean): void {
    const n = id.startsWith(this.#prefix) && /^[1-9]\d*$/.test(id.slice(this.#prefix.length)) ? Number(id.slice(this.#prefix.length)) : Number.NaN;
    const slot = n <= this.#o.count ? this.#slots[workerOf(n, this.#o.count, this.#slots.length)] : undefined;
    if (slot === undefined) throw new IpphoneError(`no phone ${JSON.stringify(id)} in this fleet`, 'USAGE', { phone: id });
    slot.worker.postMessage({ type: 'busy', n, offHook } satisfies ToWorker);
  }
}

// The worker side: this module loaded as a fleet worker's entry.
if (!isMainThread && parentPort !== null && (workerData as { mark?: unknown } | null)?.mark === WORKER_MARK) {
  void runFleetWorker(workerData as WorkerInit, parentPort);
}
