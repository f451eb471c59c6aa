/**
 * The chaos run's configs and every checker's bound, derived from them
 * (docs/chaos.md lists the figures). Generous on purpose: the processes share
 * a loaded 2-core machine with other work, and a bound that fires on a slow
 * scheduler says nothing about the product.
 */

/** What the phones are configured with (the fleet's agent config). */
export interface PhoneTiming {
  intervalMs: number;
  missLimit: number;
  ackTimeoutMs: number;
  holdMs: number;
  connectTimeoutMs: number;
  keepaliveSec: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  pointers: number;
}

export const PHONE_TIMING: PhoneTiming = {
  intervalMs: 1000,
  missLimit: 3,
  ackTimeoutMs: 150,
  holdMs: 8000,
  connectTimeoutMs: 3000,
  keepaliveSec: 10,
  backoffBaseMs: 500,
  backoffMaxMs: 4000,
  pointers: 3,
};

/** Call managers: MQTT keep-alive (s) and reconnect period (ms) as src/callmanager/cm-session.ts fixes them. */
export const CM_KEEPALIVE_SEC = 30;
export const CM_RECONNECT_MS = 1000;

/** Slack for a loaded machine, added to every bound (ms). */
export const SLACK_MS = 4000;

/** The window (ms) the `no-storm` checker counts connection attempts in. */
export const STORM_WINDOW_MS = 30_000;

export interface Bounds {
  /** A phone's own detection of a dead home: `intervalMs × (missLimit + 1) + ackTimeoutMs`. */
  round: number;
  /** `home-is-live`, from the moment the home became unusable: 2 × (round + ackTimeoutMs) + slack. */
  detect: number;
  /** `home-is-live`, from the moment the phone could publish again: + backoff max + connect time-out. */
  reconnect: number;
  /** `service-when-possible`, from the heal: pointers × (connect time-out + round) + backoff max + slack. */
  service: number;
  /** `fallback`, from the last heal: hold + service. */
  fallback: number;
  /** `no-storm`: connection attempts of one phone to one broker within {@link STORM_WINDOW_MS}. */
  phoneAttempts: number;
  /** `no-storm`: of one call-manager client (session or peer link) to one broker. */
  cmAttempts: number;
  /** `healthz`: a call manager up and linked this long answers 200 (ms), judged on the polls of the last {@link HEALTHZ_RECENT_MS}. */
  healthzUp: number;
  /** `versions-bounded`: no version beyond the wall clock + 24 h. */
  versionAhead: number;
  /** A call manager finds its registrar silent: `probeMs` × (`missLimit` + 1) + slack (`registrar-seen`; added to `home-is-live` while a registrar is down). */
  sipDetect: number;
  /** `no-forged-effect`: a phone leaving a call manager usable this long before it decided is a forged effect: round + keep-alive ack time-out + slack. */
  liveWindow: number;
}

/** The call managers' SIP probe in the chaos run (their `sip` section). */
export const SIP_PROBE = { probeMs: 1000, missLimit: 3 } as const;

export const HEALTHZ_RECENT_MS = 8000;

/**
 * Expected connection attempts to a broker that refuses every one, in `windowMs`, under the
 * agent's full-jitter backoff (src/agent/machine-state.ts `backoffMs`: uniform in
 * [0, min(max, base·2^n))): the first one, then one per mean wait (cap / 2).
 */
export function expectedAttempts(t: PhoneTiming, windowMs: number): number {
  let at = 0;
  let n = 1;
  for (let k = 0; k < 10_000; k++) {
    at += Math.min(t.backoffMaxMs, t.backoffBaseMs * 2 ** k) / 2;
    if (at > windowMs) break;
    n++;
  }
  return n;
}

export function boundsOf(t: PhoneTiming): Bounds {
  const round = t.intervalMs * (t.missLimit + 1) + t.ackTimeoutMs;
  const detect = 2 * (round + t.ackTimeoutMs) + SLACK_MS;
  const reconnect = detect + t.backoffMaxMs + t.connectTimeoutMs;
  const service = t.pointers * (t.connectTimeoutMs + round) + t.backoffMaxMs + 2 * SLACK_MS;
  return {
    round,
    detect,
    reconnect,
    service,
    fallback: t.holdMs + service,
    // A search round may connect at once to a pointer's broker ("search overrides backoff"):
    // at most one more attempt per backoff wait, so twice the expected count, plus a few.
    phoneAttempts: 2 * expectedAttempts(t, STORM_WINDOW_MS) + 4,
    cmAttempts: 2 * Math.ceil(STORM_WINDOW_MS / CM_RECONNECT_MS) + 4,
    healthzUp: 20_000,
    versionAhead: 24 * 3600_000,
    sipDetect: SIP_PROBE.probeMs * (SIP_PROBE.missLimit + 1) + SLACK_MS,
    liveWindow: round + t.ackTimeoutMs + SLACK_MS,
  };
}
