/**
 * The fleet's config file: an ordinary agent config whose `phoneId` is
 * ignored (every phone gets `{prefix}{n}`), so it may be missing or anything.
 */
import { checkedAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { configInvalid, readJsonFile } from '../config/problems.js';

/** Stands in for the file's phone id during validation; never used as an id. */
const PLACEHOLDER_ID = 'fleet';

/**
 * Read, validate and default an agent config file for a fleet. Throws
 * CONFIG_INVALID with every problem, one per line (context `{ problems, path }`),
 * like `loadAgentConfigFile` (the `mqtt` files included), except that
 * `phoneId` is not checked.
 */
export function loadFleetConfigFile(path: string): AgentConfig {
  const read = readJsonFile(path);
  if (!read.ok) throw configInvalid(path, read.problems);
  const raw = read.value;
  const withId = typeof raw === 'object' && raw !== null && !Array.isArray(raw) ? { ...raw, phoneId: PLACEHOLDER_ID } : raw;
  return checkedAgentConfig(path, withId);
}
