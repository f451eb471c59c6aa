/**
 * LED-class lamps on a real directory laid out as /sys/class/leds/NAME is
 * (`brightness`, `max_brightness`); failures and retries on an injected
 * file system and a fake clock.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { ClassLed, type LedFs } from '../../../src/hw/class-led.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { capturingLogger } from '../../helpers/log-capture.js';
import { tempDir, until } from '../../helpers/pty.js';

function ledDir(t: { teardown(fn: () => unknown): void }, max: string) {
  const tmp = tempDir('ipphone-led-');
  t.teardown(tmp.remove);
  const dir = join(tmp.dir, 'red:no-service');
  mkdirSync(dir);
  writeFileSync(join(dir, 'max_brightness'), max);
  writeFileSync(join(dir, 'brightness'), '7\n');
  return { dir, brightness: () => readFileSync(join(dir, 'brightness'), 'utf8') };
}

test('lit writes max_brightness to brightness, dark writes 0; start() leaves the lamp as the kernel has it', async (t) => {
  const d = ledDir(t, '255\n');
  const led = new ClassLed({ dir: d.dir, name: 'noService', log: capturingLogger().log });
  await led.start();
  t.is(d.brightness(), '7\n', 'no flicker before the first set()');
  led.set(true);
  await until(() => led.settled, 5000, 'lit');
  t.is(d.brightness(), '255\n');
  led.set(false);
  await until(() => led.settled, 5000, 'dark');
  t.is(d.brightness(), '0\n');
  await led.close();
});

test('a gpio-leds lamp (max_brightness 1) is lit with 1; sets in a burst end in the last state', async (t) => {
  const d = ledDir(t, '1\n');
  const led = new ClassLed({ dir: d.dir, name: 'message', log: capturingLogger().log });
  await led.start();
  for (const on of [true, false, true, false, true]) led.set(on);
  await until(() => led.settled, 5000, 'settled');
  t.is(d.brightness(), '1\n');
  t.true(led.stats.writes <= 3, `writes coalesce: ${led.stats.writes}`);
  await led.close();
});

/** A lamp file system that is missing until `present` is set. */
function lateFs() {
  const files = new Map<string, string>([['/sys/class/leds/x/max_brightness', '4\n']]);
  const state = { present: false, writes: [] as string[] };
  const fs: LedFs = {
    readFile: async (p) => {
      if (!state.present) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      return files.get(p) ?? '';
    },
    writeFile: async (p, text) => {
      if (!state.present) throw Object.assign(new Error(`ENOENT: ${p}`), { code: 'ENOENT' });
      state.writes.push(`${p}=${text.trim()}`);
    },
  };
  return { fs, state };
}

const flush = () => new Promise((r) => setImmediate(r));

test('a lamp that is not there is logged once, never thrown, and retried with backoff until it appears', async (t) => {
  const clock = new FakeClock();
  const { fs, state } = lateFs();
  const cap = capturingLogger();
  const led = new ClassLed({ dir: '/sys/class/leds/x', name: 'noService', log: cap.log, clock, random: () => 0.5, retry: { baseMs: 1000, maxMs: 4000 }, fs });
  await t.notThrowsAsync(led.start());
  t.notThrows(() => led.set(true));
  // Retries at 0.5 × 1000, 0.5 × 2000, 0.5 × 4000, 0.5 × 4000 ms.
  for (const wait of [500, 1000, 2000, 2000]) {
    const before = led.stats.failures;
    clock.advance(wait);
    await flush();
    t.is(led.stats.failures, before + 1, `retry after ${wait} ms`);
  }
  t.is(cap.lines.filter((l) => l.msg === 'lamp write failed; retrying').length, 1, 'one warning per outage');
  state.present = true;
  clock.advance(2000);
  await flush();
  t.deepEqual(state.writes, ['/sys/class/leds/x/brightness=4'], 'lit with its max_brightness once it appears');
  t.true(led.settled);
  t.true(cap.lines.some((l) => l.msg === 'lamp writable again'));
  await led.close();
  t.is(clock.pending, 0);
});

test('a bad max_brightness is a failure like a missing file, not a lamp lit at NaN', async (t) => {
  const clock = new FakeClock();
  const writes: string[] = [];
  const fs: LedFs = { readFile: async () => 'banana\n', writeFile: async (_p, text) => void writes.push(text) };
  const led = new ClassLed({ dir: '/sys/class/leds/y', name: 'message', log: capturingLogger().log, clock, random: () => 0, fs });
  await led.start();
  led.set(true);
  await flush();
  t.deepEqual(writes, []);
  t.true(led.stats.failures >= 1);
  t.false(led.settled);
  await led.close();
});
