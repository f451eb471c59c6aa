import test from 'ava';
import { validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { changedPaths, Reconfigurator, type HeldList } from '../../../src/agent/reconfig.js';
import type { PendingConfig } from '../../../src/agent/ports.js';
import type { ConfigResultPayload } from '../../../src/protocol/types.js';

const file = (): AgentConfig => {
  const v = validateAgentConfig({
    phoneId: 'p1',
    pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/s' }],
    remoteConfig: { confirmMs: 10_000 },
  });
  if (!v.ok) throw new Error(v.problems.join('\n'));
  return v.config;
};

function setup(overlay: Record<string, unknown> = {}, pending?: PendingConfig) {
  const clock = new FakeClock(0);
  const results: ConfigResultPayload[] = [];
  const applied: { config: AgentConfig; overlay: Record<string, unknown>; version: number; restore?: HeldList | undefined; pending: PendingConfig | undefined; setsPointers?: boolean | undefined }[] = [];
  const persisted: (PendingConfig | undefined)[] = [];
  let homed = true;
  // The held list as the agent keeps it: a CM's list at version 500 unless a change replaced it.
  let held: HeldList = { pointers: [{ id: 'cm-held', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/h' }], version: 500 };
  const r: Reconfigurator = new Reconfigurator({
    file: file(),
    overlay,
    clock,
    log: silentLogger(),
    host: {
      apply: async (config, ov, version, restore, setsPointers) => {
        applied.push({ config, overlay: ov, version, restore, pending: r.pendingRecord, setsPointers });
        held = restore ?? { pointers: config.pointers, version: held.version + 1 };
      },
      heldList: () => held,
      persist: () => persisted.push(r.pendingRecord),
      confirmed: () => homed,
      publishResult: (res) => results.push(res),
    },
  });
  r.boot(pending);
  return { r, clock, results, applied, persisted, held: () => held, setHomed: (h: boolean) => (homed = h) };
}

const nowhere = [{ id: 'cm-x', broker: 'mqtt://127.0.0.1:1', services: 'http://127.0.0.1/x' }];
const settle = () => new Promise((r) => setImmediate(r));

test('a valid change is applied live and confirmed at once while homed', async (t) => {
  const s = setup();
  await s.r.change(5, { keepalive: { intervalMs: 2000 }, log: { level: 'debug' } });
  t.is(s.applied.length, 1);
  t.is(s.applied[0]!.config.keepalive.intervalMs, 2000);
  t.deepEqual(s.applied[0]!.overlay, { keepalive: { intervalMs: 2000 }, log: { level: 'debug' } });
  t.deepEqual(s.results, [{ version: 5, ok: true }]);
  t.is(s.r.config.keepalive.missLimit, 3, 'the rest keeps its value');
});

test('schema errors and fixed fields are refused with every problem, nothing applied', async (t) => {
  const s = setup();
  await s.r.change(6, { keepalive: { intervalMs: 5, missLimit: 0 }, bogus: 1 });
  await s.r.change(7, { phoneId: 'other' });
  t.is(s.applied.length, 0);
  t.false(s.results[0]!.ok);
  t.regex(String(s.results[0]!.error), /intervalMs.*missLimit|missLimit.*intervalMs/s);
  t.regex(String(s.results[0]!.error), /bogus/);
  t.like(s.results[1], { version: 7, ok: false, error: 'phoneId: cannot be changed remotely' });
});

test('commit-confirmed: not homed within confirmMs → the previous config is restored and the result says so', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(8, { pointers: [{ id: 'cm-x', broker: 'mqtt://127.0.0.1:1', services: 'http://127.0.0.1/x' }] });
  t.is(s.results.length, 0, 'no result while waiting');
  s.clock.advance(9_999);
  t.is(s.results.length, 0);
  s.clock.advance(1);
  await new Promise((r) => setImmediate(r));
  t.is(s.applied.length, 2);
  t.deepEqual(s.applied[1]!.config.pointers.map((p) => p.id), ['cm-a'], 'previous config pointers back');
  t.deepEqual(s.applied[1]!.overlay, {});
  t.like(s.results[0], { version: 8, ok: false, rolledBack: true });
  t.regex(String(s.results[0]!.error), /could not home within 10 s/);
});

test('confirmed later: the result goes out when the phone homes within the window', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(9, { fallback: { holdMs: 1000 } });
  s.clock.advance(3000);
  s.setHomed(true);
  s.r.check();
  t.deepEqual(s.results, [{ version: 9, ok: true }]);
  s.clock.advance(20_000);
  t.is(s.results.length, 1, 'no rollback after confirmation');
});

test('fields that need a restart are reported; a saved overlay is used at boot', async (t) => {
  const s = setup();
  await s.r.change(10, { mqtt: { keepaliveSec: 20 } });
  t.deepEqual(s.results[0], { version: 10, ok: true, restartRequired: ['mqtt.keepaliveSec'] });
  const again = setup({ keepalive: { intervalMs: 3000 } });
  t.is(again.r.config.keepalive.intervalMs, 3000);
  const misfit = setup({ keepalive: { intervalMs: 'x' } });
  t.is(misfit.r.config.keepalive.intervalMs, 5000, 'an overlay that no longer fits is ignored');
});

test('changedPaths lists leaf paths that differ', (t) => {
  t.deepEqual(changedPaths({ a: { b: 1, c: 2 }, d: [1] }, { a: { b: 1, c: 3 }, d: [2] }), ['a.c', 'd']);
});

// ---- issue 10: commit-confirmed across power cuts, chained changes, the held list ----

test('issue 10: the unconfirmed change goes to flash with its rollback target and remaining window; confirmation clears it', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(20, { pointers: nowhere });
  const rec = s.applied[0]!.pending;
  t.like(rec, { version: 20, remainingMs: 10_000, pointersTouched: true });
  t.deepEqual(rec?.prev, { overlay: {}, pointers: [{ id: 'cm-held', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/h' }], pointersVersion: 500 });
  s.clock.advance(4000);
  t.is(s.r.pendingRecord?.remainingMs, 6000, 'each later save carries what is left');
  s.setHomed(true);
  s.r.check();
  t.deepEqual(s.persisted, [undefined], 'confirmed: saved without the pending record');
  t.deepEqual(s.results, [{ version: 20, ok: true }]);
});

test('issue 10: a boot with a saved pending change rolls back after the remaining window to the confirmed overlay and the held list', async (t) => {
  const pending: PendingConfig = {
    version: 21,
    remainingMs: 7000,
    restart: [],
    pointersTouched: true,
    prev: { overlay: { keepalive: { intervalMs: 3000 } }, pointers: [{ id: 'cm-held', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/h' }], pointersVersion: 500 },
  };
  const s = setup({ keepalive: { intervalMs: 3000 }, pointers: nowhere }, pending);
  s.setHomed(false);
  t.deepEqual(s.r.config.pointers.map((p) => p.id), ['cm-x'], 'boots with the unconfirmed change');
  s.clock.advance(6999);
  t.is(s.applied.length, 0);
  s.clock.advance(1);
  await settle();
  t.is(s.applied.length, 1, 'rolled back after the remaining window, counted from boot');
  t.deepEqual(s.applied[0]!.overlay, { keepalive: { intervalMs: 3000 } });
  t.is(s.applied[0]!.config.keepalive.intervalMs, 3000);
  t.deepEqual(s.applied[0]!.restore, { pointers: pending.prev.pointers, version: 500 }, 'the held list at its own version');
  t.is(s.applied[0]!.pending, undefined, 'the rollback is saved without the pending record');
  t.like(s.results[0], { version: 21, ok: false, rolledBack: true });
});

test('issue 10: a boot with a saved pending change confirms it once homed', async (t) => {
  const pending: PendingConfig = { version: 22, remainingMs: 7000, restart: ['mqtt.password'], pointersTouched: false, prev: { overlay: {}, pointers: file().pointers, pointersVersion: 3 } };
  const s = setup({ mqtt: { password: 'new' } }, pending);
  s.r.check();
  t.deepEqual(s.results, [{ version: 22, ok: true, restartRequired: ['mqtt.password'] }]);
  s.clock.advance(20_000);
  await settle();
  t.is(s.applied.length, 0, 'no rollback later');
});

test('issue 10: a second change while one is pending rolls back to the last confirmed config, not the unconfirmed one', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(30, { pointers: nowhere });
  await s.r.change(31, { fallback: { holdMs: 1000 } });
  t.like(s.results[0], { version: 30, ok: true, superseded: true });
  t.like(s.applied[1]!.pending, { version: 31, pointersTouched: true });
  s.clock.advance(10_000);
  await settle();
  const rb = s.applied[2]!;
  t.deepEqual(rb.overlay, {}, 'the confirmed overlay, without the first change');
  t.deepEqual(rb.config.pointers.map((p) => p.id), ['cm-a']);
  t.is(rb.config.fallback.holdMs, file().fallback.holdMs);
  t.deepEqual(rb.restore, { pointers: [{ id: 'cm-held', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/h' }], version: 500 }, 'the list held before the first change');
  t.like(s.results[1], { version: 31, ok: false, rolledBack: true });
});

test('issue 10: a refused change while one is pending leaves the pending one waiting', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(40, { pointers: nowhere });
  await s.r.change(41, { keepalive: { intervalMs: 5 } });
  t.is(s.results.length, 1);
  t.like(s.results[0], { version: 41, ok: false });
  t.is(s.r.pendingRecord?.version, 40);
});

test('issue 10: a rollback of a change that did not touch pointers leaves the held list alone', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(50, { fallback: { holdMs: 1000 } });
  s.clock.advance(10_000);
  await settle();
  t.is(s.applied[1]!.restore, undefined);
});

test('a patch that names pointers equal to the config\'s still sets them (the held list may be a call manager\'s), and a rollback restores the held list', async (t) => {
  const s = setup();
  s.setHomed(false);
  await s.r.change(9, { pointers: file().pointers });
  t.is(s.applied[0]!.setsPointers, true, 'the host is told the patch names pointers');
  await s.r.change(10, { log: { level: 'debug' } });
  t.is(s.applied[1]!.setsPointers, false, 'a patch without pointers does not re-list');
  s.clock.advance(10_000);
  await settle();
  t.deepEqual(s.applied.at(-1)!.restore?.version, 500, 'the rollback puts back the list held before the change');
});
