/**
 * Whether this call manager's SIP server counts as alive, from the results
 * of its OPTIONS probes (sip-probe.ts runs them). Pure: probe results in,
 * online/offline out; the runner owns the timers.
 *
 * - It starts online: a call manager is not held offline by start-up order;
 *   a registrar that is dead from the start is found after `missLimit` probes.
 * - `missLimit` misses in a row → offline. A miss is a probe not answered
 *   within `probeMs` (also: no connection, a connection refused or reset).
 * - One answer → online again at once, misses back to 0. Flapping is the
 *   phones' fallback hold's business, not this machine's: a call manager
 *   whose PBX answers is a live one.
 */

export interface SipHealthState {
  online: boolean;
  /** Misses in a row since the last answer. */
  misses: number;
}

export type SipProbeResult = 'answered' | 'missed';

export interface SipHealthStep {
  state: SipHealthState;
  /** Set when `online` changed with this result. */
  changed?: 'online' | 'offline';
}

export const SIP_HEALTH_START: SipHealthState = { online: true, misses: 0 };

/** The next state after one probe result; `missLimit` ≥ 1. */
export function nextSipHealth(s: SipHealthState, result: SipProbeResult, missLimit: number): SipHealthStep {
  if (result === 'answered') {
    const state = { online: true, misses: 0 };
    return s.online ? { state } : { state, changed: 'online' };
  }
  const misses = s.misses + 1;
  if (s.online && misses >= missLimit) return { state: { online: false, misses }, changed: 'offline' };
  return { state: { online: s.online, misses } };
}
