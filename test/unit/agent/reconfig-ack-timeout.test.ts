/**
 * Issue #10, "A remote keepalive.intervalMs reduction is refused because the
 * file's defaulted ackTimeoutMs is kept": an ack timeout the file left to its
 * default (15 % of the interval) follows the interval a remote change sets; an
 * ack timeout someone wrote down stays what they wrote.
 */
import test from 'ava';
import { defaultAckTimeoutMs, validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { mergeConfig } from '../../../src/config/merge.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { Reconfigurator } from '../../../src/agent/reconfig.js';
import type { ConfigResultPayload } from '../../../src/protocol/types.js';

const fileConfig = (keepalive: Record<string, unknown>): AgentConfig => {
  const v = validateAgentConfig({
    phoneId: 'p1',
    pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1/s' }],
    keepalive,
    remoteConfig: { confirmMs: 10_000 },
  });
  if (!v.ok) throw new Error(v.problems.join('\n'));
  return v.config;
};

function setup(keepalive: Record<string, unknown>, overlay: Record<string, unknown> = {}) {
  const results: ConfigResultPayload[] = [];
  const applied: AgentConfig[] = [];
  const r = new Reconfigurator({
    file: fileConfig(keepalive),
    overlay,
    clock: new FakeClock(0),
    log: silentLogger(),
    host: {
      apply: async (config) => {
        applied.push(config);
      },
      heldList: () => ({ pointers: fileConfig(keepalive).pointers, version: 1 }),
      persist: () => undefined,
      confirmed: () => true,
      publishResult: (res) => results.push(res),
    },
  });
  const booted = r.boot();
  return { r, results, applied, booted };
}

test('defaulted ackTimeoutMs: a remote intervalMs reduction is accepted and the ack timeout recomputed', async (t) => {
  const s = setup({ intervalMs: 5000 });
  t.is(s.booted.keepalive.ackTimeoutMs, 750, 'file default: 15 % of 5000');
  await s.r.change(2, { keepalive: { intervalMs: 500 } });
  t.deepEqual(s.results, [{ version: 2, ok: true }]);
  t.is(s.r.config.keepalive.intervalMs, 500);
  t.is(s.r.config.keepalive.ackTimeoutMs, defaultAckTimeoutMs(500));
});

test('defaulted ackTimeoutMs follows an interval increase too (not left at the old 15 %)', async (t) => {
  const s = setup({ intervalMs: 1000 });
  await s.r.change(2, { keepalive: { intervalMs: 4000 } });
  t.like(s.results[0], { ok: true });
  t.is(s.r.config.keepalive.ackTimeoutMs, 600);
});

test('a saved overlay reducing intervalMs still fits the file at boot (defaulted ackTimeoutMs recomputed)', (t) => {
  const s = setup({ intervalMs: 5000 }, { keepalive: { intervalMs: 400 } });
  t.is(s.booted.keepalive.intervalMs, 400, 'the overlay is used, not dropped as not fitting');
  t.is(s.booted.keepalive.ackTimeoutMs, defaultAckTimeoutMs(400));
});

test('explicit ackTimeoutMs in the file is kept: a reduction below it is refused with a clear error', async (t) => {
  const s = setup({ intervalMs: 5000, ackTimeoutMs: 700 });
  await s.r.change(2, { keepalive: { intervalMs: 600 } });
  t.is(s.applied.length, 0);
  t.like(s.results[0], { version: 2, ok: false });
  t.regex(String(s.results[0]!.error), /ackTimeoutMs: must be less than keepalive\/intervalMs \(600\)/);
  await s.r.change(3, { keepalive: { intervalMs: 2000 } });
  t.like(s.results[1], { version: 3, ok: true });
  t.is(s.r.config.keepalive.ackTimeoutMs, 700, 'explicit value kept when the interval grows');
});

test('an explicit remote ackTimeoutMs is kept across a later interval-only change', async (t) => {
  const s = setup({ intervalMs: 5000 });
  await s.r.change(2, { keepalive: { ackTimeoutMs: 300 } });
  await s.r.change(3, { keepalive: { intervalMs: 1000 } });
  t.true(s.results.every((r) => r.ok));
  t.is(s.r.config.keepalive.ackTimeoutMs, 300);
});

test('mergeConfig over a validated config drops only the derived default, and only that key', (t) => {
  const base = fileConfig({ intervalMs: 5000 });
  const merged = mergeConfig(base, { fallback: { holdMs: 1000 } }) as { keepalive: Record<string, unknown> };
  t.false('ackTimeoutMs' in merged.keepalive, 'derived default left to validation');
  t.is(merged.keepalive.intervalMs, 5000);
  const v = validateAgentConfig(merged);
  t.true(v.ok);
  if (v.ok) t.is(v.config.keepalive.ackTimeoutMs, 750, 'and recomputed to the same value when the interval did not change');
  const explicit = mergeConfig(fileConfig({ intervalMs: 5000, ackTimeoutMs: 700 }), {}) as { keepalive: Record<string, unknown> };
  t.is(explicit.keepalive.ackTimeoutMs, 700);
});
