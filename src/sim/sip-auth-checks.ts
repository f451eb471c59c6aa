/**
 * The checkers of refused SIP credentials (CONTRACT.md: "A registrar that
 * refuses the phone's own credentials (401/403 after they were sent) is not a
 * failure of that call manager: the phone does not rehome for it, and its
 * status says why it is not registered"), judged on the world's truth (the
 * registrars' tables, bindings and answers, src/sim/sip-auth.ts) and on what
 * the phone publishes:
 *
 * - `auth-no-rehome`: no `rehomed` event for `sip-failed` leaving a home whose
 *   registrar answered the phone all through the window before the move
 *   (`noRehomeWindowMs`: a new account's REGISTER is answered or failed by the
 *   phone's `registerTimeoutMs` inside it) while none of the phone's REGISTERs
 *   there went unanswered (Timer F) on that home: the only answers it can have
 *   had are 200 and refusals.
 * - `auth-shown`: from `showMs` after a refusal by its home's registrar reached
 *   the phone, and until it is registered there again, the last status it
 *   published on its home's broker says `sip.reason: "sip-auth-failed"` and
 *   `sip.registrar: null` (judged while its connection there is whole).
 * - `auth-no-storm`: two refusals the home's registrar sends the phone for
 *   REGISTERs (not unregisters) while it stays on that home are at least
 *   `authRetryMs` − 2 link crossings apart.
 * - `auth-recovers`: once its credentials are right again, a phone refused
 *   there is registered at its home within the wait the config allows
 *   (`authRetryMs` doubling per refusal, capped at 10 minutes, from the last
 *   refusal) + `recoverMs`, while the registrar answers it.
 *
 * A phone's "stint" is one process on one home pointer: a new process or a new
 * home starts the product's refusal count again (sip-registration.ts), so the
 * checkers do too.
 */
import type { Net } from './broker.js';
import type { SipAuth } from './sip-auth.js';
import { retryWait } from './sip-auth.js';
import type { SipWorld } from './sip.js';
import { sipUser } from './group.js';

export type AuthInvariant = 'auth-no-rehome' | 'auth-shown' | 'auth-no-storm' | 'auth-recovers';

export interface AuthBounds {
  authRetryMs: number;
  /** The registrar answered this long before a `sip-failed` move, and no Timer F fired: no time-out can explain it (ms). */
  noRehomeWindowMs: number;
  /** A refusal reached the phone this long ago: its status says so (ms). */
  showMs: number;
  /** Credentials right and the retry wait over this long: registered (ms). */
  recoverMs: number;
  /** As `sip-at-home`'s `registerMs`: a REGISTER sent before the registrar answered again ends by Timer F (ms). */
  registerMs: number;
  /** Two link crossings' worth of jitter between refusals (ms). */
  jitterMs: number;
}

/**
 * `noRehomeWindowMs` = `registerTimeoutMs` + 2 crossings + 1 s; `showMs` = 2
 * crossings + 1 s (the answer reaches the phone, the status its broker; flash saves before a
 * status take milliseconds); `recoverMs` = 6 crossings (REGISTER, 401 challenge, REGISTER with
 * credentials, a stale nonce's second challenge, 200) + 1 s.
 */
export function authBounds(authRetryMs: number, registerTimeoutMs: number, maxDelayMs: number, registerMs: number): AuthBounds {
  return {
    authRetryMs,
    noRehomeWindowMs: registerTimeoutMs + 2 * maxDelayMs + 1000,
    showMs: 2 * maxDelayMs + 1000,
    recoverMs: 6 * maxDelayMs + 1000,
    registerMs,
    jitterMs: 2 * maxDelayMs,
  };
}

/** What the checkers read of a phone host. */
export interface AuthPhone {
  readonly phoneId: string;
  readonly bootedAt: number | null;
  readonly agent: { readonly home: string | null; readonly state: { readonly list: readonly { id: string; sip?: string; broker?: string }[] } } | null;
  /** Off hook or a call in its user agent: an account kept for a call is not re-made until it ends (sip-registration.ts). */
  readonly busy: boolean;
}

interface Stint {
  key: string;
  /** When the checker saw it start (within 50 ms of the product's home change). */
  start: number;
  home: string | null;
  /** The home's registrar (its call manager's id), or null (no home, or a home without `sip`). */
  reg: string | null;
  broker: string | null;
  /** Refusals delivered since the phone last registered at `reg`, and when the last one arrived. */
  k: number;
  lastDelivered: number;
  /** A REGISTER of the phone's at `reg` went unanswered (Timer F) in this stint. */
  timedOut: boolean;
  /** When the last refusal of a REGISTER was sent (registrar side). */
  lastSent: number | null;
  /** Since when the registrar answers the phone (link whole both ways, up), or null. */
  answering: number | null;
  /** Since when the phone's connection to its home broker is whole, or null. */
  connected: number | null;
  /** Since when the phone is idle (on hook, no call), or null while busy. */
  idle: number | null;
}

export class AuthChecks {
  readonly #stints = new Map<string, Stint>();
  /** Per phone: the last home it left, when, and since when that home's registrar had answered it then. */
  readonly #left = new Map<string, { from: string; reg: string; start: number; at: number; answering: number | null }>();
  /** `${phone} ${registrar}` → since when that registrar answers the phone (sampled every 50 ms). */
  readonly #answers = new Map<string, number>();
  /** `${phone} ${broker}` → the `sip` object of the last status the phone published there. */
  readonly #status = new Map<string, { registrar?: unknown; reason?: unknown }>();
  #last = -Infinity;

  constructor(
    readonly now: () => number,
    readonly sw: SipWorld,
    readonly auth: SipAuth,
    readonly net: Net,
    readonly phones: ReadonlyMap<string, AuthPhone>,
    readonly b: AuthBounds,
    readonly violate: (inv: AuthInvariant, detail: string) => void,
    readonly counted: () => void,
  ) {
    auth.onRefusalSent = (phone, cm) => this.#sent(phone, cm);
    auth.onRefusalDelivered = (phone, cm) => this.#delivered(phone, cm);
    auth.onTimedOut = (phone, cm) => {
      const s = this.#current(phone);
      if (s !== undefined && s.reg === cm) s.timedOut = true;
    };
    auth.onRegisteredDelivered = (phone, cm) => {
      const s = this.#current(phone);
      if (s === undefined || s.reg !== cm) return;
      s.k = 0;
      s.timedOut = false;
    };
  }

  /**
   * `sip-at-home` leaves a phone to these checkers while its home's registrar refuses its
   * credentials, or it was refused there and is not registered there again.
   */
  exempt(phone: string): boolean {
    const s = this.#stints.get(phone);
    if (s === undefined || s.reg === null) return false;
    return this.auth.refuses(s.reg, phone) || s.k > 0;
  }

  /** A phone's published message (broker observer). */
  onPublish(broker: string, identity: string | null, topic: string, payload: Buffer): void {
    const m = /^ipphone\/v1\/phone\/([^/]+)\/(status|event)$/.exec(topic);
    if (m === null || identity !== m[1]) return;
    let j: { sip?: { registrar?: unknown; reason?: unknown }; type?: unknown; reason?: unknown; from?: unknown } | undefined;
    try {
      j = JSON.parse(payload.toString('utf8')) as typeof j;
    } catch {
      return;
    }
    if (m[2] === 'status') {
      if (j?.sip !== undefined) this.#status.set(`${m[1]} ${broker}`, j.sip);
      return;
    }
    if (j?.type !== 'rehomed' || j.reason !== 'sip-failed' || typeof j.from !== 'string') return;
    const p = this.phones.get(m[1]!);
    if (p !== undefined) this.#sync(m[1]!, p, this.now());
    const left = this.#left.get(m[1]!);
    if (left === undefined || left.from !== j.from) return;
    this.#left.delete(m[1]!);
    this.counted();
    // The home went to none at the decision; the sample that saw it may be 50 ms late. The registrar
    // answered all through the product's registration deadline, or since before this home began
    // (every REGISTER of the stint was sent to an answering registrar, and none timed out).
    if (left.answering !== null && (left.at - 50 - left.answering > this.b.noRehomeWindowMs || left.answering < left.start - 200)) {
      this.violate('auth-no-rehome', `${m[1]} left ${left.from} for sip-failed though its registrar had answered it for ${left.at - left.answering} ms, since before it became its home ${left.at - left.start} ms before (window ${this.b.noRehomeWindowMs} ms), no REGISTER timed out${this.auth.refuses(left.reg, m[1]!) ? ', refusing its credentials' : ''}`);
    }
  }

  tick(): void {
    const now = this.now();
    if (now - this.#last < 50) return;
    this.#last = now;
    for (const [pid, p] of this.phones) {
      for (const r of this.sw.byCm.values()) {
        const k = `${pid} ${r.cm}`;
        if (!this.sw.answers(pid, r)) this.#answers.delete(k);
        else if (!this.#answers.has(k)) this.#answers.set(k, now);
      }
      const s = this.#sync(pid, p, now);
      if (s.reg === null) continue;
      const r = this.sw.byCm.get(s.reg)!;
      s.answering = this.#answers.get(`${pid} ${r.cm}`) ?? null;
      s.connected = this.#whole(pid, s.broker) ? (s.connected ?? now) : null;
      s.idle = p.busy ? null : (s.idle ?? now);
      if (s.k === 0) continue;
      this.counted();
      // auth-shown: refused, not registered there since: the status says so.
      if (s.connected !== null && now - Math.max(s.lastDelivered, s.connected) > this.b.showMs) {
        const b = this.net.byUrl(s.broker!)!;
        const st = this.#status.get(`${pid} ${b.id}`);
        if (st?.reason !== 'sip-auth-failed' || st.registrar !== null) {
          this.violate('auth-shown', `${pid} refused by ${s.reg}'s registrar ${now - s.lastDelivered} ms ago and not registered since, its status on ${b.id} says registrar ${String(st?.registrar)} reason ${String(st?.reason)} (bound ${this.b.showMs} ms)`);
        }
      }
      // auth-recovers: credentials right again, the allowed wait over: registered there.
      // While a call is up the refused account is kept for it (re-making it would end the call): judged from the call's end.
      if (this.auth.refuses(s.reg, pid) || s.answering === null || s.idle === null) continue;
      const recoverBy = Math.max(this.auth.rightSince(s.reg, pid), s.lastDelivered + retryWait(this.b.authRetryMs, s.k - 1), s.idle);
      const deadline = s.answering <= recoverBy ? recoverBy + this.b.recoverMs : s.answering + this.b.registerMs;
      if (now > deadline && !this.sw.boundAt(sipUser(pid)).includes(s.reg)) {
        this.violate('auth-recovers', `${pid}'s credentials are right at ${s.reg} again (since ${this.auth.rightSince(s.reg, pid)} ms), its last refusal (#${s.k}) reached it at ${s.lastDelivered} ms, not registered there at ${now} ms (deadline ${deadline} ms: retry wait ${retryWait(this.b.authRetryMs, s.k - 1)} + ${this.b.recoverMs} ms)`);
      }
    }
  }

  /** The phone's stint now: a new process or home pointer starts a new one (and records the home it left). */
  #sync(pid: string, p: AuthPhone, now: number): Stint {
    const agent = p.agent;
    const home = agent === null || (agent.state as unknown) === undefined ? null : agent.home;
    const ptr = home === null ? undefined : agent!.state.list.find((x) => x.id === home);
    const reg = ptr?.sip === undefined ? null : (this.sw.registrarFor(ptr.sip)?.cm ?? null);
    const key = `${p.bootedAt ?? '-'} ${home ?? '-'} ${ptr?.sip ?? '-'}`;
    let s = this.#stints.get(pid);
    if (s === undefined || s.key !== key) {
      if (s !== undefined && s.reg !== null) this.#left.set(pid, { from: s.home!, reg: s.reg, start: s.start, at: now, answering: s.timedOut ? null : s.answering });
      s = { key, start: now, home, reg, broker: ptr?.broker ?? null, timedOut: false, k: 0, lastDelivered: 0, lastSent: null, answering: null, connected: null, idle: null };
      this.#stints.set(pid, s);
    }
    return s;
  }

  /** The phone's stint as of now (what its user agent reports belongs to the home it has now, not at the last sample). */
  #current(phone: string): Stint | undefined {
    const p = this.phones.get(phone);
    return p === undefined ? undefined : this.#sync(phone, p, this.now());
  }

  #whole(pid: string, url: string | null): boolean {
    const b = url === null ? undefined : this.net.byUrl(url);
    if (b === undefined || !b.up) return false;
    const cut = this.net.cut(pid, b.id);
    return !cut.h2b && !cut.b2h && b.conns().some((c) => c.clientId === `ipphone-${pid}` && c.clientOpen);
  }

  #sent(phone: string, cm: string): void {
    const s = this.#current(phone);
    if (s === undefined || s.reg !== cm) return;
    const now = this.now();
    this.counted();
    if (s.lastSent !== null && now - s.lastSent < this.b.authRetryMs - this.b.jitterMs) {
      this.violate('auth-no-storm', `${cm}'s registrar refused ${phone} again ${now - s.lastSent} ms after the last refusal (authRetryMs ${this.b.authRetryMs})`);
    }
    s.lastSent = now;
  }

  #delivered(phone: string, cm: string): void {
    const s = this.#current(phone);
    if (s === undefined || s.reg !== cm) return;
    // Refused though right (sent before the fix and in flight, or a registrar that ignores the fix):
    // not one the product's wait may count (auth-recovers judges from the refusals before the fix).
    if (!this.auth.refuses(cm, phone) && this.now() - this.auth.rightSince(cm, phone) > this.b.jitterMs) return;
    s.k++;
    s.lastDelivered = this.now();
  }
}
