/**
 * The call manager's watch on its SIP server (shared/CONTRACT.md, the call
 * manager's `sip`): an OPTIONS request over TCP to `sip.registrar` every
 * `probeMs`; a probe not answered by the next one (`probeMs` later) is a
 * miss, and so at once is a probe whose connection is refused or reset
 * before it is answered (a killed server's kernel says so with an RST: no
 * reason to wait out the period). `missLimit` misses in a row make the call
 * manager report itself offline (sip-health.ts decides; call-manager.ts
 * acts), so a dead server is offline within `missLimit × probeMs` of its
 * death rather than up to one period later.
 *
 * Any SIP response answers a probe, 2xx or not: a 404 or 483 comes from a
 * server process that parses and routes requests, so it lives. Only silence
 * — no connection, a reset, no response in time — is a miss. A response has
 * to match the outstanding probe (Call-ID and CSeq number, method OPTIONS);
 * a late answer to an older probe does not count.
 *
 * One TCP connection is kept and reused; when it fails it is dropped and the
 * next probe opens a new one. The clock and random source are injected; the
 * socket is node:net (tests point it at a real Kamailio or a local server).
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import { createConnection, type Socket } from 'node:net';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { CmConfig } from '../config/cm-config.js';
import { parseSipUri, type SipUri } from '../protocol/sip-uri.js';
import { buildOptions, SipStreamReader } from '../sip/options.js';
import { nextSipHealth, SIP_HEALTH_START, type SipHealthState, type SipProbeResult } from './sip-health.js';

export interface SipProbeOptions {
  target: SipUri;
  /** ms between probes, and the time one has to be answered. */
  probeMs: number;
  missLimit: number;
  /** From's user part (the call manager id). */
  user: string;
  clock: Clock;
  log: Logger;
  /** The server's liveness changed (not called for the initial online). */
  onChange(online: boolean): void;
  /** Default node:crypto `randomBytes`. */
  randomBytes?: (n: number) => Buffer;
}

interface Pending {
  callId: string;
  cseq: number;
}

export class SipProbe {
  readonly #o: SipProbeOptions;
  readonly #random: (n: number) => Buffer;
  #state: SipHealthState = SIP_HEALTH_START;
  #socket: Socket | undefined;
  #connected = false;
  #reader = new SipStreamReader();
  #pending: Pending | undefined;
  #cseq = 0;
  #timer: TimerHandle | undefined;
  #stopped = false;
  /** Probes answered / missed, responses that answered no outstanding probe, and the last status code seen. */
  answered = 0;
  stray = 0;
  missed = 0;
  lastStatus: number | undefined;

  constructor(o: SipProbeOptions) {
    this.#o = o;
    this.#random = o.randomBytes ?? cryptoRandomBytes;
  }

  /** True unless `missLimit` probes in a row went unanswered (and none since). */
  get online(): boolean {
    return this.#state.online;
  }

  /** Send the first probe now and one every `probeMs`. */
  start(): void {
    if (this.#timer !== undefined || this.#stopped) return;
    this.#tick();
  }

  /** Stop probing and close the connection. Idempotent. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#drop();
  }

  #tick(): void {
    if (this.#pending !== undefined) {
      this.#pending = undefined;
      this.#record('missed');
    }
    if (this.#stopped) return;
    this.#pending = { callId: `${this.#token(12)}@ipphone-cm`, cseq: ++this.#cseq };
    if (this.#connected) this.#send();
    else {
      // Not connected a probe period after trying (a SYN into the void): try afresh.
      this.#drop();
      this.#open();
    }
    this.#timer = this.#o.clock.setTimeout(() => this.#tick(), this.#o.probeMs);
  }

  #open(): void {
    const { host, port } = this.#o.target;
    const s = createConnection({ host, port });
    this.#socket = s;
    this.#reader = new SipStreamReader();
    s.setNoDelay(true);
    s.setEncoding('latin1'); // one char per byte: Content-Length counts bytes
    s.on('connect', () => {
      this.#connected = true;
      this.#send();
    });
    s.on('data', (chunk: string) => this.#onData(s, chunk));
    s.on('error', (err) => this.#o.log.debug({ err: errorMessage(err) }, 'sip registrar connection failed'));
    s.on('close', () => {
      if (this.#socket !== s) return; // dropped by us: its probe is accounted for
      this.#socket = undefined;
      this.#connected = false;
      // Refused or reset with a probe outstanding: that probe has failed now.
      if (this.#pending !== undefined && !this.#stopped) {
        this.#pending = undefined;
        this.#record('missed');
      }
    });
  }

  #send(): void {
    const s = this.#socket;
    const p = this.#pending;
    if (s === undefined || p === undefined || s.localAddress === undefined || s.localPort === undefined) return;
    s.write(
      buildOptions({
        target: this.#o.target,
        local: { host: s.localAddress, port: s.localPort },
        branch: this.#token(12),
        tag: this.#token(8),
        callId: p.callId,
        cseq: p.cseq,
        user: this.#o.user,
      }),
      'latin1',
    );
  }

  #onData(s: Socket, chunk: string): void {
    if (s !== this.#socket) return;
    let responses;
    try {
      responses = this.#reader.push(chunk);
    } catch (err) {
      this.#o.log.warn({ err: errorMessage(err) }, 'sip registrar sent something that is not SIP; reconnecting');
      this.#drop();
      return;
    }
    for (const r of responses) {
      const p = this.#pending;
      if (p === undefined || r.callId !== p.callId || r.cseq?.seq !== p.cseq || r.cseq.method !== 'OPTIONS') {
        this.stray++;
        continue;
      }
      if (r.status < 200) continue; // provisional: the final answer follows
      this.#pending = undefined;
      this.lastStatus = r.status;
      this.#record('answered');
    }
  }

  #record(result: SipProbeResult): void {
    if (result === 'answered') this.answered++;
    else this.missed++;
    const step = nextSipHealth(this.#state, result, this.#o.missLimit);
    this.#state = step.state;
    if (result === 'missed') this.#o.log.debug({ misses: step.state.misses }, 'sip probe unanswered');
    if (step.changed === undefined) return;
    const { host, port } = this.#o.target;
    if (step.changed === 'offline') this.#o.log.warn({ registrar: `${host}:${port}`, misses: step.state.misses }, 'sip registrar not answering: offline');
    else this.#o.log.info({ registrar: `${host}:${port}`, status: this.lastStatus }, 'sip registrar answers again: online');
    this.#o.onChange(step.state.online);
  }

  #drop(): void {
    this.#socket?.destroy();
    this.#socket = undefined;
    this.#connected = false;
  }

  #token(n: number): string {
    return this.#random(n).toString('hex');
  }
}

/**
 * The probe of a call manager's `sip.registrar` (undefined without `sip`),
 * not started. While its server is silent the call manager is a dead one to
 * the phones: `onChange(false)` makes its signed state offline (phones fail
 * over with `cm-offline`, peers push backups to its phones, as for a real
 * offline), `/healthz` says 503, and keep-alives go unanswered — a phone
 * that saw nothing of this call manager yet ignores an offline (cm-liveness.ts,
 * STATE_RUN_UNKNOWN) and would otherwise home here, and acked probes would
 * make it look healthy for a fallback. The offline is the run's own newer
 * signed state, never its will (run-state.ts): replayed later it is refused. Restarting the process would not bring
 * the PBX back, so the watchdog is left alone.
 */
export function sipProbeFor(config: CmConfig, clock: Clock, root: Logger, onChange: (online: boolean) => void): SipProbe | undefined {
  const sip = config.sip;
  if (sip === undefined) return undefined;
  const target = parseSipUri(sip.registrar, 'sip/registrar');
  if (!target.ok) return undefined; // validated with the config
  const log = root.child({ mod: 'sip' });
  return new SipProbe({
    target: target.uri,
    probeMs: sip.probeMs,
    missLimit: sip.missLimit,
    user: config.cmId,
    clock,
    log,
    onChange: (online) => {
      onChange(online);
      log.info({ online, registrar: sip.registrar }, online ? 'reporting online: sip registrar answers' : 'reporting offline: sip registrar silent');
    },
  });
}
