/**
 * What the phone runs with at boot, decided before anything is built from
 * it (main.ts builds the board, compose.ts the transport, agent.ts the
 * machine): the config file, the flash state, and the rule between them.
 *
 * The rule (README "Flash"): the saved list and a remote `pointers` change
 * win over the file's `pointers` only while the file's `pointers` are the
 * ones the state was saved under. Each save stores a hash of the file's
 * `pointers` (`fileHash`); when the file's differ at boot, the installer has
 * re-provisioned the phone and the file wins: the saved list is replaced by
 * the file's at version 0 (as on a freshly installed phone), the overlay's
 * `pointers` is dropped and a pending change's rollback target becomes the
 * file's list. Other remote changes (keep-alive timing, credentials, …) and
 * the config version are kept, so replays stay refused. A state saved before
 * hashes existed has none and is kept as it is (it gets one at its next save).
 */
import { createHash } from 'node:crypto';
import { validateAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { mergeConfig } from '../config/merge.js';
import { cleanPointer } from '../protocol/pointers.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { canonicalJson } from '../store/agent-state-store.js';
import type { AgentState } from './ports.js';

/** Hash of the file's provisioning fields: its pointers as the phone keeps them (id, broker, services, sip). */
export function provisioningHash(file: AgentConfig): string {
  // cleanPointer: `sip` only when present, so a file without SIP keeps the hash it had.
  const pointers = file.pointers.map(cleanPointer);
  return createHash('sha256').update(canonicalJson({ pointers })).digest('hex').slice(0, 32);
}

const withoutPointers = (o: Record<string, unknown> | undefined): Record<string, unknown> => {
  const { pointers: _dropped, ...rest } = o ?? {};
  return rest;
};

/**
 * Apply the file-vs-saved rule to the state loaded from flash. Returns the
 * state to boot from (null: none) and whether the file won (the caller then
 * saves, so the new hash reaches flash).
 */
export function reconcileWithFile(file: AgentConfig, saved: AgentState | null, log: Logger): { state: AgentState | null; fileWon: boolean } {
  if (saved === null) return { state: null, fileWon: false };
  const hash = provisioningHash(file);
  if (saved.fileHash === undefined || saved.fileHash === hash) return { state: saved, fileWon: false };
  const list = file.pointers.map(cleanPointer);
  log.warn(
    { saved: saved.pointers.map((p) => p.id), savedVersion: saved.pointersVersion, file: list.map((p) => p.id) },
    "the config file's pointers changed since the state was saved: the file's list replaces the saved one",
  );
  const state: AgentState = { ...saved, pointers: list, pointersVersion: 0, configOverlay: withoutPointers(saved.configOverlay), fileHash: hash };
  const p = saved.pendingConfig;
  if (p !== undefined) state.pendingConfig = { ...p, pointersTouched: false, prev: { overlay: withoutPointers(p.prev.overlay), pointers: list, pointersVersion: 0 } };
  return { state, fileWon: true };
}

/**
 * The effective config: the file with the saved overlay, or the file alone
 * (with a warning) when the overlay no longer fits it.
 */
export function effectiveConfig(file: AgentConfig, overlay: Record<string, unknown>, log: Logger): { config: AgentConfig; overlay: Record<string, unknown> } {
  if (Object.keys(overlay).length === 0) return { config: file, overlay };
  let v: ReturnType<typeof validateAgentConfig>;
  try {
    v = validateAgentConfig(mergeConfig(file, overlay));
  } catch (err) {
    v = { ok: false, problems: [errorMessage(err)] };
  }
  if (v.ok) return { config: v.config, overlay };
  log.warn({ problems: v.problems }, 'saved remote config does not fit the config file; ignoring it');
  return { config: file, overlay: {} };
}
