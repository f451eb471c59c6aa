/**
 * Issue 10, "the saved list overrides the file for ever": the rule between
 * agent.json and the flash state (README "Flash"), and the effective config
 * the board and the transport are built from.
 */
import test from 'ava';
import { validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { silentLogger } from '../../../src/lib/log.js';
import { effectiveConfig, provisioningHash, reconcileWithFile } from '../../../src/agent/boot-config.js';
import type { AgentState } from '../../../src/agent/ports.js';

const ptr = (id: string) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1/${id}` });
const fileWith = (ids: string[], extra: Record<string, unknown> = {}): AgentConfig => {
  const v = validateAgentConfig({ phoneId: 'p1', pointers: ids.map(ptr), ...extra });
  if (!v.ok) throw new Error(v.problems.join('\n'));
  return v.config;
};

const savedUnder = (file: AgentConfig | null): AgentState => ({
  pointers: [ptr('cm-from-group')],
  pointersVersion: 900,
  configVersion: 40,
  configOverlay: { pointers: [ptr('cm-remote')], keepalive: { intervalMs: 3000 } },
  ...(file ? { fileHash: provisioningHash(file) } : {}),
});

test('issue 10: the saved list wins while the file pointers are the ones it was saved under', (t) => {
  const file = fileWith(['cm-a', 'cm-b']);
  const r = reconcileWithFile(file, savedUnder(file), silentLogger());
  t.false(r.fileWon);
  t.is(r.state?.pointersVersion, 900);
  t.deepEqual(r.state?.pointers.map((p) => p.id), ['cm-from-group']);
});

test('issue 10: re-provisioned file pointers win: file list at version 0, overlay pointers dropped, other remote changes and the config version kept', (t) => {
  const old = fileWith(['cm-a', 'cm-b']);
  const file = fileWith(['cm-new-1', 'cm-new-2']);
  const saved: AgentState = {
    ...savedUnder(old),
    pendingConfig: { version: 41, remainingMs: 5000, restart: [], pointersTouched: true, prev: { overlay: { pointers: [ptr('cm-old')] }, pointers: [ptr('cm-from-group')], pointersVersion: 800 } },
  };
  const r = reconcileWithFile(file, saved, silentLogger());
  t.true(r.fileWon, 'the caller saves the new hash');
  t.deepEqual(r.state?.pointers.map((p) => p.id), ['cm-new-1', 'cm-new-2']);
  t.is(r.state?.pointersVersion, 0);
  t.is(r.state?.configVersion, 40, 'old config changes stay refused as replays');
  t.deepEqual(r.state?.configOverlay, { keepalive: { intervalMs: 3000 } });
  t.is(r.state?.fileHash, provisioningHash(file));
  t.deepEqual(r.state?.pendingConfig?.prev, { overlay: {}, pointers: file.pointers.map((p) => ({ ...p })), pointersVersion: 0 });
  t.deepEqual(effectiveConfig(file, r.state!.configOverlay!, silentLogger()).config.pointers.map((p) => p.id), ['cm-new-1', 'cm-new-2']);
});

test('issue 10: a state saved before hashes existed is kept; only the pointers count, not other file fields', (t) => {
  const file = fileWith(['cm-a']);
  t.false(reconcileWithFile(file, savedUnder(null), silentLogger()).fileWon);
  const sameList = fileWith(['cm-a'], { keepalive: { intervalMs: 2000 }, log: { level: 'debug' } });
  t.is(provisioningHash(sameList), provisioningHash(file));
  t.not(provisioningHash(fileWith(['cm-b'])), provisioningHash(file));
  t.not(provisioningHash(fileWith(['cm-a', 'cm-b'])), provisioningHash(fileWith(['cm-b', 'cm-a'])), 'order is provisioning too');
});

test('issue 10: restart-only fields come from the effective config (file + saved overlay)', (t) => {
  const file = fileWith(['cm-a'], { mqtt: { password: 'old' }, board: '/etc/file-board.json' });
  const eff = effectiveConfig(file, { mqtt: { password: 'rotated' }, board: '/etc/remote-board.json' }, silentLogger()).config;
  t.is(eff.mqtt.password, 'rotated');
  t.is(eff.board, '/etc/remote-board.json');
  t.is(effectiveConfig(file, { mqtt: { password: 7 } }, silentLogger()).config.mqtt.password, 'old', 'an overlay that no longer fits is ignored');
});
