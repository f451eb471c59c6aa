import test from 'ava';
import { validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { changedPaths, Reconfigurator } from '../../../src/agent/reconfig.js';
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

function setup(overlay: Record<string, unknown> = {}) {
  const clock = new FakeClock(0);
  const results: ConfigResultPayload[] = [];
  const applied: { config: AgentConfig; overlay: Record<string, unknown>; version: number }[] = [];
  let homed = true;
  const r = new Reconfigurator({
    file: file(),
    overlay,
    clock,
    log: silentLogger(),
    host: {
      apply: async (config, ov, version) => {
        applied.push({ config, overlay: ov, version });
      },
      confirmed: () => homed,
      publishResult: (res) => results.push(res),
    },
  });
  r.boot();
  return { r, clock, results, applied, setHomed: (h: boolean) => (homed = h) };
}

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
  t.deepEqual(s.applied[1]!.config.pointers.map((p) => p.id), ['cm-a'], 'previous pointers back');
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
