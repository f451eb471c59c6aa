/**
 * Long mode for the power-loss, fault and soak suites: `IPPHONE_LONG=1` runs
 * the full counts and durations (thousands of cycles, minutes of soak); the
 * default is the short CI sizing. Anything other than `1` means CI mode.
 */

/** True when `IPPHONE_LONG=1` is set in the environment. */
export const LONG_MODE: boolean = process.env.IPPHONE_LONG === '1';

/** `long` in long mode, else `ci`. */
export function sized<T>(ci: T, long: T): T {
  return LONG_MODE ? long : ci;
}

/**
 * An ava timeout (ms) for a test planned to take `plannedMs`: twice the plan
 * plus a minute, so slow CI machines fail on assertions, not on the clock.
 */
export function timeoutFor(plannedMs: number): number {
  return plannedMs * 2 + 60_000;
}
