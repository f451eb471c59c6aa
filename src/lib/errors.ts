/**
 * Coded errors. Callers decide by {@link isIpphoneError} and the `code`, never
 * by message text; codes read well in JSON logs and in `rejected` events.
 */
export type ErrorCode =
  | 'CONFIG_INVALID'
  | 'BOARD_INVALID'
  | 'USAGE'
  | 'STORE_CORRUPT'
  | 'STORE_IO'
  | 'PAYLOAD_TOO_LARGE'
  | 'PAYLOAD_INVALID'
  | 'UNSIGNED'
  | 'KEY_UNKNOWN'
  | 'SIGNATURE_INVALID'
  | 'VERSION_REPLAYED'
  | 'EXPIRED'
  | 'WRONG_PHONE'
  | 'WRONG_CM'
  | 'STATE_EMPTY'
  | 'STATE_STALE'
  | 'STATE_RUN_UNKNOWN'
  | 'STATE_RUN_MISMATCH'
  | 'CHALLENGE_UNKNOWN'
  | 'TRANSPORT'
  | 'TIMEOUT'
  | 'HW_UNAVAILABLE'
  | 'NOTIFY_FAILED'
  | 'SIP_REFUSED';

export class IpphoneError extends Error {
  readonly code: ErrorCode;
  readonly context: Record<string, unknown> | undefined;

  constructor(message: string, code: ErrorCode, context?: Record<string, unknown>, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'IpphoneError';
    this.code = code;
    this.context = context;
  }
}

/** True when `err` is an {@link IpphoneError}, and has `code` when one is given. */
export function isIpphoneError(err: unknown, code?: ErrorCode): err is IpphoneError {
  return err instanceof IpphoneError && (code === undefined || err.code === code);
}

/** A one-line description of any thrown value, for logs and events. */
export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}
