/**
 * The phone's SIP side, wired: runs the pure registration controller
 * (sip-registration.ts) and call machine (call-control.ts) over a
 * {@link SipUserAgent}, the hook switch, the keypad, the display and the
 * message lamp. The agent gives it the home after every step and gets back
 * `sip-failed` (a pointer whose registrar refused us), `busy` (off hook or a
 * call not idle), events and the status's `sip` object.
 *
 * The call screen overlays the services page: the agent's PhoneUi draws into
 * {@link SipPhone.display} and reads keys from {@link SipPhone.keypad}; while
 * the handset is off hook or a call is not idle, rows 1… show the call (row 0
 * keeps the status row) and keys go to the call, not to the menu. On hook and
 * idle, both pass straight through — the services screen is untouched.
 */
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Display, HookSwitch, Keypad, Led } from '../hw/types.js';
import type { Pointer } from '../protocol/types.js';
import type { SipEvent, SipUserAgent } from '../sip/user-agent.js';
import { callBusy, callLines, initialCallState, nextCall, type CallEffect, type CallInput, type CallPhase, type CallState } from './call-control.js';
import { initialRegState, nextReg, unregisteredReason, type RegEffect, type RegInput, type RegistrationConfig, type RegState, type SipUnregisteredReason } from './sip-registration.js';

/** Half-period of the message lamp's blink while a call rings in (ms). */
export const LAMP_BLINK_MS = 500;

export interface SipStatus {
  /** Id of the call manager whose registrar the phone is registered at, or null. */
  registrar: string | null;
  call: CallPhase;
  /** Why the phone is not registered at its home's registrar (sip-registration.ts), or null when it is. */
  reason: SipUnregisteredReason | null;
}

export interface SipPhoneHost {
  /** Registration at `cm` failed: feed the failover machine (`sip-failed`). */
  sipFailed(cm: string, reason: string): void;
  /** The phone became busy or idle (off hook, or a call not idle). */
  busy(busy: boolean): void;
  /** An event for `P/phone/{id}/event`. */
  event(e: Record<string, unknown> & { type: string }): void;
  /** The status changed (registrar or call). */
  changed(): void;
}

export interface SipPhoneOptions {
  ua: SipUserAgent;
  cfg: RegistrationConfig;
  clock: Clock;
  log: Logger;
  display: Display;
  keypad: Keypad | null;
  hook: HookSwitch | null;
  /** The message lamp, where the board has one: blinks while a call rings in. */
  lamp: Led | null;
  host: SipPhoneHost;
}

export class SipPhone {
  readonly #o: SipPhoneOptions;
  #reg: RegState;
  #call: CallState;
  #regTimer: TimerHandle | null = null;
  #lampTimer: TimerHandle | null = null;
  #lampOn = false;
  #busy = false;
  #uiLines: readonly string[] = [];
  #uiKey: ((key: string) => void) | null = null;
  /** True while inside {@link update}: calls back into the agent wait for a microtask. */
  #inUpdate = false;
  #closed = false;

  /** What the PhoneUi draws into: the services screen, overlaid by the call screen. */
  readonly display: Display;
  /** What the PhoneUi reads keys from: the keys the call does not take. */
  readonly keypad: Keypad;

  constructor(opts: SipPhoneOptions) {
    this.#o = opts;
    this.#reg = initialRegState(opts.cfg);
    this.#call = initialCallState(false);
    const real = opts.display;
    this.display = {
      cols: real.cols,
      rows: real.rows,
      ...(real.charset !== undefined ? { charset: real.charset } : {}),
      start: async () => {},
      show: (lines) => {
        this.#uiLines = [...lines];
        this.#draw();
      },
      close: async () => {},
    };
    this.keypad = {
      start: async () => {},
      onKey: (handler) => {
        this.#uiKey = handler;
      },
      close: async () => {},
    };
  }

  /** Listen to the hook, the keypad and the user agent. */
  start(): void {
    const o = this.#o;
    o.keypad?.onKey((k) => this.#key(k));
    o.hook?.onChange((offHook) => this.#callInput({ type: 'hook', offHook }));
    if (o.hook?.isOffHook()) this.#callInput({ type: 'hook', offHook: true });
    o.ua.start((e) => this.#uaEvent(e));
  }

  /** The failover machine's home after a step; `searching`: no home, a move under way. */
  update(list: readonly Pointer[], home: string | null, searching: boolean): void {
    const p = home === null ? undefined : list.find((x) => x.id === home);
    this.#inUpdate = true;
    try {
      this.#regInput({ type: 'target', home: p ?? null, searching: p === undefined && searching });
    } finally {
      this.#inUpdate = false;
    }
  }

  status(): SipStatus {
    return { registrar: this.#reg.registered?.cm ?? null, call: this.#call.phase, reason: unregisteredReason(this.#reg) };
  }

  /** The lines on the real display's rows 1… while the call screen shows, else null. */
  callLines(): string[] | null {
    return callLines(this.#call);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#regTimer !== null) this.#o.clock.clearTimeout(this.#regTimer);
    this.#setLamp(false);
    await this.#o.ua.close();
  }

  // ---- inputs ----------------------------------------------------------------

  #uaEvent(e: SipEvent): void {
    if (this.#closed) return;
    switch (e.type) {
      case 'up':
        return this.#regInput({ type: 'ua-up' });
      case 'down':
        this.#o.log.warn({ reason: e.reason }, 'sip user agent down');
        this.#regInput({ type: 'ua-down' });
        return this.#callInput({ type: 'ua-down' });
      case 'registered':
        return this.#regInput({ type: 'registered', aor: e.aor });
      case 'register-failed':
        return this.#regInput({ type: 'register-failed', aor: e.aor, reason: e.reason, ...(e.status !== undefined ? { status: e.status } : {}) });
      case 'incoming':
      case 'ringing':
      case 'established':
        return this.#callInput({ type: e.type, peer: e.peer });
      case 'closed':
        return this.#callInput({ type: 'closed', peer: e.peer, reason: e.reason });
    }
  }

  #key(k: string): void {
    // Off hook or in a call, the keypad is the phone's; on hook and idle, the menu's.
    if (callBusy(this.#call)) this.#callInput({ type: 'key', key: k });
    else this.#uiKey?.(k);
  }

  #regInput(input: RegInput): void {
    const regBefore = this.#reg.registered?.cm ?? null;
    const refusedBefore = this.#reg.authFailed !== null;
    const step = nextReg(this.#reg, input, this.#o.clock.elapsed());
    this.#reg = step.state;
    for (const fx of step.effects) this.#regEffect(fx);
    // Published on a change of registrar, and when refused credentials start or stop being the reason.
    if ((this.#reg.registered?.cm ?? null) !== regBefore || (this.#reg.authFailed !== null) !== refusedBefore) this.#changed();
  }

  #regEffect(fx: RegEffect): void {
    const o = this.#o;
    switch (fx.type) {
      case 'add':
        o.ua.addAccount(fx.aor, fx.regintS).catch((err: unknown) => this.#regInput({ type: 'add-failed', aor: fx.aor, reason: errorMessage(err) }));
        return;
      case 'remove':
        o.ua.removeAccount(fx.aor).catch((err: unknown) => o.log.warn({ aor: fx.aor, err: errorMessage(err) }, 'sip account not removed'));
        return;
      case 'failed':
        return this.#toAgent(() => o.host.sipFailed(fx.cm, fx.reason));
      case 'registered':
        return o.host.event({ type: 'sip-registered', cm: fx.cm, ms: Math.round(fx.ms) });
      case 'auth-failed':
        return o.host.event({ type: 'sip-auth-failed', cm: fx.cm, reason: fx.reason, retryMs: fx.retryMs });
      case 'wake':
        if (this.#regTimer !== null) o.clock.clearTimeout(this.#regTimer);
        this.#regTimer = fx.at === null ? null : o.clock.setTimeout(() => this.#regInput({ type: 'wake' }), Math.ceil(fx.at - o.clock.elapsed()));
        return;
      case 'log':
        o.log[fx.level](fx.data, fx.msg);
        return;
    }
  }

  #callInput(input: CallInput): void {
    if (this.#closed) return;
    const before = this.#call;
    const r = this.#reg.registered;
    const step = nextCall(before, input, { registered: r === null ? null : { aor: r.aor, registrar: r.registrar } });
    this.#call = step.state;
    for (const fx of step.effects) this.#callEffect(fx);
    const after = this.#call;
    if (after.phase !== before.phase) {
      this.#o.log.info({ from: before.phase, to: after.phase, peer: after.peer ?? before.peer }, 'call');
      if ((after.phase === 'idle') !== (before.phase === 'idle')) this.#regInput({ type: 'call-idle', idle: after.phase === 'idle' });
      this.#changed();
    }
    const busy = callBusy(after);
    if (busy !== this.#busy) {
      this.#busy = busy;
      this.#toAgent(() => this.#o.host.busy(busy));
    }
    this.#draw();
  }

  #callEffect(fx: CallEffect): void {
    const o = this.#o;
    const warn = (what: string) => (err: unknown) => o.log.warn({ err: errorMessage(err) }, what);
    switch (fx.type) {
      case 'dial':
        o.ua.dial(fx.aor, fx.uri).catch((err: unknown) => {
          o.log.warn({ uri: fx.uri, err: errorMessage(err) }, 'dial failed');
          this.#callInput({ type: 'dial-failed', reason: errorMessage(err) });
        });
        return;
      case 'answer':
        o.ua.answer().catch(warn('answer failed'));
        return;
      case 'hangup':
        o.ua.hangup().catch(warn('hangup failed'));
        return;
      case 'lamp':
        return this.#setLamp(fx.blink);
    }
  }

  // ---- outputs ---------------------------------------------------------------

  /** Into the agent: never from inside its own step (update), where it would re-enter. */
  #toAgent(fn: () => void): void {
    if (this.#inUpdate) queueMicrotask(() => !this.#closed && fn());
    else fn();
  }

  #changed(): void {
    if (!this.#inUpdate) this.#o.host.changed();
  }

  #setLamp(blink: boolean): void {
    const o = this.#o;
    if (this.#lampTimer !== null) o.clock.clearTimeout(this.#lampTimer);
    this.#lampTimer = null;
    if (o.lamp === null) return;
    if (!blink) {
      this.#lampOn = false;
      o.lamp.set(false);
      return;
    }
    const toggle = (): void => {
      this.#lampOn = !this.#lampOn;
      o.lamp!.set(this.#lampOn);
      this.#lampTimer = o.clock.setTimeout(toggle, LAMP_BLINK_MS);
    };
    toggle();
  }

  #draw(): void {
    if (this.#closed) return;
    const real = this.#o.display;
    const call = callLines(this.#call);
    if (call === null) return real.show(this.#uiLines);
    real.show(real.rows <= 1 ? [call.join(' ')] : [this.#uiLines[0] ?? '', ...call].slice(0, real.rows));
  }
}
