/**
 * One worker thread of a {@link WorkerFleet}: a {@link Fleet} over its slice of
 * the phones (their own MQTT connections, flash dirs and timers, all in this
 * thread), reporting to the main thread by messages. The main thread holds no
 * agent; what it knows of the phones is what this thread reports:
 *
 * - `status`: the slice's summary, every phone whose home changed and, with
 *   `trace`, each traced agent event as the agent emitted it, stamped with
 *   `Date.now()` here (the benchmark's per-phone `rehomed` time: the main
 *   thread reads the message later, the stamp is the phone's own); sent when
 *   anything changed, checked every `reportMs` and right after a command.
 *   One message per check, not one per event: in a failover every phone of
 *   the slice has an event, and a message per event cost a worker 4-5 % of
 *   its time in postMessage (profile of 1,000 phones on 2 workers);
 * - `started` / `failed` / `stopped`: the lifecycle.
 */
import type { MessagePort } from 'node:worker_threads';
import { pino, type LevelWithSilent } from 'pino';
import type { AgentConfig } from '../config/agent-config.js';
import { errorMessage, isIpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { Fleet, type FleetPhone, type FleetSummary } from './fleet.js';
import { fleetPhoneId } from './phones.js';

/** Marks the `workerData` of a fleet worker (the entry module runs the worker only with it). */
export const WORKER_MARK = 'ipphone-fleet-worker/1';

/** Where and how a worker's phones log: a pino root of its own on a file descriptor of the process. */
export interface PhoneLogSpec {
  level: LevelWithSilent;
  /** Fields on every line (the CLI's `{ fleet: prefix }`). */
  bindings?: Record<string, unknown>;
  /** 1 (stdout, as the CLI logs) or 2 (stderr, as the benchmark logs). Default 1. */
  fd?: 1 | 2;
}

/** The `workerData` of one worker (structured-cloned: plain data only). */
export interface WorkerInit {
  mark: typeof WORKER_MARK;
  /** This worker's index in the fleet (0 first). */
  index: number;
  config: AgentConfig;
  /** The whole fleet's count (ids and `busy` are the whole fleet's). */
  count: number;
  prefix: string;
  /** This worker's phone numbers, ascending. */
  numbers: number[];
  stateDir?: string;
  certDir?: string;
  busy: number;
  batchSize?: number;
  log: PhoneLogSpec;
  reportMs: number;
  /** Agent event types to send to the main thread as `event` messages (none: no wrapping at all). */
  trace: string[];
}

/** An error crossing the thread boundary: a coded error keeps its code and context. */
export interface WireError {
  message: string;
  code?: string;
  context?: Record<string, unknown>;
}

/** An agent event of phone `phone`, emitted at `at` (`Date.now()` in the worker). */
export interface TracedEvent {
  phone: string;
  at: number;
  event: Record<string, unknown>;
}

export type ToWorker = { type: 'stop' } | { type: 'busy'; n: number; offHook: boolean };

export type FromWorker =
  | { type: 'status'; summary: FleetSummary; homes: Array<[number, string | null]>; events: TracedEvent[] }
  | { type: 'started' }
  | { type: 'failed'; error: WireError }
  | { type: 'stopped'; summary: FleetSummary };

export function toWire(err: unknown): WireError {
  if (isIpphoneError(err)) return { message: err.message, code: err.code, ...(err.context ? { context: JSON.parse(JSON.stringify(err.context)) as Record<string, unknown> } : {}) };
  return { message: errorMessage(err) };
}

/**
 * The lines of `createLogger` (same fields, same format), written
 * synchronously: pino's default stdout buffers behind a write in flight and is
 * flushed at exit only on the main thread, so a worker ended after `stopped`
 * could lose its last lines. Each write is one write(2) of one line, so lines
 * from several threads never interleave within a line.
 */
function phoneLogger(spec: PhoneLogSpec): Logger {
  return pino({ level: spec.level, base: { ...(spec.bindings ?? {}) }, timestamp: pino.stdTimeFunctions.epochTime }, pino.destination({ dest: spec.fd ?? 1, sync: true }));
}

/**
 * Wrap the agent's event publisher (a protected method, so by cast) to copy
 * events of the traced types to `sink` as they are emitted. Diagnostic only:
 * what the agent publishes is unchanged.
 */
function traceEvents(phone: FleetPhone, types: ReadonlySet<string>, sink: (phone: string, event: Record<string, unknown>) => void): void {
  const a = phone.agent as unknown as { event(e: Record<string, unknown>): void };
  const publish = a.event.bind(a);
  a.event = (e) => {
    if (types.has(String(e.type))) sink(phone.id, e);
    publish(e);
  };
}

/** Run the worker until the main thread says `stop`; resolves once `stopped` is sent. */
export function runFleetWorker(init: WorkerInit, port: MessagePort): Promise<void> {
  const post = (m: FromWorker): void => port.postMessage(m);
  const types = new Set(init.trace);
  /** Traced events not yet sent. */
  let traced: TracedEvent[] = [];
  const fleet = new Fleet({
    config: init.config,
    count: init.count,
    prefix: init.prefix,
    numbers: init.numbers,
    busy: init.busy,
    log: phoneLogger(init.log),
    ...(init.stateDir !== undefined ? { stateDir: init.stateDir } : {}),
    ...(init.certDir !== undefined ? { certDir: init.certDir } : {}),
    ...(init.batchSize !== undefined ? { batchSize: init.batchSize } : {}),
    ...(types.size > 0 ? { onBuilt: (p: FleetPhone) => traceEvents(p, types, (phone, event) => traced.push({ phone, at: Date.now(), event })) } : {}),
  });

  // What the main thread was last told: per phone (index into fleet.phones()) its home, and the summary.
  const told: Array<string | null> = [];
  let toldSummary = '';
  const report = (): void => {
    const phones = fleet.phones();
    const homes: Array<[number, string | null]> = [];
    for (let i = 0; i < phones.length; i++) {
      const home = phones[i]!.agent.state?.home ?? null;
      if (told[i] !== home) {
        told[i] = home;
        homes.push([init.numbers[i]!, home]);
      }
    }
    const summary = fleet.summary();
    const key = JSON.stringify(summary);
    if (homes.length === 0 && key === toldSummary && traced.length === 0) return;
    toldSummary = key;
    const events = traced;
    traced = [];
    post({ type: 'status', summary, homes, events });
  };
  const ticker = setInterval(report, init.reportMs);

  return new Promise<void>((done) => {
    let stopping = false;
    const stop = async (): Promise<void> => {
      if (stopping) return;
      stopping = true;
      await fleet.stop();
      clearInterval(ticker);
      report();
      post({ type: 'stopped', summary: fleet.summary() });
      port.off('message', onMessage);
      done();
    };
    const onMessage = (m: ToWorker): void => {
      if (m.type === 'stop') void stop();
      else if (m.type === 'busy') {
        fleet.setBusy(fleetPhoneId(init.prefix, m.n), m.offHook);
        report();
      }
    };
    port.on('message', onMessage);
    fleet.start().then(
      () => {
        report();
        post({ type: 'started' });
      },
      // Fleet.start stopped this slice's phones already; the main thread stops the other workers.
      (err: unknown) => post({ type: 'failed', error: toWire(err) }),
    );
  });
}
