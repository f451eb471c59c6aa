/**
 * {@link SipUserAgent} over baresip 1.0.0's `ctrl_tcp` socket: netstring
 * framed JSON commands (one token each, answered in order) and events.
 *
 * Why it looks like this: the adapter owns the one connection (ctrl_tcp
 * serves a single client; a second connection silently replaces the first,
 * so nothing else may connect). A lost connection (baresip died, restarted,
 * or another client took the socket) fails every command in flight with
 * `TRANSPORT`, emits `down`, and reconnects with exponential backoff and
 * full jitter; each connection made emits `up`. A framing error poisons the
 * stream (no resync inside a byte stream), so the connection is dropped and
 * made again. Commands time out on the injected clock (a SIGSTOPped baresip
 * answers nothing). Registration retries are the agent's: libre's own retry
 * waits 30 s and more.
 */
import net from 'node:net';
import { systemClock, type Clock, type Random, type TimerHandle } from '../lib/clock.js';
import { IpphoneError, errorMessage, isIpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { baresipAor, commandBody, decodeCtrl, redactSecrets, sipEventOf, uanewParams, type CtrlEvent, type CtrlResponse } from './baresip-messages.js';
import { NetstringDecoder, encodeNetstring } from './netstring.js';
import type { SipEvent, SipUserAgent } from './user-agent.js';

export interface BaresipOptions {
  /** ctrl_tcp port (baresip's `ctrl_tcp_listen`). */
  port: number;
  /** ctrl_tcp host; default 127.0.0.1. */
  host?: string;
  /** Parent logger; the adapter logs under `mod: 'baresip'`. */
  log: Logger;
  /** Default {@link systemClock}. */
  clock?: Clock;
  /** Jitter source for reconnect delays. Default `Math.random`. */
  random?: Random;
  /** A command unanswered after this many ms rejects with `TIMEOUT`. Default 5000. */
  commandTimeoutMs?: number;
  /**
   * Digest credentials every account answers challenges with (`sip.passwordFile`, `sip.authUser`);
   * absent: none. The password goes into `uanew` only, never into a log line or an error.
   */
  auth?: { user: string; password: string } | null;
  /**
   * Reconnect backoff: attempt n (0-based) waits `random() × min(maxMs, baseMs × 2^n)` ms.
   * Defaults baseMs 100, maxMs 5000 (baresip restarts in well under a second).
   */
  reconnect?: { baseMs?: number; maxMs?: number };
}

interface Pending {
  command: string;
  resolve: (r: CtrlResponse) => void;
  reject: (err: IpphoneError) => void;
  timer: TimerHandle;
}

type State = 'new' | 'connecting' | 'up' | 'waiting' | 'closed';

export class BaresipUserAgent implements SipUserAgent {
  readonly #o: BaresipOptions;
  readonly #log: Logger;
  readonly #clock: Clock;
  readonly #random: Random;
  #state: State = 'new';
  #listener: (e: SipEvent) => void = () => undefined;
  #socket: net.Socket | null = null;
  /** Bumped per connection, so callbacks of a lost socket cannot touch the next one. */
  #gen = 0;
  #attempt = 0;
  #timer: TimerHandle | null = null;
  #seq = 0;
  readonly #pending = new Map<string, Pending>();
  /** baresip's name of an account (`sip:u@h:p`) → the AOR the agent gave. */
  readonly #aors = new Map<string, string>();

  constructor(opts: BaresipOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'baresip' });
    this.#clock = opts.clock ?? systemClock;
    this.#random = opts.random ?? Math.random;
  }

  start(listener: (e: SipEvent) => void): void {
    if (this.#state !== 'new') return;
    this.#listener = listener;
    this.#connect();
  }

  connected(): boolean {
    return this.#state === 'up';
  }

  async addAccount(aor: string, regintS: number): Promise<void> {
    const params = uanewParams(aor, regintS, this.#o.auth);
    const name = baresipAor(aor);
    // A UA of the same AOR left from before (the agent re-adds after `up`, but baresip may not have restarted)
    // would register twice and survive one uadel: delete it first. ENOENT (none) is the usual answer.
    await this.#command('uadel', name);
    // Named before uanew: its REGISTER_OK/FAIL may arrive in the same chunk as the response.
    this.#aors.set(name, aor);
    const r = await this.#command('uanew', params).catch((err: unknown) => {
      this.#aors.delete(name);
      throw err;
    });
    if (!r.ok) {
      this.#aors.delete(name);
      throw new IpphoneError('baresip refused the account', 'SIP_REFUSED', { aor, data: r.data });
    }
  }

  async removeAccount(aor: string): Promise<void> {
    const name = baresipAor(aor);
    // uadel's only error is ENOENT (no such account), which the port treats as done.
    const r = await this.#command('uadel', name);
    this.#aors.delete(name);
    if (!r.ok) this.#log.debug({ aor, data: r.data }, 'account to remove was not there');
  }

  async dial(aor: string, uri: string): Promise<void> {
    // Make the account current first: uadel of the current UA can leave baresip's current UA dangling.
    const found = await this.#command('uafind', baresipAor(aor));
    if (!found.ok) throw new IpphoneError('baresip has no such account to dial from', 'SIP_REFUSED', { aor, data: found.data });
    const r = await this.#command('dial', uri);
    if (!r.ok) throw new IpphoneError('baresip refused to dial', 'SIP_REFUSED', { aor, uri, data: r.data });
  }

  async answer(): Promise<void> {
    const r = await this.#command('accept', undefined);
    if (!r.ok) throw new IpphoneError('baresip refused to answer', 'SIP_REFUSED', { data: r.data });
  }

  async hangup(): Promise<void> {
    const r = await this.#command('hangup', undefined);
    if (!r.ok) throw new IpphoneError('baresip refused to hang up', 'SIP_REFUSED', { data: r.data });
  }

  async close(): Promise<void> {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#gen++;
    if (this.#timer !== null) this.#clock.clearTimeout(this.#timer);
    this.#timer = null;
    this.#failPending('baresip adapter closed');
    const s = this.#socket;
    this.#socket = null;
    if (s && !s.destroyed) {
      await new Promise<void>((resolve) => {
        s.once('close', () => resolve());
        s.destroy();
      });
    }
  }

  /** Send one command; resolves with baresip's response (ok or not), rejects on `TRANSPORT` or `TIMEOUT`. */
  #command(command: string, params: string | undefined): Promise<CtrlResponse> {
    const socket = this.#socket;
    if (this.#state !== 'up' || socket === null) {
      return Promise.reject(new IpphoneError('baresip control connection is down', 'TRANSPORT', { command }));
    }
    const token = String(++this.#seq);
    return new Promise<CtrlResponse>((resolve, reject) => {
      const timer = this.#clock.setTimeout(() => {
        this.#pending.delete(token);
        this.#log.warn({ command, token, timeoutMs: this.#timeoutMs() }, 'baresip command unanswered');
        reject(new IpphoneError('baresip did not answer the command in time', 'TIMEOUT', { command, timeoutMs: this.#timeoutMs() }));
      }, this.#timeoutMs());
      this.#pending.set(token, { command, resolve, reject, timer });
      this.#log.debug({ command, params: redactSecrets(params), token }, 'baresip command');
      socket.write(encodeNetstring(commandBody(command, params, token)));
    });
  }

  #timeoutMs(): number {
    return this.#o.commandTimeoutMs ?? 5000;
  }

  #connect(): void {
    const gen = ++this.#gen;
    this.#state = 'connecting';
    const decoder = new NetstringDecoder();
    const socket = net.connect({ host: this.#o.host ?? '127.0.0.1', port: this.#o.port });
    socket.setNoDelay(true);
    this.#socket = socket;
    let reason = 'baresip closed the connection';
    socket.once('connect', () => {
      if (gen !== this.#gen) return;
      this.#state = 'up';
      this.#attempt = 0;
      // A new connection may be a new baresip: it holds no account the agent knows of.
      this.#aors.clear();
      this.#log.info({ port: this.#o.port }, 'baresip control connection up');
      this.#emit({ type: 'up' });
    });
    socket.on('data', (chunk: Buffer) => {
      if (gen !== this.#gen) return;
      try {
        decoder.push(chunk, (payload) => this.#onFrame(payload));
      } catch (err) {
        reason = `framing: ${errorMessage(err)}`;
        this.#log.warn({ err: errorMessage(err), code: isIpphoneError(err) ? err.code : undefined }, 'baresip stream unreadable, reconnecting');
        socket.destroy();
      }
    });
    socket.on('error', (err) => {
      reason = err.message;
    });
    socket.once('close', () => this.#lost(gen, reason));
  }

  #lost(gen: number, reason: string): void {
    if (gen !== this.#gen || this.#state === 'closed') return;
    const wasUp = this.#state === 'up';
    this.#socket = null;
    this.#failPending(`baresip control connection lost: ${reason}`);
    const cap = Math.min(this.#o.reconnect?.maxMs ?? 5000, (this.#o.reconnect?.baseMs ?? 100) * 2 ** Math.min(this.#attempt, 30));
    const delayMs = Math.floor(this.#random() * cap);
    this.#attempt++;
    this.#state = 'waiting';
    this.#timer = this.#clock.setTimeout(() => {
      this.#timer = null;
      if (this.#state === 'waiting') this.#connect();
    }, delayMs);
    if (wasUp) {
      this.#log.info({ reason, retryMs: delayMs }, 'baresip control connection down');
      this.#emit({ type: 'down', reason });
    } else {
      this.#log.debug({ reason, retryMs: delayMs, attempt: this.#attempt }, 'baresip control connection failed');
    }
  }

  #failPending(message: string): void {
    for (const [token, p] of this.#pending) {
      this.#clock.clearTimeout(p.timer);
      p.reject(new IpphoneError(message, 'TRANSPORT', { command: p.command, token }));
    }
    this.#pending.clear();
  }

  #onFrame(payload: Buffer): void {
    let msg: CtrlResponse | CtrlEvent;
    try {
      msg = decodeCtrl(payload);
    } catch (err) {
      // A well-framed message we cannot read loses only itself.
      this.#log.warn({ err: errorMessage(err), bytes: payload.length }, 'baresip message ignored');
      return;
    }
    if (msg.kind === 'response') {
      // An answer to uanew echoes the password: hidden before the answer can reach a log or an error.
      msg.data = redactSecrets(msg.data);
      const p = msg.token === undefined ? undefined : this.#pending.get(msg.token);
      if (p === undefined) {
        this.#log.debug({ token: msg.token }, 'baresip response to no pending command');
        return;
      }
      this.#pending.delete(msg.token as string);
      this.#clock.clearTimeout(p.timer);
      this.#log.debug({ command: p.command, ok: msg.ok, token: msg.token }, 'baresip response');
      p.resolve(msg);
      return;
    }
    const e = sipEventOf(msg, (name) => this.#aors.get(name) ?? name);
    this.#log.debug({ event: msg.type, aor: msg.accountaor, peer: msg.peeruri, param: redactSecrets(msg.param) }, 'baresip event');
    if (e !== null) this.#emit(e);
  }

  #emit(e: SipEvent): void {
    try {
      this.#listener(e);
    } catch (err) {
      this.#log.error({ err: errorMessage(err), event: e.type }, 'SIP event listener threw');
    }
  }
}
