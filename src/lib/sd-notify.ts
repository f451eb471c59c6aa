/**
 * systemd readiness, status and watchdog (sd_notify(3)) for Node.
 *
 * Node has no unix datagram sockets (`node:dgram` is UDP only, `node:net` is
 * stream only) and no addon for it is installed, so messages go out through a
 * short-lived `systemd-notify` child. Two consequences, both handled in the
 * units (systemd/*.service):
 * - The sender's PID is the child's, not ours: an unprivileged process cannot
 *   put another PID in its SCM_CREDENTIALS, so `NotifyAccess=main` would drop
 *   every message. The units use `NotifyAccess=all`.
 * - PID 1 attributes a message to a unit by the sender's cgroup, which it can
 *   only look up while the sender lives. systemd-notify (without --no-block)
 *   waits on a BARRIER=1 handshake until PID 1 has read the message, so it is
 *   never dropped for a vanished sender.
 *
 * Everything fails soft: without NOTIFY_SOCKET every call is a no-op; a failed
 * send is logged once at warn (later ones at debug) and never throws. Sends are
 * serialised: at most one child at a time, and whatever is asked meanwhile is
 * merged into the next message (so a slow PID 1 cannot pile up children).
 */
import { spawn } from 'node:child_process';
import { systemClock, type Clock, type TimerHandle } from './clock.js';
import { IpphoneError, errorMessage, isIpphoneError } from './errors.js';
import type { Logger } from './log.js';

/** Delivers one notification (`KEY=VALUE` fields) to the socket; rejects on failure. */
export type NotifySend = (socket: string, fields: readonly string[]) => Promise<void>;

/** Longest STATUS= text sent (characters); longer texts are cut. */
export const MAX_STATUS_CHARS = 200;

export interface SystemdNotifySenderOptions {
  /** Program to run; default `systemd-notify` (looked up on PATH). */
  command?: string;
  /** Kill the child after this long (ms); default 10000 (its own barrier gives up after 5 s). */
  timeoutMs?: number;
  /** PATH for the child; default the parent's PATH, else `/usr/bin:/bin`. */
  path?: string;
  clock?: Clock;
}

/**
 * The default {@link NotifySend}: runs `systemd-notify FIELD…` with only
 * NOTIFY_SOCKET and PATH in its environment. Rejects with NOTIFY_FAILED on a
 * non-zero exit or a spawn error (e.g. ENOENT), TIMEOUT when killed.
 */
export function systemdNotifySender(opts: SystemdNotifySenderOptions = {}): NotifySend {
  const command = opts.command ?? 'systemd-notify';
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const clock = opts.clock ?? systemClock;
  const path = opts.path ?? process.env.PATH ?? '/usr/bin:/bin';
  return (socket, fields) =>
    new Promise<void>((resolve, reject) => {
      const child = spawn(command, [...fields], { env: { NOTIFY_SOCKET: socket, PATH: path }, stdio: ['ignore', 'ignore', 'pipe'] });
      let stderr = '';
      let timedOut = false;
      child.stderr?.setEncoding('utf8').on('data', (s: string) => {
        if (stderr.length < 1000) stderr += s;
      });
      const timer: TimerHandle = clock.setTimeout(() => {
        timedOut = true;
        child.kill('SIGKILL');
      }, timeoutMs);
      child.once('error', (err) => {
        clock.clearTimeout(timer);
        reject(new IpphoneError(`cannot run ${command}: ${errorMessage(err)}`, 'NOTIFY_FAILED', { command }, { cause: err }));
      });
      child.once('close', (code, signal) => {
        clock.clearTimeout(timer);
        if (code === 0) resolve();
        else if (timedOut) reject(new IpphoneError(`${command} did not finish in ${timeoutMs} ms`, 'TIMEOUT', { command, timeoutMs }));
        else reject(new IpphoneError(`${command} failed: ${stderr.trim() || `exit ${code ?? signal}`}`, 'NOTIFY_FAILED', { command, code, signal }));
      });
    });
}

export interface SdNotifyOptions {
  /** Where NOTIFY_SOCKET, WATCHDOG_USEC, WATCHDOG_PID come from; default `process.env`. */
  env?: Readonly<Record<string, string | undefined>>;
  log: Logger;
  /** How a message is delivered; default {@link systemdNotifySender}(). */
  send?: NotifySend;
  /** Our PID, compared with WATCHDOG_PID; default `process.pid`. */
  pid?: number;
  clock?: Clock;
  /**
   * Minimum gap between two WATCHDOG=1 sends (ms); default 1000. Extra pings are dropped.
   * With the watchdog on it never exceeds an eighth of WATCHDOG_USEC
   * ({@link SdNotify.watchdogDropGapMs}), so a tick is never dropped.
   */
  minWatchdogGapMs?: number;
}

type Fields = Map<string, string>;

/** One line, no NULs, at most {@link MAX_STATUS_CHARS}: a newline would start a new field. */
function oneLine(text: string): string {
  return text.replace(/[\r\n\u0000]+/g, ' ').slice(0, MAX_STATUS_CHARS);
}

const done: Promise<void> = Promise.resolve();

/**
 * sd_notify for one process. Methods return a promise that resolves once the
 * message was delivered or given up on; it never rejects, so callers may
 * ignore it (but await {@link SdNotify.stopping} before `process.exit`).
 */
export class SdNotify {
  /** True when NOTIFY_SOCKET is set, i.e. systemd (or a test) listens. */
  readonly enabled: boolean;
  readonly #socket: string;
  readonly #env: Readonly<Record<string, string | undefined>>;
  readonly #log: Logger;
  readonly #send: NotifySend;
  readonly #pid: number;
  readonly #clock: Clock;
  readonly #minGap: number;
  #lastStatus: string | undefined;
  #lastWatchdogAt = Number.NEGATIVE_INFINITY;
  #readySent = false;
  #warned = false;
  #inFlight: Promise<void> | undefined;
  #pending: { fields: Fields; promise: Promise<void>; resolve: () => void } | undefined;
  #sent = 0;
  #failed = 0;

  constructor(opts: SdNotifyOptions) {
    this.#env = opts.env ?? process.env;
    this.#socket = this.#env.NOTIFY_SOCKET ?? '';
    this.enabled = this.#socket !== '';
    this.#log = opts.log.child({ mod: 'sd-notify' });
    this.#send = opts.send ?? systemdNotifySender();
    this.#pid = opts.pid ?? process.pid;
    this.#clock = opts.clock ?? systemClock;
    this.#minGap = opts.minWatchdogGapMs ?? 1000;
  }

  /** Messages delivered and failed so far (for metrics). */
  get stats(): { sent: number; failed: number } {
    return { sent: this.#sent, failed: this.#failed };
  }

  /** READY=1 (once; later calls only update the status) with an optional STATUS=. */
  ready(status?: string): Promise<void> {
    if (!this.enabled) return done;
    const f: Fields = new Map();
    if (!this.#readySent) f.set('READY', '1');
    this.#readySent = true;
    this.#addStatus(f, status);
    return f.size === 0 ? done : this.#queue(f);
  }

  /** STATUS=text, sent only when it differs from the last one. Newlines become spaces. */
  status(text: string): Promise<void> {
    if (!this.enabled) return done;
    const f: Fields = new Map();
    this.#addStatus(f, text);
    return f.size === 0 ? done : this.#queue(f);
  }

  /**
   * WATCHDOG=1. Call it only when the caller's own loop has proved healthy
   * (see {@link SdNotify.startWatchdog}); pings closer than
   * {@link SdNotify.watchdogDropGapMs} to the previous one are dropped.
   */
  watchdog(): Promise<void> {
    if (!this.enabled) return done;
    const now = this.#clock.elapsed();
    if (now - this.#lastWatchdogAt < this.watchdogDropGapMs()) return done;
    this.#lastWatchdogAt = now;
    return this.#queue(new Map([['WATCHDOG', '1']]));
  }

  /** STOPPING=1 with an optional STATUS=. Await it before exiting. */
  stopping(status?: string): Promise<void> {
    if (!this.enabled) return done;
    const f: Fields = new Map([['STOPPING', '1']]);
    this.#addStatus(f, status);
    return this.#queue(f);
  }

  /**
   * The watchdog period, WATCHDOG_USEC in ms (fractional); undefined when there is no
   * socket, no or a malformed WATCHDOG_USEC, or WATCHDOG_PID names another process
   * (the watchdog is then a child's, not ours).
   */
  watchdogPeriodMs(): number | undefined {
    if (!this.enabled) return undefined;
    const usec = this.#env.WATCHDOG_USEC ?? '';
    if (!/^[0-9]{1,15}$/.test(usec) || Number(usec) === 0) return undefined;
    const pid = this.#env.WATCHDOG_PID;
    if (pid !== undefined && pid !== '' && pid !== String(this.#pid)) return undefined;
    return Number(usec) / 1000;
  }

  /**
   * How often {@link SdNotify.startWatchdog} pings (ms): a quarter of the period.
   * sd_watchdog_enabled(3) advises half, but at half a single lost tick — a
   * ping dropped as too close because the timer fired a fraction of a
   * millisecond "early" by the monotonic clock (libuv's cached loop time), or
   * a loop stalled for a moment — doubles the gap to exactly WatchdogSec,
   * systemd's kill line. At a quarter one lost tick still leaves it at half.
   * Undefined when the watchdog is off ({@link SdNotify.watchdogPeriodMs}).
   */
  watchdogIntervalMs(): number | undefined {
    const period = this.watchdogPeriodMs();
    return period === undefined ? undefined : Math.max(1, Math.floor(period / 4));
  }

  /**
   * Pings closer than this to the last one are dropped (ms): `minWatchdogGapMs`,
   * but with the watchdog on never more than an eighth of the period — half
   * the tick, so a tick that fires early by any tolerance short of half its
   * interval is never dropped, and a dropped extra ping (a direct
   * {@link SdNotify.watchdog} call between ticks) never delays the next tick's.
   */
  watchdogDropGapMs(): number {
    const period = this.watchdogPeriodMs();
    return period === undefined ? this.#minGap : Math.min(this.#minGap, period / 8);
  }

  /**
   * Ping every {@link SdNotify.watchdogIntervalMs} (a quarter of WatchdogSec)
   * while `healthy()` is true; while it is false no ping goes out, so systemd
   * kills and restarts us after WatchdogSec. A healthy process's pings are
   * at most a tick apart plus the loop's and systemd-notify's delays, half
   * the period even with one tick lost. A no-op when the watchdog is off.
   * Returns a stop function.
   */
  startWatchdog(healthy: () => boolean): () => void {
    const every = this.watchdogIntervalMs();
    if (every === undefined) return () => {};
    let timer: TimerHandle | undefined;
    let wasHealthy = true;
    const tick = (): void => {
      let ok = false;
      try {
        ok = healthy();
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'watchdog health check threw');
      }
      if (ok) void this.watchdog();
      if (ok !== wasHealthy) {
        if (ok) this.#log.info({}, 'healthy again; watchdog pings resumed');
        else this.#log.warn({ everyMs: every }, 'unhealthy; watchdog pings withheld');
        wasHealthy = ok;
      }
      timer = this.#clock.setTimeout(tick, every);
    };
    tick();
    return () => {
      if (timer !== undefined) this.#clock.clearTimeout(timer);
      timer = undefined;
    };
  }

  /** Resolves when nothing is queued or in flight. */
  async flush(): Promise<void> {
    for (;;) {
      const wait = this.#pending?.promise ?? this.#inFlight;
      if (wait === undefined) return;
      await wait;
    }
  }

  #addStatus(f: Fields, status: string | undefined): void {
    if (status === undefined) return;
    const s = oneLine(status);
    if (s === this.#lastStatus) return;
    this.#lastStatus = s;
    f.set('STATUS', s);
  }

  #queue(fields: Fields): Promise<void> {
    if (this.#pending === undefined) {
      let resolve!: () => void;
      const promise = new Promise<void>((r) => (resolve = r));
      this.#pending = { fields: new Map(), promise, resolve };
    }
    for (const [k, v] of fields) this.#pending.fields.set(k, v);
    const { promise } = this.#pending;
    this.#pump();
    return promise;
  }

  #pump(): void {
    if (this.#inFlight !== undefined || this.#pending === undefined) return;
    const { fields, resolve } = this.#pending;
    this.#pending = undefined;
    const lines = [...fields].map(([k, v]) => `${k}=${v}`);
    this.#inFlight = this.#deliver(lines).then(() => {
      this.#inFlight = undefined;
      resolve();
      this.#pump();
    });
  }

  async #deliver(lines: string[]): Promise<void> {
    try {
      await this.#send(this.#socket, lines);
      this.#sent++;
    } catch (err) {
      this.#failed++;
      const ctx = { err: errorMessage(err), code: isIpphoneError(err) ? err.code : undefined, fields: lines, failed: this.#failed };
      if (!this.#warned) {
        this.#warned = true;
        this.#log.warn(ctx, 'sd_notify failed; systemd may not see readiness or watchdog pings');
      } else this.#log.debug(ctx, 'sd_notify failed');
    }
  }
}
