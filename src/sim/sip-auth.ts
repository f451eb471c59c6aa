/**
 * SIP digest authentication in the simulated world (issue 16, CONTRACT.md:
 * "A registrar that refuses the phone's own credentials (401/403 after they
 * were sent) is not a failure of that call manager: the phone does not rehome
 * for it, and its status says why it is not registered").
 *
 * The registrars' side is modelled from RFC 3261 §22 and RFC 2617, as
 * Kamailio's `auth_db` answers (deploy/kamailio/kamailio.cfg WITH_AUTH), not
 * from the product:
 *
 * - A registrar that asks for authentication answers a request without
 *   credentials 401 with a challenge (a fresh nonce). Credentials computed
 *   from the right password over a nonce it issued less than
 *   {@link NONCE_EXPIRE_MS} ago are taken; over an older nonce it answers 401
 *   `stale=true` (the user agent answers the new challenge at once, no
 *   failure); from a wrong password: refused, 401 with a new challenge, not
 *   stale (or 403 Forbidden, as a registrar configured so answers). An
 *   unregister (expires 0) is authenticated the same way: refused, the
 *   binding stays until it expires. INVITEs are challenged too (407): wrong
 *   credentials end the call 403.
 * - The user agent (baresip over libre) answers a challenge with the
 *   credentials it was built with (`sip.passwordFile`) and keeps the nonce
 *   for the account's refreshes; a challenge that is not stale after it sent
 *   credentials is final: `REGISTER_FAIL` "401 Unauthorized" (or the 403),
 *   mapped by the product's own adapter code (baresip-messages.ts
 *   `sipEventOf`). libre tries the account again after its fail wait while
 *   the account exists.
 * - The operator changes a phone's password on a registrar's subscriber
 *   table, or fixes it (workload `sip-password`): from then the registrar
 *   refuses, or takes, the phone's credentials; bindings stay.
 *
 * The four checkers (docs/simulation.md, "Invariants"): `auth-no-rehome`,
 * `auth-shown`, `auth-no-storm`, `auth-recovers`.
 */
import { sipEventOf } from '../sip/baresip-messages.js';
import type { SipEvent } from '../sip/user-agent.js';
import { allCms, type Topology } from './group.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

/** Kamailio auth's `nonce_expire` default (s → ms): older credentials are answered 401 `stale=true`. */
export const NONCE_EXPIRE_MS = 300_000;
/** The phones' `sip.passwordFile` in the simulated config (never read: the simulated user agent carries the password). */
export const SIM_SIP_PASSWORD_FILE = '/etc/ipphone-agent/sip-password';
/** The product's cap on the doubling wait after refused credentials, unless `authRetryMs` is longer (agent config `sip.authRetryMs`). */
export const AUTH_RETRY_CAP_MS = 600_000;

/**
 * Defects planted in the SIP world to prove the auth checkers can fail:
 * `auth-rehome` (the user agent reports a refusal without its status, as a transport error:
 * the phone takes it for a registrar failure), `auth-blind` (the user agent reports a refused
 * REGISTER as registered), `auth-storm` (the user agent keeps re-sending a refused account's
 * REGISTER every 500 ms, removed or not), `auth-stuck` (the registrars never take the
 * operator's fix: a phone whose password the truth says is right stays refused).
 */
export type AuthPlant = 'auth-rehome' | 'auth-blind' | 'auth-storm' | 'auth-stuck';

/** An operator's edit of a registrar's subscriber table: the phone's entry made wrong, or right again. */
export interface AuthChange {
  at: number;
  cm: string;
  phone: string;
  right: boolean;
}

export interface SipAuthPlan {
  /** The phones' `sip.authRetryMs`. */
  authRetryMs: number;
  /** Registrars (by call manager) that ask for authentication, and what they answer wrong credentials. */
  challenge: Map<string, 401 | 403>;
  /** `${cm} ${phone}`: the registrar's entry is not the phone's password at the start. */
  wrong: Set<string>;
  changes: AuthChange[];
}

/**
 * Digest authentication for about a third of the seeds (fork `sip-auth`; the other seeds run
 * as before, draw for draw): each registrar asks for it with chance 0.8 and answers wrong
 * credentials 401 or 403; a phone's entry is wrong at a registrar from the start with chance
 * 0.15 (fixed later with chance 0.5); 1..3 operator edits make an entry wrong between 10 s and
 * 100 s (cm-a, every phone's first pointer, half the time), 70 % of them fixed 3..50 s later.
 * `force`: on whatever the draw (the auth plants).
 */
export function drawSipAuth(rng: Rng, topo: Topology, force: boolean): SipAuthPlan | undefined {
  const on = rng.chance(0.35);
  if (!on && !force) return undefined;
  const authRetryMs = rng.pick([2_000, 5_000, 10_000, 20_000]);
  const challenge = new Map<string, 401 | 403>();
  for (const c of allCms(topo)) if (rng.chance(0.8)) challenge.set(c.id, rng.chance(0.5) ? 401 : 403);
  if (challenge.size === 0) challenge.set(topo.pointers[0]!, 401);
  const asking = [...challenge.keys()];
  const wrong = new Set<string>();
  const changes: AuthChange[] = [];
  for (const cm of asking) {
    for (const phone of topo.phones) {
      if (!rng.chance(0.15)) continue;
      wrong.add(`${cm} ${phone}`);
      if (rng.chance(0.5)) changes.push({ at: rng.int(10_000, 100_000), cm, phone, right: true });
    }
  }
  for (let n = rng.int(1, 3); n > 0; n--) {
    const cm = asking.includes(topo.pointers[0]!) && rng.chance(0.5) ? topo.pointers[0]! : rng.pick(asking);
    const phone = rng.pick(topo.phones);
    const at = rng.int(10_000, 100_000);
    changes.push({ at, cm, phone, right: false });
    if (rng.chance(0.7)) changes.push({ at: at + rng.int(3_000, 50_000), cm, phone, right: true });
  }
  changes.sort((a, b) => a.at - b.at);
  return { authRetryMs, challenge, wrong, changes };
}

/** What a registrar makes of a request's credentials. */
export type Verdict = 'challenge' | 'stale' | 'ok' | 'refuse';

/** The registrars' subscriber tables and nonces, and what the checkers are told of refusals. */
export class SipAuth {
  readonly #wrong: Set<string>;
  /** `${cm} ${phone}` → since when the entry is right (world time); absent: right from the start. */
  readonly #rightSince = new Map<string, number>();
  /** Nonces issued, per registrar: nonce → issued at. */
  readonly #nonces = new Map<string, number>();
  #nonce = 0;
  /** Told of every refusal a registrar sends (expires > 0) and every one a user agent reports. */
  onRefusalSent: (phone: string, cm: string) => void = () => {};
  onRefusalDelivered: (phone: string, cm: string) => void = () => {};
  onRegisteredDelivered: (phone: string, cm: string) => void = () => {};
  /** Told of every REGISTER a user agent reports unanswered (Timer F). */
  onTimedOut: (phone: string, cm: string) => void = () => {};

  constructor(
    readonly world: World,
    readonly plan: SipAuthPlan,
    readonly plant: AuthPlant | undefined,
  ) {
    this.#wrong = new Set(plan.wrong);
  }

  /** Refusals of REGISTERs (expires > 0) the registrars sent (figures). */
  refusals = 0;

  /** A registrar refused a REGISTER (expires > 0) of `phone`'s. */
  refusalSent(phone: string, cm: string): void {
    this.refusals++;
    this.onRefusalSent(phone, cm);
  }

  /** The operator's edits, at their times. Returns when the last one is made (0: none). */
  schedule(): number {
    let last = 0;
    for (const c of this.plan.changes) {
      last = Math.max(last, c.at);
      this.world.at(c.at, () => {
        const key = `${c.cm} ${c.phone}`;
        this.world.trace(`sip-password ${c.cm} ${c.phone} ${c.right ? 'fixed' : 'changed'}`);
        if (c.right) {
          if (!this.#wrong.has(key)) return;
          this.#wrong.delete(key);
          this.#rightSince.set(key, this.world.now);
        } else this.#wrong.add(key);
      });
    }
    return last;
  }

  asks(cm: string): boolean {
    return this.plan.challenge.has(cm);
  }

  /** The truth: registrar `cm` refuses `phone`'s credentials now. */
  refuses(cm: string, phone: string): boolean {
    return this.asks(cm) && this.#wrong.has(`${cm} ${phone}`);
  }

  /** Since when `phone`'s credentials are right at `cm` (-Infinity: always). */
  rightSince(cm: string, phone: string): number {
    return this.#rightSince.get(`${cm} ${phone}`) ?? -Infinity;
  }

  /** A new nonce from registrar `cm`. */
  nonce(cm: string): string {
    const n = `${cm}-${++this.#nonce}`;
    this.#nonces.set(n, this.world.now);
    return n;
  }

  /** Registrar `cm`'s verdict on a request from `phone` carrying credentials over `nonce` (undefined: none). */
  verdict(cm: string, phone: string, nonce: string | undefined): Verdict {
    if (!this.asks(cm)) return 'ok';
    if (nonce === undefined) return 'challenge';
    const issued = this.#nonces.get(nonce);
    if (issued === undefined || !nonce.startsWith(`${cm}-`) || this.world.now - issued >= NONCE_EXPIRE_MS) return 'stale';
    // auth-stuck: the registrar never took the fixes (still refuses what it refused at the start or after a change).
    const wrong = this.#wrong.has(`${cm} ${phone}`) || (this.plant === 'auth-stuck' && this.#rightSince.has(`${cm} ${phone}`));
    return wrong ? 'refuse' : 'ok';
  }

  /** What registrar `cm` answers refused credentials. */
  refusal(cm: string): string {
    return this.plan.challenge.get(cm) === 403 ? '403 Forbidden' : '401 Unauthorized';
  }
}

/** The product's adapter mapping of baresip's `REGISTER_FAIL` for a refusal (baresip-messages.ts), or the plants' lies. */
export function refusalEvent(aor: string, param: string, plant: AuthPlant | undefined): SipEvent {
  if (plant === 'auth-blind') return { type: 'registered', aor };
  const e = sipEventOf({ kind: 'event', type: 'REGISTER_FAIL', accountaor: aor, peeruri: undefined, param: plant === 'auth-rehome' ? 'Connection reset by peer' : param }, (a) => a);
  return e!;
}

/** The wait the product may take after the `k`-th refusal in a row (from 0): `authRetryMs` doubling, capped (agent config). */
export function retryWait(authRetryMs: number, k: number): number {
  return Math.min(Math.max(authRetryMs, AUTH_RETRY_CAP_MS), authRetryMs * 2 ** Math.min(Math.max(k, 0), 20));
}
