/**
 * SIP in the simulated world: one registrar per call manager, a simulated
 * user agent per phone process behind the product's own port
 * ({@link SipUserAgent}, what baresip is driven through in production), the
 * calls workload, and the `sip-at-home` checker.
 *
 * The product decides everything — which account to add and remove, when,
 * make-before-break, lingering while a call is up (src/agent/sip-phone.ts,
 * sip-registration.ts, call-control.ts). The world only carries the
 * messages and answers them:
 *
 * - A registrar sits beside its call manager on that site's network: a
 *   REGISTER crosses the phone's link to that site (the same link as to the
 *   site's broker), so a phone cut from a site reaches neither. A request is
 *   lost when the phone→site way is cut at sending, an answer when the
 *   site→phone way is; each crossing takes 1..maxDelay ms, in order per
 *   phone and registrar (TCP).
 * - A registrar answers while `registrarUp` (the `registrar-down` fault stops
 *   it; it keeps its bindings, as Kamailio's usrloc does). It stores a
 *   binding for `expires` seconds (the account's `regintS`) and removes it on
 *   a REGISTER with expires 0 (baresip's unregister when an account is
 *   deleted): nothing else removes it.
 * - The user agent re-registers at 90 % of the expiry (libre's `rwait`),
 *   reports a REGISTER unanswered after Timer F (64 × T1 = 32 s, RFC 3261
 *   §17.1.2.2) as `register-failed` and retries it after libre's fail wait
 *   (30 s) while the account exists. Deleting an account sends one
 *   unregister, never retried: lost, the binding lives until it expires.
 * - Calls: an INVITE goes to the registrar of the dialled URI, which routes it
 *   to the callee's live binding at any registrar of the same group (a shared
 *   location service) over the callee's link to that registrar's site; no
 *   binding, a dead callee or a cut link: `closed` for the caller (404 at
 *   once, 408 after Timer B = 32 s when nothing came back). The dialog's own
 *   messages (180, 200, BYE, CANCEL) go phone to phone in 1..maxDelay ms
 *   (the phones' LAN), lost only when the other end's process is gone. A
 *   user agent holds one call; a second INVITE is answered 486.
 */
import type { SipEvent, SipUserAgent } from '../sip/user-agent.js';
import { userOf } from '../sip/sip-uri.js';
import type { Net } from './broker.js';
import type { ProcessClock } from './clock.js';
import { allCms, registrarOf, sipUser, type CmSpec, type Topology } from './group.js';
import type { Rng } from './rng.js';
import { refusalEvent, type SipAuth } from './sip-auth.js';
import type { World } from './world.js';

/** Timer F (and B): 64 × T1, T1 = 500 ms (RFC 3261 §17.1.2.2). */
export const TIMER_F_MS = 32_000;
/** libre's wait before re-trying a failed registration (ms). */
export const FAIL_WAIT_MS = 30_000;
/** libre re-registers at this fraction of the expiry (`rwait` 90 %). */
export const REFRESH_FRACTION = 0.9;

/**
 * A defect planted in the SIP world (never in the product) to prove
 * `sip-at-home` can fail: `registrar-keeps` (registrars ignore unregisters
 * and expiry: a binding lives for ever), `registrar-forgets` (registrars
 * answer 200 OK to a REGISTER and store nothing).
 */
export type SipPlant = 'registrar-keeps' | 'registrar-forgets';

/** The registrar's side of what the world needs of a call manager host. */
export interface RegistrarHost {
  readonly spec: CmSpec;
  readonly registrarUp: boolean;
}

interface Binding {
  aor: string;
  ua: SimUserAgent;
  expiresAt: number;
}

export class SimRegistrar {
  /** Bindings by user part. */
  readonly #bindings = new Map<string, Binding>();

  constructor(
    readonly sw: SipWorld,
    readonly host: RegistrarHost,
    /** The site broker's id: the registrar is on that site's network. */
    readonly site: string,
  ) {}

  get cm(): string {
    return this.host.spec.id;
  }

  get up(): boolean {
    return this.host.registrarUp;
  }

  /** The user's binding here, if it has not expired. */
  live(user: string): Binding | undefined {
    const b = this.#bindings.get(user);
    if (b === undefined) return undefined;
    return this.sw.plant === 'registrar-keeps' || b.expiresAt > this.sw.world.now ? b : undefined;
  }

  /** A REGISTER that reached the registrar while it answers. */
  register(user: string, aor: string, ua: SimUserAgent, expiresS: number): void {
    const w = this.sw.world;
    if (expiresS === 0) {
      if (this.sw.plant === 'registrar-keeps' || !this.#bindings.has(user)) return;
      this.#bindings.delete(user);
      w.trace(`sip ${this.cm} unbind ${user}`);
      return;
    }
    if (this.sw.plant === 'registrar-forgets') return;
    const fresh = this.live(user) === undefined;
    this.#bindings.set(user, { aor, ua, expiresAt: w.now + expiresS * 1000 });
    if (fresh) w.trace(`sip ${this.cm} bind ${user}`);
  }
}

/** The registrars, the links to them, and the dialog path between phones. */
export class SipWorld {
  readonly byCm = new Map<string, SimRegistrar>();
  readonly #byHostport = new Map<string, SimRegistrar>();
  /** Per `${phone} ${registrar}` and way: the time the last message arrives (FIFO). */
  readonly #fifo = new Map<string, number>();
  #callId = 0;
  /** Called when a call comes in to a phone (the calls workload answers it). */
  onIncoming: (phone: string) => void = () => {};
  /** Digest authentication (src/sim/sip-auth.ts), set by the runner in the seeds that draw it; null: registrars ask for none. */
  auth: SipAuth | null = null;

  constructor(
    readonly world: World,
    readonly net: Net,
    readonly rng: Rng,
    readonly maxDelayMs: number,
    readonly topo: Topology,
    cms: ReadonlyMap<string, RegistrarHost>,
    readonly plant: SipPlant | undefined,
  ) {
    for (const spec of allCms(topo)) {
      const h = cms.get(spec.id);
      const site = net.byUrl(spec.broker)?.id;
      if (h === undefined || site === undefined) continue;
      const r = new SimRegistrar(this, h, site);
      this.byCm.set(spec.id, r);
      this.#byHostport.set(hostport(registrarOf(spec)), r);
    }
  }

  /** The registrar a SIP URI (an AOR or a dialled URI) names. */
  registrarFor(uri: string): SimRegistrar | undefined {
    return this.#byHostport.get(hostport(uri));
  }

  /** Registrar `r` answers `phone`: it is up and the phone's link to its site is whole both ways. */
  answers(phone: string, r: SimRegistrar): boolean {
    if (!r.up) return false;
    const k = this.net.cut(phone, r.site);
    return !k.h2b && !k.b2h;
  }

  /** The call managers whose registrar holds a live binding of `user`. */
  boundAt(user: string): string[] {
    return [...this.byCm.values()].filter((r) => r.live(user) !== undefined).map((r) => r.cm);
  }

  nextCallId(): number {
    return ++this.#callId;
  }

  #at(key: string): number {
    const at = Math.max(this.world.now + this.rng.int(1, this.maxDelayMs), this.#fifo.get(key) ?? 0);
    this.#fifo.set(key, at);
    return at;
  }

  /** Phone → registrar: lost when that way is cut now; dropped on arrival by a registrar that does not answer. */
  toRegistrar(ua: SimUserAgent, r: SimRegistrar, what: string, fn: () => void): void {
    this.world.note(`sip ${ua.phone}>${r.cm} ${what}`);
    if (this.net.cut(ua.phone, r.site).h2b) return;
    this.world.at(this.#at(`${ua.phone} ${r.cm} up`), () => {
      if (r.up) fn();
    });
  }

  /** Registrar → phone: lost when that way is cut now or the phone's process is gone on arrival. */
  toPhone(ua: SimUserAgent, r: SimRegistrar, what: string, fn: () => void): void {
    this.world.note(`sip ${r.cm}>${ua.phone} ${what}`);
    if (this.net.cut(ua.phone, r.site).b2h) return;
    this.world.at(this.#at(`${ua.phone} ${r.cm} down`), () => {
      if (!ua.dead) fn();
    });
  }

  /** Phone → phone (a dialog's own messages): lost only when the far end's process is gone. */
  direct(from: SimUserAgent, to: SimUserAgent, what: string, fn: () => void): void {
    this.world.note(`sip ${from.phone}>${to.phone} ${what}`);
    this.world.at(this.#at(`${from.phone} ${to.phone} dialog`), () => {
      if (!to.dead) fn();
    });
  }

  /** Route an INVITE that reached registrar `r` to the live binding of `user` (same group). */
  route(r: SimRegistrar, user: string): { ua: SimUserAgent; at: SimRegistrar } | undefined {
    const group = r.host.spec.group;
    const regs = [r, ...[...this.byCm.values()].filter((x) => x !== r && x.host.spec.group === group && x.up)];
    for (const at of regs) {
      const b = at.live(user);
      if (b !== undefined && !b.ua.dead) return { ua: b.ua, at };
    }
    return undefined;
  }
}

interface Account {
  aor: string;
  reg: SimRegistrar;
  regintS: number;
  /** The current REGISTER transaction (answers of older ones are ignored). */
  txn: number;
  timer: unknown;
  /** The registrar's last challenge (digest authentication): refreshes send credentials over it. */
  nonce?: string;
}

interface Call {
  id: number;
  dir: 'out' | 'in';
  state: 'setup' | 'ringing' | 'up';
  /** The far end's URI as the product knows it (the dialled URI, or the caller's AOR). */
  peerUri: string;
  peer: SimUserAgent | null;
}

/**
 * The phone's SIP user agent in the world: the product's {@link SipUserAgent}
 * port, as baresip carries it out. Lives and dies with the phone's process
 * (its timers run on the process clock); its bindings at registrars outlive it.
 */
export class SimUserAgent implements SipUserAgent {
  readonly user: string;
  readonly #accounts = new Map<string, Account>();
  #listener: ((e: SipEvent) => void) | null = null;
  #up = false;
  #closed = false;
  /** The one call this user agent holds, or null. */
  call: Call | null = null;

  constructor(
    readonly sw: SipWorld,
    readonly phone: string,
    readonly clock: ProcessClock,
  ) {
    this.user = sipUser(phone);
  }

  get dead(): boolean {
    return this.clock.dead || this.#closed;
  }

  start(listener: (e: SipEvent) => void): void {
    this.#listener = listener;
    // The control socket connects: the user agent holds no accounts.
    this.clock.setTimeout(() => {
      if (this.#closed) return;
      this.#up = true;
      this.#emit({ type: 'up' });
    }, 1);
  }

  connected(): boolean {
    return this.#up && !this.dead;
  }

  async addAccount(aor: string, regintS: number): Promise<void> {
    this.#need();
    const reg = this.sw.registrarFor(aor);
    if (reg === undefined) throw new Error(`no route to ${aor}`);
    const old = this.#accounts.get(aor);
    if (old !== undefined) this.clock.clearTimeout(old.timer as never);
    const acc: Account = { aor, reg, regintS, txn: 0, timer: null };
    this.#accounts.set(aor, acc);
    this.#register(acc);
  }

  async removeAccount(aor: string): Promise<void> {
    this.#need();
    const acc = this.#accounts.get(aor);
    if (acc === undefined) return;
    this.#accounts.delete(aor);
    this.clock.clearTimeout(acc.timer as never);
    const user = this.user;
    if (this.sw.auth?.asks(acc.reg.cm) === true) return this.#unregisterDigest(acc.reg, aor, acc.nonce, 1);
    this.sw.toRegistrar(this, acc.reg, `unregister ${user}`, () => acc.reg.register(user, aor, this, 0));
  }

  async dial(aor: string, uri: string): Promise<void> {
    this.#need();
    if (this.call !== null) throw new Error('a call is up');
    const acc = this.#accounts.get(aor);
    if (acc === undefined) throw new Error(`no account ${aor}`);
    const reg = this.sw.registrarFor(uri) ?? acc.reg;
    const call: Call = { id: this.sw.nextCallId(), dir: 'out', state: 'setup', peerUri: uri, peer: null };
    this.call = call;
    const callee = userOf(uri);
    this.sw.world.trace(`sip call ${this.phone} dials ${callee}`);
    const send = (nonce: string | undefined): void => this.sw.toRegistrar(this, reg, `invite ${callee}${nonce !== undefined ? ' auth' : ''}`, () => {
      // Digest authentication: 407 with a challenge, the INVITE again with credentials; refused: 403.
      const auth = this.sw.auth;
      if (auth?.asks(reg.cm) === true) {
        const v = auth.verdict(reg.cm, this.phone, nonce);
        if (v === 'refuse') {
          this.sw.toPhone(this, reg, '403 invite', () => this.#ended(call.id, '403 Forbidden'));
          return;
        }
        if (v !== 'ok') {
          const n = auth.nonce(reg.cm);
          this.sw.toPhone(this, reg, '407 invite', () => this.call?.id === call.id && call.state === 'setup' && send(n));
          return;
        }
      }
      const to = this.sw.route(reg, callee);
      if (to === undefined || to.ua === this) {
        this.sw.toPhone(this, reg, '404', () => this.#ended(call.id, '404 Not Found'));
        return;
      }
      this.sw.toPhone(to.ua, to.at, `invite from ${this.user}`, () => to.ua.#incoming(this, call.id, aor));
    });
    send(undefined);
    // Timer B: nothing came back.
    this.clock.setTimeout(() => {
      if (this.call?.id === call.id && call.state === 'setup') this.#ended(call.id, '408 Request Timeout');
    }, TIMER_F_MS);
  }

  async answer(): Promise<void> {
    this.#need();
    const c = this.call;
    if (c === null || c.dir !== 'in' || c.state !== 'ringing' || c.peer === null) throw new Error('no call to answer');
    const peer = c.peer;
    this.sw.direct(this, peer, '200 invite', () => peer.#established(c.id, this));
  }

  async hangup(): Promise<void> {
    this.#need();
    const c = this.call;
    if (c === null) return;
    this.call = null;
    const peer = c.peer;
    if (peer !== null) this.sw.direct(this, peer, c.state === 'up' ? 'bye' : c.dir === 'out' ? 'cancel' : '486', () => peer.#ended(c.id, c.state === 'up' ? 'remote hangup' : c.dir === 'out' ? 'cancelled' : '486 Busy Here'));
    this.#emit({ type: 'closed', peer: c.peerUri, reason: 'local hangup' });
  }

  async close(): Promise<void> {
    this.#closed = true;
    this.#up = false;
    for (const a of this.#accounts.values()) this.clock.clearTimeout(a.timer as never);
  }

  // ---- the world's side --------------------------------------------------------

  #need(): void {
    if (!this.#up || this.dead) throw new Error('user agent not connected');
  }

  #emit(e: SipEvent): void {
    if (!this.dead) this.#listener?.(e);
  }

  #register(acc: Account): void {
    if (this.sw.auth?.asks(acc.reg.cm) === true) return this.#registerDigest(acc);
    const txn = ++acc.txn;
    const user = this.user;
    this.sw.toRegistrar(this, acc.reg, `register ${user}`, () => {
      acc.reg.register(user, acc.aor, this, acc.regintS);
      this.sw.toPhone(this, acc.reg, `200 register ${user}`, () => this.#answered(acc, txn));
    });
    acc.timer = this.clock.setTimeout(() => this.#timedOut(acc, txn), TIMER_F_MS);
  }

  /**
   * A REGISTER to a registrar that asks for digest authentication (sip-auth.ts): with
   * credentials over the account's last nonce, if any; a challenge (none sent, or a stale
   * nonce) is answered at once with a new REGISTER; refused credentials are final.
   */
  #registerDigest(acc: Account): void {
    const txn = ++acc.txn;
    const auth = this.sw.auth!;
    const user = this.user;
    const r = acc.reg;
    const nonce = acc.nonce;
    this.sw.toRegistrar(this, r, `register ${user}${nonce !== undefined ? ' auth' : ''}`, () => {
      const v = auth.verdict(r.cm, this.phone, nonce);
      if (v === 'ok') {
        r.register(user, acc.aor, this, acc.regintS);
        this.sw.toPhone(this, r, `200 register ${user}`, () => this.#answered(acc, txn));
        return;
      }
      if (v === 'refuse') {
        auth.refusalSent(this.phone, r.cm);
        const param = auth.refusal(r.cm);
        this.sw.toPhone(this, r, `${param.slice(0, 3)} register ${user}`, () => this.#refused(acc, txn, param));
        return;
      }
      const n = auth.nonce(r.cm);
      this.sw.toPhone(this, r, `401 register ${user}${v === 'stale' ? ' stale' : ''}`, () => {
        if (!this.#current(acc, txn)) return;
        this.clock.clearTimeout(acc.timer as never);
        acc.nonce = n;
        this.#registerDigest(acc);
      });
    });
    acc.timer = this.clock.setTimeout(() => this.#timedOut(acc, txn), TIMER_F_MS);
  }

  /** The registrar refused the account's credentials: `REGISTER_FAIL`, and libre's retry after its fail wait while the account exists. */
  #refused(acc: Account, txn: number, param: string): void {
    const auth = this.sw.auth!;
    // auth-storm (a planted defect): the REGISTER goes again in 500 ms, account removed or not.
    if (auth.plant === 'auth-storm') this.clock.setTimeout(() => this.#registerDigest(acc), 500);
    if (!this.#current(acc, txn)) return;
    this.clock.clearTimeout(acc.timer as never);
    if (auth.plant !== 'auth-storm') acc.timer = this.clock.setTimeout(() => this.#accounts.get(acc.aor) === acc && this.#register(acc), FAIL_WAIT_MS);
    auth.onRefusalDelivered(this.phone, acc.reg.cm);
    this.#emit(refusalEvent(acc.aor, param, auth.plant));
  }

  /** An unregister (expires 0) to a registrar that asks for authentication: refused, the binding stays until it expires. */
  #unregisterDigest(r: SimRegistrar, aor: string, nonce: string | undefined, tries: number): void {
    const auth = this.sw.auth!;
    const user = this.user;
    this.sw.toRegistrar(this, r, `unregister ${user}${nonce !== undefined ? ' auth' : ''}`, () => {
      const v = auth.verdict(r.cm, this.phone, nonce);
      if (v === 'ok') return r.register(user, aor, this, 0);
      if (v === 'refuse') return this.sw.toPhone(this, r, `${auth.refusal(r.cm).slice(0, 3)} unregister ${user}`, () => {});
      const n = auth.nonce(r.cm);
      this.sw.toPhone(this, r, `401 unregister ${user}`, () => tries > 0 && this.#unregisterDigest(r, aor, n, tries - 1));
    });
  }

  #current(acc: Account, txn: number): boolean {
    return this.#accounts.get(acc.aor) === acc && acc.txn === txn;
  }

  #answered(acc: Account, txn: number): void {
    if (!this.#current(acc, txn)) return;
    this.clock.clearTimeout(acc.timer as never);
    acc.timer = this.clock.setTimeout(() => this.#accounts.get(acc.aor) === acc && this.#register(acc), acc.regintS * 1000 * REFRESH_FRACTION);
    this.sw.auth?.onRegisteredDelivered(this.phone, acc.reg.cm);
    this.#emit({ type: 'registered', aor: acc.aor });
  }

  #timedOut(acc: Account, txn: number): void {
    if (!this.#current(acc, txn)) return;
    this.sw.auth?.onTimedOut(this.phone, acc.reg.cm);
    acc.timer = this.clock.setTimeout(() => this.#accounts.get(acc.aor) === acc && this.#register(acc), FAIL_WAIT_MS);
    this.#emit({ type: 'register-failed', aor: acc.aor, reason: '408 Request Timeout (Timer F)' });
  }

  #incoming(caller: SimUserAgent, id: number, from: string): void {
    if (caller.call?.id !== id) return; // cancelled while the INVITE travelled
    if (this.call !== null || !this.#up) {
      this.sw.direct(this, caller, '486', () => caller.#ended(id, '486 Busy Here'));
      return;
    }
    this.call = { id, dir: 'in', state: 'ringing', peerUri: from, peer: caller };
    caller.call.peer = this;
    this.#emit({ type: 'incoming', peer: from });
    this.sw.onIncoming(this.phone);
    this.sw.direct(this, caller, '180', () => caller.#remoteRinging(id));
  }

  #remoteRinging(id: number): void {
    const c = this.call;
    if (c?.id !== id || c.state !== 'setup') return;
    c.state = 'ringing';
    this.#emit({ type: 'ringing', peer: c.peerUri });
  }

  /** The callee answered our INVITE: up on our side, ACK to theirs. */
  #established(id: number, callee: SimUserAgent): void {
    const c = this.call;
    if (c?.id !== id) {
      // Hung up meanwhile: end theirs.
      this.sw.direct(this, callee, 'bye', () => callee.#ended(id, 'remote hangup'));
      return;
    }
    c.state = 'up';
    c.peer = callee;
    this.sw.world.trace(`sip call ${this.phone} ${callee.phone} up`);
    this.#emit({ type: 'established', peer: c.peerUri });
    this.sw.direct(this, callee, 'ack', () => {
      const theirs = callee.call;
      if (theirs?.id !== id) return;
      theirs.state = 'up';
      callee.#emit({ type: 'established', peer: theirs.peerUri });
    });
  }

  #ended(id: number, reason: string): void {
    const c = this.call;
    if (c?.id !== id) return;
    this.call = null;
    this.sw.world.trace(`sip call ${this.phone} closed ${reason}`);
    this.#emit({ type: 'closed', peer: c.peerUri, reason });
  }
}

function hostport(uri: string): string {
  const m = /^sips?:(?:[^@;<>\s]+@)?([^;<>\s]+)/i.exec(uri.trim());
  return (m?.[1] ?? uri).toLowerCase();
}

// ---- the calls workload --------------------------------------------------------

/** What the calls workload and the checker use of a phone host. */
export interface SipPhoneHost {
  readonly phoneId: string;
  readonly hook: { offHook: boolean; set(offHook: boolean): void };
  readonly agent: { readonly home: string | null; readonly state: { readonly list: readonly { id: string; sip?: string }[] } } | null;
  readonly keypad: { press(key: string): void };
  readonly ua: SimUserAgent | null;
}

/** Gap between two key presses while dialling (ms). */
const KEY_GAP_MS = 250;
/** Calls are placed before this time (ms of the run), as the off-hook workload lifts handsets before 120 s. */
export const CALLS_UNTIL_MS = 100_000;
/** A callee's handset is down by this time (ms of the run). */
const CALLS_CLEAR_MS = 125_000;

/**
 * Phones place calls to one another through the real agent's call control:
 * the handset lifted, the callee's number typed, `#`, the handset replaced
 * after 3..20 s; a phone a call rings answers it after 0.5..4 s and hangs up
 * after 2..15 s (by 125 s at the latest). Every phone starts a call every
 * 15..60 s from 8 s to 100 s. A lifted handset it did not lift itself (the
 * off-hook workload's) is left alone. Returns when the last call is over at
 * the latest (ms of the run).
 */
export function scheduleCalls(world: World, rng: Rng, phones: ReadonlyMap<string, SipPhoneHost>, sw: SipWorld): number {
  const ids = [...phones.keys()];
  const clear = CALLS_CLEAR_MS;
  let last = 0;
  for (const p of phones.values()) {
    const others = ids.filter((id) => id !== p.phoneId);
    if (others.length === 0) continue;
    for (let t = rng.int(8_000, 30_000); t < CALLS_UNTIL_MS; t += rng.int(15_000, 60_000)) {
      const digits = [...sipUser(rng.pick(others))];
      const len = rng.int(3_000, 20_000);
      last = Math.max(last, t + len);
      let mine = false;
      world.at(t, () => {
        if (p.agent === null || p.hook.offHook || p.ua?.call != null) return;
        mine = true;
        p.hook.set(true);
      });
      digits.forEach((d, i) => world.at(t + KEY_GAP_MS * (i + 1), () => mine && p.hook.offHook && p.keypad.press(d)));
      world.at(t + KEY_GAP_MS * (digits.length + 1), () => mine && p.hook.offHook && p.keypad.press('#'));
      world.at(t + len, () => {
        if (mine) p.hook.set(false);
        mine = false;
      });
    }
  }
  sw.onIncoming = (id) => {
    const p = phones.get(id);
    if (p === undefined) return;
    const ua = p.ua;
    world.after(rng.int(500, 4_000), () => {
      const c = ua?.call;
      if (p.ua !== ua || c == null || c.dir !== 'in' || c.state !== 'ringing' || p.hook.offHook) return;
      p.hook.set(true);
      world.at(Math.min(world.now + rng.int(2_000, 15_000), Math.max(world.now + 500, clear)), () => {
        if (p.ua === ua) p.hook.set(false);
      });
    });
  };
  // A callee answers within 4 s of the ring and hangs up within 15 s (and by `clear`).
  return last === 0 ? 0 : Math.min(clear, last + 19_000);
}

// ---- the sip-at-home checker ---------------------------------------------------

/** The bounds of `sip-at-home` (docs/simulation.md). */
export interface SipBounds {
  /** Homed on a call manager whose registrar answers this long: registered there (ms). */
  registerMs: number;
  /** Homed so, and idle, this long: no live binding at any other registrar (ms). */
  staleMs: number;
}

/**
 * `registerMs`: a REGISTER to an answering registrar is answered within two
 * link crossings; one sent before the registrar answered fails the new account
 * at `registerTimeoutMs` or a refresh at Timer F, and the phone leaves that
 * home (`sip-failed`). `staleMs`: an old binding is unregistered once the new
 * one is answered (or, kept for a call, when the call ends); an unregister
 * lost on the way leaves it to expire `regintS` after its last refresh, which
 * was sent at the latest with the unregister.
 */
export function sipBounds(t: Topology, maxDelayMs: number): SipBounds {
  return {
    registerMs: Math.max(t.phoneSip.registerTimeoutMs, TIMER_F_MS) + 2 * maxDelayMs + 1000,
    staleMs: t.phoneSip.regintS * 1000 + 3 * maxDelayMs + 1000,
  };
}

/**
 * `sip-at-home` (CONTRACT.md: "The phone is registered at its home's
 * registrar and nowhere else"), judged on the registrars' own bindings: a
 * phone homed on a call manager whose registrar answers it is registered
 * there within `registerMs`, and, while it is also idle (on hook, no call: a
 * call may keep its old account, sip-registration.ts), holds no live binding
 * at any other registrar beyond `staleMs`.
 */
export class SipAtHome {
  /** Per phone: since when homed on `home` with its registrar answering; since when idle too. */
  readonly #answering = new Map<string, { home: string; since: number }>();
  readonly #idle = new Map<string, { home: string; since: number }>();
  #last = -Infinity;
  /** A phone left to the refused-credentials checkers (sip-auth-checks.ts): its home's registrar refuses it, or it is not registered there since. */
  exempt: (phone: string) => boolean = () => false;

  constructor(
    readonly sw: SipWorld,
    readonly phones: ReadonlyMap<string, SipPhoneHost>,
    readonly bounds: SipBounds,
    readonly violate: (detail: string) => void,
    readonly counted: () => void,
  ) {}

  tick(now: number): void {
    if (now - this.#last < 50) return;
    this.#last = now;
    for (const [pid, p] of this.phones) {
      const agent = p.agent;
      const home = agent === null || (agent.state as unknown) === undefined ? null : agent.home;
      // The registrar the home pointer names (a pointer without `sip`: the phone is to be registered nowhere).
      const sip = home === null ? undefined : agent!.state.list.find((x) => x.id === home)?.sip;
      const reg = sip === undefined ? null : (this.sw.registrarFor(sip) ?? null);
      const key = `${home ?? ''} ${sip ?? ''}`;
      if (home === null || (reg !== null && !this.sw.answers(pid, reg))) {
        this.#answering.delete(pid);
        this.#idle.delete(pid);
        continue;
      }
      // Refused credentials (sip-auth-checks.ts judges those): the registration bound starts once it is over.
      if (reg !== null && this.exempt(pid)) this.#answering.delete(pid);
      const a = since(this.#answering, pid, key, now);
      const busy = p.hook.offHook || p.ua?.call != null;
      const idle = busy ? undefined : since(this.#idle, pid, key, now);
      if (busy) this.#idle.delete(pid);
      this.counted();
      const at = this.sw.boundAt(sipUser(pid));
      if (reg !== null && now - a > this.bounds.registerMs && !at.includes(reg.cm)) {
        this.violate(`${pid} homed on ${home} for ${now - a} ms while its registrar answered, not registered there (bound ${this.bounds.registerMs} ms); bound at [${at.join(',')}]`);
      }
      if (idle !== undefined && now - idle > this.bounds.staleMs) {
        const stale = at.filter((cm) => cm !== reg?.cm);
        if (stale.length > 0) this.violate(`${pid} idle on ${home}${reg === null ? ' (a pointer without sip)' : ''} for ${now - idle} ms still bound at ${stale.join(',')} (bound ${this.bounds.staleMs} ms)`);
      }
    }
  }
}

function since(m: Map<string, { home: string; since: number }>, pid: string, home: string, now: number): number {
  const cur = m.get(pid);
  if (cur !== undefined && cur.home === home) return cur.since;
  m.set(pid, { home, since: now });
  return now;
}
