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
 * While the machine searches without a home the registration stays where it
 * is (the next home replaces it make-before-break); with no home and no
 * search, or a home without `sip`, the phone is registered nowhere.
 */
import { aorAt, parseRegistrar, pointerSip, type Registrar } from '../sip/sip-uri.js';

/** Tunables. */
export interface RegistrationConfig {
  /** The phone's SIP user part (e.g. `1001`). */
  user: string;
  /** REGISTER refresh interval handed to the user agent, seconds. */
  regintS: number;
  /** A new registration not answered this long after its account was added counts as failed (ms). */
  timeoutMs: number;
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
  /** A new account added and not yet answered. */
  pending: (Account & { since: number; deadline: number }) | null;
  /** Old accounts kept while a call is up. */
  lingering: string[];
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
  | { type: 'register-failed'; aor: string; reason: string }
  /** The user agent refused `addAccount`. */
  | { type: 'add-failed'; aor: string; reason: string }
  | { type: 'call-idle'; idle: boolean }
  | { type: 'wake' };

export type RegEffect =
  | { type: 'add'; aor: string; regintS: number }
  | { type: 'remove'; aor: string }
  /** Registration at `cm` failed: that pointer fails. */
  | { type: 'failed'; cm: string; reason: string }
  /** Registered at `cm`, `ms` after the home change asked for it. */
  | { type: 'registered'; cm: string; ms: number }
  | { type: 'wake'; at: number | null }
  | { type: 'log'; level: 'info' | 'warn' | 'debug'; msg: string; data: Record<string, unknown> };

export function initialRegState(cfg: RegistrationConfig): RegState {
  return { cfg, uaUp: false, registered: null, pending: null, lingering: [], callIdle: true, want: null, gaveUp: null, wakeAt: null };
}

/** The account wanted for a home pointer: none when it has no (valid) `sip`. */
export function accountFor(cfg: RegistrationConfig, home: object & { id: string }): Account | null {
  const sip = pointerSip(home);
  const registrar = sip === undefined ? undefined : parseRegistrar(sip);
  return registrar === undefined ? null : { cm: home.id, aor: aorAt(cfg.user, registrar), registrar };
}

export function nextReg(state: RegState, input: RegInput, now: number): { state: RegState; effects: RegEffect[] } {
  const s: RegState = { ...state, lingering: [...state.lingering] };
  const fx: RegEffect[] = [];
  const drop = (aor: string): void => {
    if (s.callIdle) fx.push({ type: 'remove', aor });
    else if (!s.lingering.includes(aor)) s.lingering.push(aor);
  };
  const fail = (reason: string): void => {
    const p = s.pending!;
    s.pending = null;
    s.gaveUp = p.aor;
    fx.push({ type: 'remove', aor: p.aor });
    fx.push({ type: 'log', level: 'warn', msg: 'sip registration failed', data: { cm: p.cm, aor: p.aor, reason } });
    fx.push({ type: 'failed', cm: p.cm, reason });
  };
  switch (input.type) {
    case 'target': {
      const want = input.home !== null ? accountFor(s.cfg, input.home) : input.searching ? 'keep' : null;
      if (wantKey(want) !== wantKey(s.want)) s.gaveUp = null;
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
      break;
    case 'registered':
      if (sameAor(s.pending?.aor, input.aor)) {
        const p = s.pending!;
        s.pending = null;
        const old = s.registered;
        s.registered = { cm: p.cm, aor: p.aor, registrar: p.registrar };
        if (old !== null && old.aor !== p.aor) drop(old.aor);
        fx.push({ type: 'log', level: 'info', msg: 'sip registered', data: { cm: p.cm, aor: p.aor, ms: now - p.since, dropped: old?.cm ?? null } });
        fx.push({ type: 'registered', cm: p.cm, ms: now - p.since });
      }
      break; // a refresh, or a late answer for an account given up
    case 'register-failed':
      if (sameAor(s.pending?.aor, input.aor)) fail(input.reason);
      else if (sameAor(s.registered?.aor, input.aor)) {
        // The home's registrar stopped answering refreshes: the phone cannot take calls there.
        const r = s.registered!;
        s.registered = null;
        s.gaveUp = r.aor;
        drop(r.aor);
        fx.push({ type: 'log', level: 'warn', msg: 'sip registration lost', data: { cm: r.cm, reason: input.reason } });
        fx.push({ type: 'failed', cm: r.cm, reason: input.reason });
      }
      break;
    case 'add-failed':
      if (sameAor(s.pending?.aor, input.aor)) fail(`user agent refused the account: ${input.reason}`);
      break;
    case 'call-idle':
      s.callIdle = input.idle;
      if (input.idle) {
        for (const aor of s.lingering) fx.push({ type: 'remove', aor });
        s.lingering = [];
      }
      break;
    case 'wake':
      s.wakeAt = null;
      if (s.pending !== null && now >= s.pending.deadline) fail(`no answer in ${s.cfg.timeoutMs} ms`);
      break;
  }
  reconcile(s, fx, now);
  const at = s.pending?.deadline ?? null;
  if (at !== s.wakeAt) {
    s.wakeAt = at;
    fx.push({ type: 'wake', at });
  }
  return { state: s, effects: fx };
}

/** Bring the accounts toward what is wanted (only while the user agent is up). */
function reconcile(s: RegState, fx: RegEffect[], now: number): void {
  if (!s.uaUp || s.want === 'keep') return;
  const want = s.want;
  if (want === null) {
    if (s.pending !== null) fx.push({ type: 'remove', aor: s.pending.aor });
    s.pending = null;
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
    if (s.pending !== null) fx.push({ type: 'remove', aor: s.pending.aor });
    s.pending = null;
    if (s.registered.cm !== want.cm) {
      // Two call managers sharing one registrar: the same registration serves the new home.
      s.registered = want;
      fx.push({ type: 'registered', cm: want.cm, ms: 0 });
    }
    return;
  }
  if (s.pending?.aor === want.aor || want.aor === s.gaveUp) return;
  if (s.pending !== null) fx.push({ type: 'remove', aor: s.pending.aor });
  const li = s.lingering.indexOf(want.aor);
  if (li >= 0) {
    // Back to an account kept for a call: it is still registered (and refreshed) there.
    s.lingering.splice(li, 1);
    const old = s.registered;
    s.registered = want;
    s.pending = null;
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
