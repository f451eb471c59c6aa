/**
 * `ipphone-admin acl`: read a call manager config, print the group's
 * mosquitto `acl_file` ({@link aclFile}). The config's `signingKey` is not
 * read: the ACL is made where the broker is, not where the key lives.
 */
import { validateCmConfig } from '../config/cm-config.js';
import { readJsonFile } from '../config/problems.js';
import { IpphoneError } from '../lib/errors.js';
import { DEFAULT_PREFIX } from '../protocol/topics.js';
import { aclFile, aclProblems } from './acl.js';

/** The ids as the file has them, before the schema: so an unsafe id is named for what it is. */
function rawIds(value: unknown): { prefix: string; ids: string[] } {
  const v = (typeof value === 'object' && value !== null ? value : {}) as { group?: unknown; topicPrefix?: unknown };
  const group: unknown[] = Array.isArray(v.group) ? v.group : [];
  const ids = group.map((m) => (m as { id?: unknown } | null)?.id).filter((id): id is string => typeof id === 'string');
  return { prefix: typeof v.topicPrefix === 'string' ? v.topicPrefix : DEFAULT_PREFIX, ids };
}

/**
 * The ACL text for the group of the config at `path`. Throws CONFIG_INVALID
 * (context `{ problems, path }`) naming every unsafe id, or every problem of
 * the config.
 */
export function aclForCmConfig(path: string, operators: readonly string[]): string {
  const read = readJsonFile(path);
  if (!read.ok) throw new IpphoneError(`${path}: cannot read the call manager config`, 'CONFIG_INVALID', { problems: read.problems, path });
  const raw = rawIds(read.value);
  const unsafe = raw.ids.length > 0 ? aclProblems({ prefix: raw.prefix, callManagers: raw.ids, operators }) : [];
  if (unsafe.length > 0) throw new IpphoneError(`${path}: cannot make a safe ACL`, 'CONFIG_INVALID', { problems: unsafe, path });
  const v = validateCmConfig(read.value);
  if (!v.ok) throw new IpphoneError(`${path}: not a valid call manager config`, 'CONFIG_INVALID', { problems: v.problems, path });
  return aclFile({ prefix: v.config.topicPrefix, callManagers: v.config.group.map((m) => m.id), operators });
}
