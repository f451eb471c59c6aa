/**
 * Calls as on any desk phone: pure, deterministic, no I/O (the wiring is
 * sip-phone.ts). The handset lifted when idle starts dialling (the screen
 * shows the digits), `#` places the call, an incoming call shows the caller
 * and rings, lifting the handset answers, replacing it ends the call (or
 * cancels dialling). States per CONTRACT.md: idle, dialing, calling,
 * ringing, connected.
 *
 * A second call coming in while one is set up or up is left alone: the user
 * agent's `hangup` ends its *current* call, which may be ours.
 */
import { dialUri, userOf, type Registrar } from '../sip/sip-uri.js';

export type CallPhase = 'idle' | 'dialing' | 'calling' | 'ringing' | 'connected';

/** Digits kept while dialling (a longer number is cut): bounded input. */
export const MAX_DIGITS = 32;

export interface CallState {
  phase: CallPhase;
  offHook: boolean;
  /** Digits typed (dialing, calling). */
  digits: string;
  /** The far end's SIP URI (calling, ringing, connected). */
  peer: string | null;
  /** The far end of our call rings. */
  remoteRinging: boolean;
  /** Answer sent, `established` not yet seen. */
  answering: boolean;
  /** A line for the screen while off hook and idle, or while dialling: why nothing happened. */
  notice: string | null;
}

export type CallInput =
  | { type: 'hook'; offHook: boolean }
  | { type: 'key'; key: string }
  | { type: 'incoming'; peer: string }
  | { type: 'ringing'; peer: string }
  | { type: 'established'; peer: string }
  | { type: 'closed'; peer: string; reason: string }
  /** The user agent refused `dial` / went down. */
  | { type: 'dial-failed'; reason: string }
  | { type: 'ua-down' };

export type CallEffect =
  | { type: 'dial'; aor: string; uri: string }
  | { type: 'answer' }
  | { type: 'hangup' }
  /** The message lamp: blinking while a call rings in. */
  | { type: 'lamp'; blink: boolean };

/** Where a call can go from: the account the phone is registered with, or null (not registered). */
export interface CallEnv {
  registered: { aor: string; registrar: Registrar } | null;
}

export function initialCallState(offHook = false): CallState {
  return { phase: 'idle', offHook, digits: '', peer: null, remoteRinging: false, answering: false, notice: null };
}

/** A far end's URI against ours: same user part (the user agent may add or drop parameters). */
function samePeer(a: string | null, b: string): boolean {
  return a === null || userOf(a) === userOf(b);
}

export function nextCall(state: CallState, input: CallInput, env: CallEnv): { state: CallState; effects: CallEffect[] } {
  const s: CallState = { ...state };
  const fx: CallEffect[] = [];
  const toIdle = (notice: string | null): void => {
    if (s.phase === 'ringing') fx.push({ type: 'lamp', blink: false });
    s.phase = 'idle';
    s.digits = '';
    s.peer = null;
    s.remoteRinging = false;
    s.answering = false;
    s.notice = s.offHook ? notice : null;
  };
  switch (input.type) {
    case 'hook':
      if (input.offHook === s.offHook) break;
      s.offHook = input.offHook;
      if (input.offHook) {
        if (s.phase === 'idle') {
          s.phase = 'dialing';
          s.digits = '';
          s.notice = null;
        } else if (s.phase === 'ringing' && !s.answering) {
          s.answering = true;
          fx.push({ type: 'answer' }, { type: 'lamp', blink: false });
        }
      } else {
        // Replaced: ends whatever is up (ringing here means answered: it rang while on hook).
        if (s.phase === 'calling' || s.phase === 'connected' || s.phase === 'ringing') fx.push({ type: 'hangup' });
        toIdle(null);
      }
      break;
    case 'key':
      if (s.phase !== 'dialing') break;
      if (/^[0-9*]$/.test(input.key)) {
        if (s.digits.length < MAX_DIGITS) s.digits += input.key;
        s.notice = null;
      } else if (input.key === '#') {
        if (s.digits === '') break;
        if (env.registered === null) {
          s.notice = 'No SIP service';
          break;
        }
        const uri = dialUri(s.digits, env.registered.registrar);
        s.phase = 'calling';
        s.peer = uri;
        s.notice = null;
        fx.push({ type: 'dial', aor: env.registered.aor, uri });
      }
      break;
    case 'incoming':
      if (s.phase === 'idle' && !s.offHook) {
        s.phase = 'ringing';
        s.peer = input.peer;
        s.answering = false;
        s.notice = null;
        fx.push({ type: 'lamp', blink: true });
      } else if (s.phase === 'idle' || s.phase === 'dialing') {
        // Off hook with no call: the phone is busy; no other call exists for `hangup` to hit.
        fx.push({ type: 'hangup' });
      }
      break;
    case 'ringing':
      if (s.phase === 'calling') s.remoteRinging = true;
      break;
    case 'established':
      if ((s.phase === 'calling' || s.phase === 'ringing') && samePeer(s.peer, input.peer)) {
        if (s.phase === 'ringing' && !s.answering) fx.push({ type: 'lamp', blink: false });
        s.phase = 'connected';
        if (s.peer === null) s.peer = input.peer;
        s.answering = false;
        s.remoteRinging = false;
      }
      break;
    case 'closed':
      if (s.phase === 'calling' || s.phase === 'ringing' || s.phase === 'connected') {
        if (!samePeer(s.peer, input.peer)) break;
        toIdle(s.phase === 'calling' ? 'Call failed' : 'Call ended');
      }
      break;
    case 'dial-failed':
      if (s.phase === 'calling') toIdle('Call failed');
      break;
    case 'ua-down':
      if (s.phase !== 'idle' && s.phase !== 'dialing') toIdle('Call lost');
      break;
  }
  return { state: s, effects: fx };
}

/** The phone is busy (no voluntary moves) while off hook or while a call is not idle. */
export function callBusy(s: CallState): boolean {
  return s.offHook || s.phase !== 'idle';
}

/**
 * The call screen under the status row, or null when there is none (on hook
 * and idle: the services page shows). At most two lines, each short enough
 * for a 16-column display.
 */
export function callLines(s: CallState): string[] | null {
  switch (s.phase) {
    case 'idle':
      return s.offHook ? [s.notice ?? 'Hang up to dial'] : null;
    case 'dialing':
      return ['Dial:', s.digits === '' ? '_' : s.digits, ...(s.notice !== null ? [s.notice] : [])];
    case 'calling':
      return [s.remoteRinging ? 'Ringing' : 'Calling', s.digits];
    case 'ringing':
      return [s.answering ? 'Answering' : 'Call from', userOf(s.peer ?? '')];
    case 'connected':
      return ['Connected', userOf(s.peer ?? '')];
  }
}
