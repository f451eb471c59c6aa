/**
 * How the fleet names its phones and where it keeps their flash state: pure
 * helpers shared by {@link Fleet}, the CLI and the tests.
 */
import { join } from 'node:path';
import type { AgentConfig } from '../config/agent-config.js';
import { IpphoneError } from '../lib/errors.js';

/** Default phone id prefix: `sim-1` … `sim-N`. */
export const DEFAULT_PREFIX = 'sim-';
/** Most phones one fleet process runs (each holds a socket and a few timers). */
export const MAX_COUNT = 100_000;

/** Same rule as the config's phone id pattern (a topic level). */
const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;

/** `{prefix}{n}`, n from 1. */
export function fleetPhoneId(prefix: string, n: number): string {
  return `${prefix}${n}`;
}

/**
 * Every problem with a fleet's count and prefix, in words: `count` must be an
 * integer from 1 to {@link MAX_COUNT}, and `{prefix}{count}` a valid phone id
 * (1 to 64 characters from A-Z a-z 0-9 . _ -).
 */
export function fleetProblems(count: number, prefix: string): string[] {
  const problems: string[] = [];
  if (!Number.isSafeInteger(count) || count < 1 || count > MAX_COUNT) problems.push(`count must be an integer from 1 to ${MAX_COUNT} (got ${count})`);
  const longest = fleetPhoneId(prefix, Number.isSafeInteger(count) && count > 0 ? count : 1);
  if (!ID_RE.test(longest)) problems.push(`prefix ${JSON.stringify(prefix)} does not make valid phone ids (e.g. ${JSON.stringify(longest)}): use 1 to 64 characters from A-Z a-z 0-9 . _ -`);
  return problems;
}

/** Throws USAGE with every {@link fleetProblems} problem, one per line. */
export function assertFleetShape(count: number, prefix: string): void {
  const problems = fleetProblems(count, prefix);
  if (problems.length > 0) throw new IpphoneError(problems.join('\n'), 'USAGE', { problems });
}

/**
 * The config of phone `n`: `base` with `phoneId` = `{prefix}{n}` and
 * `stateDir` = `{stateDir ?? base.stateDir}/{phoneId}`. Nested sections are
 * shared with `base`, not copied (2,000 phones, one pointer list in memory);
 * the agent never changes its config. With `certDir` the phone connects
 * with its own certificate ({@link fleetPhoneCert}), the `mqtt` section
 * copied for it.
 */
export function fleetPhoneConfig(base: AgentConfig, prefix: string, n: number, stateDir?: string, certDir?: string): AgentConfig {
  const phoneId = fleetPhoneId(prefix, n);
  const own = { ...base, phoneId, stateDir: join(stateDir ?? base.stateDir, phoneId) };
  return certDir === undefined ? own : { ...own, mqtt: { ...base.mqtt, ...fleetPhoneCert(certDir, phoneId) } };
}

/**
 * The client certificate of phone `phoneId` in a fleet's `--cert-dir`:
 * `{certDir}/{phoneId}.crt` and `.key`. Under the printed ACL a phone's CN is
 * its identity (the broker's `use_identity_as_username`), so a fleet of N
 * phones behind one broker needs N certificates: one shared certificate would
 * make every phone the same client, taking each other over.
 */
export function fleetPhoneCert(certDir: string, phoneId: string): { cert: string; key: string } {
  return { cert: join(certDir, `${phoneId}.crt`), key: join(certDir, `${phoneId}.key`) };
}
