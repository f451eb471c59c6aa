/**
 * The phone's SIP user agent as the agent sees it: accounts it registers,
 * calls it places and answers. The agent drives registration itself (which
 * registrar, when, make-before-break); the user agent only carries it out
 * and reports what happened. Adapters: baresip over its `ctrl_tcp` socket
 * (baresip.ts) and an in-memory fake for unit tests (user-agent-fake.ts).
 */

/** What a user agent reports. `aor` is the account's address of record as given to {@link SipUserAgent.addAccount}. */
export type SipEvent =
  /** The control connection came up (after a start or a restart of the user agent): it holds no accounts the agent knows of. */
  | { type: 'up' }
  /** The control connection is gone (the user agent died or restarts); reconnecting. */
  | { type: 'down'; reason: string }
  /** REGISTER answered 2xx (again on each refresh). */
  | { type: 'registered'; aor: string }
  /** REGISTER failed (error answer, time-out, transport error); `status`: the registrar's final SIP status code, when it answered. */
  | { type: 'register-failed'; aor: string; reason: string; status?: number }
  /** A call is coming in from `peer` (a SIP URI). */
  | { type: 'incoming'; peer: string }
  /** The far end of our outgoing call rings. */
  | { type: 'ringing'; peer: string }
  /** The call is up (media flowing). */
  | { type: 'established'; peer: string }
  /** The call ended (either side, or it failed). */
  | { type: 'closed'; peer: string; reason: string };

export interface SipUserAgent {
  /** Connect to the user agent and keep reconnecting until {@link close}. Events go to `listener`. */
  start(listener: (e: SipEvent) => void): void;
  /** True while the control connection is up. */
  connected(): boolean;
  /**
   * Create an account and register it every `regintS` seconds, with the credentials the adapter
   * was built with (if any). Rejects when the user agent refuses.
   */
  addAccount(aor: string, regintS: number): Promise<void>;
  /** Delete an account (unregisters it). Rejects when the user agent refuses; an unknown account is not an error. */
  removeAccount(aor: string): Promise<void>;
  /** Call `uri` from account `aor`. */
  dial(aor: string, uri: string): Promise<void>;
  /** Answer the incoming call. */
  answer(): Promise<void>;
  /** End the current call (or refuse the incoming one). */
  hangup(): Promise<void>;
  /** Stop reconnecting and close the control connection. Idempotent. */
  close(): Promise<void>;
}
