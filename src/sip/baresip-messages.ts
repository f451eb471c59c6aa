/**
 * What goes over baresip 1.0.0's ctrl_tcp socket, as pure functions: the
 * command body, decoding a received frame, and mapping baresip's events to
 * {@link SipEvent}. Field names checked against a running baresip 1.0.0 and
 * its source (`modules/ctrl_tcp/ctrl_tcp.c`, `src/event.c`):
 *
 * - command `{"command":"uanew","params":"…","token":"7"}`
 * - response `{"response":true,"ok":false,"data":"No such file or directory","token":"7"}`
 * - event `{"event":true,"type":"REGISTER_FAIL","class":"register","accountaor":"sip:1001@127.0.0.1:5070","param":"Connection refused"}`;
 *   call events add `direction`, `peeruri`, `peerdisplayname`, `id`.
 * - a registrar's refusal of the account's credentials (Kamailio's digest auth, checked against
 *   it): `REGISTER_FAIL` with `param` `"401 Unauthorized"` (challenged again after the
 *   credentials were sent, a wrong password or none) or `"403 Forbidden"`; an answer of `uanew`
 *   echoes its parameters, the password among them (`Creating UA for <…>;auth_pass=…`).
 */
import { IpphoneError } from '../lib/errors.js';
import type { SipEvent } from './user-agent.js';

export interface CtrlResponse {
  kind: 'response';
  ok: boolean;
  data: string;
  token: string | undefined;
}

export interface CtrlEvent {
  kind: 'event';
  type: string;
  accountaor: string | undefined;
  peeruri: string | undefined;
  param: string | undefined;
}

/** The JSON body of one command frame. `params` is left out when there are none (as for `accept`). */
export function commandBody(command: string, params: string | undefined, token: string): string {
  return JSON.stringify(params === undefined ? { command, token } : { command, params, token });
}

const str = (v: unknown): string | undefined => (typeof v === 'string' ? v : undefined);

/** Decode one frame's payload. Throws `PAYLOAD_INVALID` for JSON that is neither a response nor an event. */
export function decodeCtrl(payload: Buffer): CtrlResponse | CtrlEvent {
  let v: unknown;
  try {
    v = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    throw new IpphoneError('baresip sent a frame that is not JSON', 'PAYLOAD_INVALID', { bytes: payload.length }, { cause: err });
  }
  if (typeof v === 'object' && v !== null && !Array.isArray(v)) {
    const o = v as Record<string, unknown>;
    if (o.response === true) return { kind: 'response', ok: o.ok === true, data: str(o.data) ?? '', token: str(o.token) };
    // baresip's own header comment shows "event": "true"; 1.0.0 sends a boolean. Accept both.
    if ((o.event === true || o.event === 'true') && typeof o.type === 'string') {
      return { kind: 'event', type: o.type, accountaor: str(o.accountaor), peeruri: str(o.peeruri), param: str(o.param) };
    }
  }
  throw new IpphoneError('baresip sent JSON that is neither a response nor an event', 'PAYLOAD_INVALID', { bytes: payload.length });
}

const SIP_URI = /^sips?:[^\s<>"]+$/;

/**
 * The account's URI inside the angle brackets of `uanew <…>`, from an AOR
 * given with or without brackets (`sip:1001@10.0.0.1:5070;transport=tcp`).
 * Throws `CONFIG_INVALID` for anything else.
 */
export function accountUri(aor: string): string {
  const t = aor.trim();
  const inner = t.startsWith('<') && t.endsWith('>') ? t.slice(1, -1) : t;
  if (!SIP_URI.test(inner)) throw new IpphoneError('SIP account is not a sip: URI', 'CONFIG_INVALID', { aor });
  return inner;
}

/**
 * How baresip names the account in events and in `uafind`/`uadel`: the URI
 * without its parameters and headers (`sip:1001@10.0.0.1:5070`). baresip
 * compares these strings exactly (`uag_find_aor`).
 */
export function baresipAor(aor: string): string {
  const uri = accountUri(aor);
  const cut = uri.search(/[;?]/);
  return cut < 0 ? uri : uri.slice(0, cut);
}

/**
 * The `uanew` parameters: register every `regintS` seconds, answering digest challenges with
 * `auth` when given (`auth_user`, `auth_pass`: baresip's account parameters; the password was
 * checked at start to hold no space or `;`, which end a parameter). The result holds the
 * password: never log it unredacted ({@link redactSecrets}).
 */
export function uanewParams(aor: string, regintS: number, auth?: { user: string; password: string } | null): string {
  if (!Number.isInteger(regintS) || regintS < 1) throw new IpphoneError('registration interval must be a whole number of seconds ≥ 1', 'CONFIG_INVALID', { regintS });
  const creds = auth == null ? '' : `;auth_user=${auth.user};auth_pass=${auth.password}`;
  return `<${accountUri(aor)}>${creds};regint=${regintS}`;
}

/**
 * `text` with every `auth_pass=…` value hidden. baresip echoes a `uanew`'s parameters in its
 * answer ("Creating UA for <…>;auth_pass=…"), so whatever of a command or an answer may reach a
 * log line or an error goes through this first.
 */
export function redactSecrets(text: string): string;
export function redactSecrets(text: string | undefined): string | undefined;
export function redactSecrets(text: string | undefined): string | undefined {
  return text?.replace(/(auth_pass=)("[^"]*"|[^;\s>"]*)/gi, '$1(hidden)');
}

/** The SIP status code that starts a REGISTER_FAIL's `param` ("401 Unauthorized"), or undefined (a transport error). */
export function sipStatusOf(param: string | undefined): number | undefined {
  const m = /^\s*([1-6][0-9]{2})(?:\s|$)/.exec(param ?? '');
  return m === null ? undefined : Number(m[1]);
}

/**
 * The {@link SipEvent} for a baresip event, or null for the ones the port has
 * no use for (REGISTERING, CALL_LOCAL_SDP, …). `aorOf` maps baresip's
 * `accountaor` back to the AOR the agent gave.
 */
export function sipEventOf(e: CtrlEvent, aorOf: (accountaor: string) => string): SipEvent | null {
  const aor = aorOf(e.accountaor ?? '');
  const peer = e.peeruri ?? '';
  switch (e.type) {
    case 'REGISTER_OK':
      return { type: 'registered', aor };
    case 'REGISTER_FAIL': {
      // "401 Unauthorized" after credentials were sent, "408 Request Timeout", "Connection refused", …
      const status = sipStatusOf(e.param);
      return { type: 'register-failed', aor, reason: e.param ?? 'register failed', ...(status !== undefined ? { status } : {}) };
    }
    case 'CALL_INCOMING':
      return { type: 'incoming', peer };
    case 'CALL_RINGING':
      return { type: 'ringing', peer };
    case 'CALL_ESTABLISHED':
      return { type: 'established', peer };
    case 'CALL_CLOSED':
      return { type: 'closed', peer, reason: e.param ?? '' };
    default:
      return null;
  }
}
