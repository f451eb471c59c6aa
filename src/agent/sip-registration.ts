/**
 * Where the phone is registered: pure, deterministic, no I/O (the wiring is
 * sip-phone.ts). The phone is registered at its home's registrar and nowhere
 * else. On a home change it registers at the new home make-before-break: add
 * the new account, wait for its `registered`, then remove the old one. A
 * `register-failed` or no answer within `timeoutMs` at the new home is that
 * pointer failing (effect `failed`, which the agent feeds to the failover
 * machine as `sip-failed`). A user agent that goes down holds no accounts
 * when it comes back: it is registered again from scratch.
 *
 * While a call is up, an old account is not removed (it may carry the call:
 * baresip ends a deleted account's calls); it lingers until the call ends.
 * A lingering account whose refresh fails has lost its binding: moving back
 * to it during the call waits (registered where it was) for the user agent's
 * own retry to answer, or for the call's end, when it is made afresh — it
 * is never taken back as registered (issue 17).
 *
 * A registrar that refuses the phone's own credentials (401, 403 or 407
 * after the user agent sent them: the phone has a `sip.passwordFile`) is not
 * a failure of that call manager: no `failed` (no rehome, no tour of the
 * group), the phone is registered nowhere, `auth-failed` says why, and the
 * account is tried again after `authRetryMs`, doubling up to
 * {@link AUTH_RETRY_MAX_MS}. Without credentials a 401/403 is a failure as
 * before; so are time-outs, 408 and 5xx.
 * While the machine searches without a home the registration stays where it
 * is (the next home replaces it make-before-break); with no home and no
 * search, or a home without `sip`, the phone is registered nowhere.
 */
import { SIP_UNREGISTERED_REASONS } from '../protocol/payload-schemas.js';
import { aorAt, parseRegistrar, pointerSip, type Registrar } from '../sip/sip-uri.js';

/** Tunables. */
export interface RegistrationConfig {
  /** The phone's SIP user part (e.g. `1001`). */
  user: string;
  /** REGISTER refresh interval handed to the user agent, seconds. */
  regintS: number;
  /** A new registration not answered this long after its account was added counts as failed (ms). */
  timeoutMs: number;
  /** The user agent sends credentials (`sip.passwordFile`): a 401/403/407 then means they were refused. Default false. */
  credentials?: boolean;
  /** First wait before trying again after the registrar refused the credentials (ms); doubles per refusal. Default {@link AUTH_RETRY_MS}. */
  authRetryMs?: number;
}

/** Default first wait after refused credentials (ms). */
export const AUTH_RETRY_MS = 30_000;
/** The longest wait between two tries with refused credentials (ms), unless `authRetryMs` is longer. */
export const AUTH_RETRY_MAX_MS = 600_000;

/**
 * Why a phone with a SIP user agent is not registered at its home (status `sip.reason`; null when
 * it is): `registering` (a REGISTER under way, or failed and the phone moving on), `sip-auth-failed`
 * (the home's registrar refused the phone's credentials: no rehome, tried again slowly), `ua-down`
 * (the user agent is unreachable), `no-registrar` (no home, or a home without `sip`). The reason
 * changes only where the registrar does, or refused credentials start or end, so it adds no
 * status publication of its own.
 */
export { SIP_UNREGISTERED_REASONS };
export type SipUnregisteredReason = (typeof SIP_UNREGISTERED_REASONS)[number];

/** SIP answers that refuse credentials: 401/407 (challenged again after they were sent), 403. */
export function refusesCredentials(status: number | undefined): boolean {
  return status === 401 || status === 403 || status === 407;
}

/** One account: at which call manager's registrar, under which AOR. */
export interface Account {
  cm: string;
  aor: string;
  registrar: Registrar;
}

export interface RegState {
  cfg: RegistrationConfig;
  uaUp: boolean;
  /** The account the phone is registered with (status `sip.registrar`), or null. */
  registered: Account | null;
  /**
   * A new account added and not yet answered. `deferred`: a lingering account whose binding is
   * gone, wanted again during the call: not re-made (that would end the call) until the call ends
   * or the user agent's own retry answers; no deadline.
   */
  pending: (Account & { since: number; deadline: number; deferred?: boolean }) | null;
  /** Old accounts kept while a call is up. */
  lingering: string[];
  /** The lingering accounts whose refresh failed: their binding is gone. */
  lingeringDead: string[];
  /** The home's registrar refused the phone's credentials for this account: tried again at `retryAt`. */
  authFailed: { cm: string; aor: string; reason: string; attempt: number; retryAt: number } | null;
  callIdle: boolean;
  /** What the agent wants, from its last `target` input. */
  want: Account | null | 'keep';
  /** The AOR that failed for the current want: not tried again until the want changes (the machine moves on). */
  gaveUp: string | null;
  wakeAt: number | null;
}

export type RegInput =
  /** The home as the failover machine has it now; `searching`: no home but a move in progress. */
  | { type: 'target'; home: { id: string } | null; searching: boolean }
  | { type: 'ua-up' }
  | { type: 'ua-down' }
  | { type: 'registered'; aor: string }
  | { type: 'register-failed'; aor: string; reason: string; status?: number }
  /** The user agent refused `addAccount`. */
  | { type: 'add-failed'; aor: string; reason: string }
  | { type: 'call-idle'; idle: boolean }
  | { type: 'wake' };

export type RegEffect =
  | { type: 'add'; aor: string; regintS: number }
  | { type: 'remove'; aor: string }
  /** Registration at `cm` failed: that pointer fails. */
  | { type: 'failed'; cm: string; reason: string }
  /** The registrar of `cm` refused the phone's credentials; tried again in `retryMs`. Not a failure of `cm`. */
  | { type: 'auth-failed'; cm: string; reason: string; retryMs: number }
  /** Registered at `cm`, `ms` after the home change asked for it. */
  | { type: 'registered'; cm: string; ms: number }
  | { type: 'wake'; at: number | null }
  | { type: 'log'; level: 'info' | 'warn' | 'debug'; msg: string; data: Record<string, unknown> };

export function initialRegState(cfg: RegistrationConfig): RegState {
  return { cfg, uaUp: false, registered: null, pending: null, lingering: [], lingeringDead: [], authFailed: null, callIdle: true, want: null, gaveUp: null, wakeAt: null };
}

/** Why the phone is not registered at its home (status `sip.reason`), or null when it is registered. */
export function unregisteredReason(s: RegState): SipUnregisteredReason | null {
  if (s.registered !== null && (s.want === 'keep' || s.want === null || s.registered.aor === s.want.aor)) return null;
  // No home wanted first: a phone starting (its user agent not yet up) says so once, not twice.
  if (s.want === null || s.want === 'keep') return 'no-registrar';
  if (!s.uaUp) return 'ua-down';
  if (s.authFailed !== null) return 'sip-auth-failed';
  // A failed registration is 'registering' too: the phone moves on and registers at the next home.
  // (A reason of its own would publish one more status per failure, for a state that lasts a step.)
  return 'registering';
}

/** The account wanted for a home pointer: none when it has no (valid) `sip`. */
export function accountFor(cfg: RegistrationConfig, home: object & { id: string }): Account | null {
  const sip = pointerSip(home);
  const registrar = sip === undefined ? undefined : parseRegistrar(sip);
  return registrar === undefined ? null : { cm: home.id, aor: aorAt(cfg.user, registrar), registrar };
}

export function nextReg(state: RegState, input: RegInput, now: number): { state: RegState; effects: RegEffect[] } {
  const s: RegState = { ...state, lingering: [...state.lingering], lingeringDead: [...state.lingeringDead] };
  const fx: RegEffect[] = [];
  const drop = (aor: string): void => {
    if (s.callIdle) fx.push({ type: 'remove', aor });
    else if (!s.lingering.includes(aor)) s.lingering.push(aor);
  };
  const fail = (reason: string): void => {
    const p = s.pending!;
    dropPending(s, fx);
    s.gaveUp = p.aor;
    fx.push({ type: 'log', level: 'warn', msg: 'sip registration failed', data: { cm: p.cm, aor: p.aor, reason } });
    fx.push({ type: 'failed', cm: p.cm, reason });
  };
  /** The registrar of `a` refused the phone's credentials: registered nowhere, no failure, a slow retry. */
  const refused = (a: Account, reason: string): void => {
    const attempt = s.authFailed !== null && s.authFailed.aor === a.aor ? s.authFailed.attempt + 1 : 0;
    const base = s.cfg.authRetryMs ?? AUTH_RETRY_MS;
    const retryMs = Math.min(Math.max(base, AUTH_RETRY_MAX_MS), base * 2 ** Math.min(attempt, 20));
    s.authFailed = { cm: a.cm, aor: a.aor, reason, attempt, retryAt: now + retryMs };
    // Registered at the home's registrar and nowhere else: an older registration goes too.
    if (s.registered !== null) {
      const aor = s.registered.aor;
      drop(aor);
      // The refused account itself, kept for a call: its binding is no longer refreshed, so it is
      // never taken back as registered — at the retry it waits, as a lingering account whose
      // refresh failed does, for the call's end or the user agent's own retry to answer.
      if (aor === a.aor && s.lingering.includes(aor) && !s.lingeringDead.includes(aor)) s.lingeringDead.push(aor);
      s.registered = null;
    }
    fx.push({ type: 'log', level: 'warn', msg: 'sip registrar refused the credentials: not registered, no rehome', data: { cm: a.cm, aor: a.aor, reason, retryMs } });
    fx.push({ type: 'auth-failed', cm: a.cm, reason, retryMs });
  };
  switch (input.type) {
    case 'target': {
      const want = input.home !== null ? accountFor(s.cfg, input.home) : input.searching ? 'keep' : null;
      if (wantKey(want) !== wantKey(s.want)) {
        s.gaveUp = null;
        if (want !== 'keep') s.authFailed = null;
      }
      s.want = want;
      break;
    }
    case 'ua-up':
      s.uaUp = true;
      s.gaveUp = null;
      break;
    case 'ua-down':
      if (s.registered !== null || s.pending !== null) fx.push({ type: 'log', level: 'warn', msg: 'sip user agent down: registered nowhere', data: { registrar: s.registered?.cm ?? null } });
      s.uaUp = false;
      s.registered = null;
      s.pending = null;
      s.lingering = [];
      s.lingeringDead = [];
      break;
    case 'registered': {
      const dead = s.lingeringDead.findIndex((a) => sameAor(a, input.aor));
      if (dead >= 0) s.lingeringDead.splice(dead, 1); // the user agent's own retry answered: bound again
      if (sameAor(s.pending?.aor, input.aor)) {
        const p = s.pending!;
        s.pending = null;
        s.authFailed = null;
        const old = s.registered;
        s.registered = { cm: p.cm, aor: p.aor, registrar: p.registrar };
        if (old !== null && old.aor !== p.aor) drop(old.aor);
        fx.push({ type: 'log', level: 'info', msg: 'sip registered', data: { cm: p.cm, aor: p.aor, ms: now - p.since, dropped: old?.cm ?? null } });
        fx.push({ type: 'registered', cm: p.cm, ms: now - p.since });
      }
      break; // a refresh, or a late answer for an account given up
    }
    case 'register-failed': {
      const auth = s.cfg.credentials === true && refusesCredentials(input.status);
      if (sameAor(s.pending?.aor, input.aor)) {
        const p = s.pending!;
        if (auth) {
          dropPending(s, fx);
          refused(p, input.reason);
        } else fail(input.reason);
      } else if (sameAor(s.registered?.aor, input.aor)) {
        const r = s.registered!;
        if (auth) {
          refused(r, input.reason);
          break;
        }
        // The home's registrar stopped answering refreshes: the phone cannot take calls there.
        s.registered = null;
        s.gaveUp = r.aor;
        drop(r.aor);
        fx.push({ type: 'log', level: 'warn', msg: 'sip registration lost', data: { cm: r.cm, reason: input.reason } });
        fx.push({ type: 'failed', cm: r.cm, reason: input.reason });
      } else {
        const aor = s.lingering.find((a) => sameAor(a, input.aor));
        if (aor !== undefined && !s.lingeringDead.includes(aor)) {
          // Kept for a call: its binding is gone (nothing to fail: it is not the home's).
          s.lingeringDead.push(aor);
          fx.push({ type: 'log', level: 'info', msg: 'sip account kept for a call lost its registration', data: { aor, reason: input.reason } });
        }
      }
      break;
    }
    case 'add-failed':
      if (sameAor(s.pending?.aor, input.aor)) fail(`user agent refused the account: ${input.reason}`);
      break;
    case 'call-idle':
      s.callIdle = input.idle;
      if (input.idle) {
        for (const aor of s.lingering) fx.push({ type: 'remove', aor });
        s.lingering = [];
        s.lingeringDead = [];
        if (s.pending?.deferred === true) {
          // Kept for the call with its binding gone: made afresh now (reconcile adds it again).
          fx.push({ type: 'remove', aor: s.pending.aor });
          s.pending = null;
        }
      }
      break;
    case 'wake':
      s.wakeAt = null;
      if (s.pending !== null && s.pending.deferred !== true && now >= s.pending.deadline) fail(`no answer in ${s.cfg.timeoutMs} ms`);
      break;
  }
  reconcile(s, fx, now);
  const at = nextWake(s, now);
  if (at !== s.wakeAt) {
    s.wakeAt = at;
    fx.push({ type: 'wake', at });
  }
  return { state: s, effects: fx };
}

/**
 * When the controller must look again: a pending account's deadline, or the retry after refused
 * credentials while it is still ahead. A retry time passed without a retry (the phone searching:
 * the registration is kept) needs no wake-up — the next home is a new want, tried at once — and
 * one asked for the past fires at once, again and again (a busy loop; simulator seed 1049).
 */
function nextWake(s: RegState, now: number): number | null {
  if (s.pending !== null) return s.pending.deferred === true ? null : s.pending.deadline;
  return s.authFailed !== null && s.uaUp && s.authFailed.retryAt > now ? s.authFailed.retryAt : null;
}

/** Give up the pending account: removed, or — kept for the call it carries — back among the lingering ones. */
function dropPending(s: RegState, fx: RegEffect[]): void {
  const p = s.pending;
  if (p === null) return;
  s.pending = null;
  if (p.deferred === true) {
    if (!s.lingering.includes(p.aor)) s.lingering.push(p.aor);
    if (!s.lingeringDead.includes(p.aor)) s.lingeringDead.push(p.aor);
  } else fx.push({ type: 'remove', aor: p.aor });
}

/** Bring the accounts toward what is wanted (only while the user agent is up). */
function reconcile(s: RegState, fx: RegEffect[], now: number): void {
  if (!s.uaUp || s.want === 'keep') return;
  const want = s.want;
  if (want === null) {
    dropPending(s, fx);
    if (s.registered !== null) {
      fx.push({ type: 'log', level: 'info', msg: 'sip registered nowhere', data: { was: s.registered.cm } });
      const aor = s.registered.aor;
      s.registered = null;
      if (s.callIdle) fx.push({ type: 'remove', aor });
      else if (!s.lingering.includes(aor)) s.lingering.push(aor);
    }
    return;
  }
  if (s.registered?.aor === want.aor) {
    dropPending(s, fx);
    if (s.registered.cm !== want.cm) {
      // Two call managers sharing one registrar: the same registration serves the new home.
      s.registered = want;
      fx.push({ type: 'registered', cm: want.cm, ms: 0 });
    }
    return;
  }
  if (s.pending?.aor === want.aor || want.aor === s.gaveUp) return;
  // Refused credentials: not again before the retry time.
  if (s.authFailed !== null && s.authFailed.aor === want.aor && now < s.authFailed.retryAt) return;
  dropPending(s, fx);
  const li = s.lingering.indexOf(want.aor);
  if (li >= 0) {
    s.lingering.splice(li, 1);
    const dead = s.lingeringDead.indexOf(want.aor);
    if (dead >= 0) {
      // Kept for the call, but its binding is gone: not registered there. Deleting and re-making it
      // would end the call, so it waits for the user agent's own retry or the call's end.
      s.lingeringDead.splice(dead, 1);
      s.pending = { ...want, since: now, deadline: now, deferred: true };
      fx.push({ type: 'log', level: 'info', msg: 'sip account kept for a call has no binding: registering it again once the call ends', data: { cm: want.cm, aor: want.aor } });
      return;
    }
    // Back to an account kept for a call: it is still registered (and refreshed) there.
    const old = s.registered;
    s.registered = want;
    if (old !== null) s.lingering.push(old.aor);
    fx.push({ type: 'registered', cm: want.cm, ms: 0 });
    return;
  }
  s.pending = { ...want, since: now, deadline: now + s.cfg.timeoutMs };
  fx.push({ type: 'log', level: 'info', msg: 'sip registering', data: { cm: want.cm, aor: want.aor, registered: s.registered?.cm ?? null } });
  fx.push({ type: 'add', aor: want.aor, regintS: s.cfg.regintS });
}

function wantKey(w: Account | null | 'keep'): string {
  return w === null ? '' : w === 'keep' ? 'keep' : `${w.cm} ${w.aor}`;
}

/**
 * The same account: equal up to URI parameters and angle brackets. An adapter may report an
 * account by the user agent's own name for it (baresip drops `;transport=…`), e.g. for an
 * answer that arrives before the adapter has learnt the mapping.
 */
export function sameAor(a: string | undefined, b: string): boolean {
  if (a === undefined) return false;
  const bare = (x: string): string => x.replace(/^<|>$/g, '').split(';')[0]!.toLowerCase();
  return a === b || bare(a) === bare(b);
}
