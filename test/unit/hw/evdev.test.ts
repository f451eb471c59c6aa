/**
 * The evdev reader, keypad and hook switch on real files: a FIFO fed with
 * kernel-format records of both layouts (test/helpers/evdev-fifo.ts) stands in
 * for /dev/input/eventN. The reopen backoff and the poll intervals are checked on an
 * injected file system and a fake clock.
 */
import { join } from 'node:path';
import test from 'ava';
import { EvdevDevice, type EvdevFs } from '../../../src/hw/evdev.js';
import { EvdevHookSwitch } from '../../../src/hw/evdev-hook.js';
import { EvdevKeypad } from '../../../src/hw/evdev-keypad.js';
import { encodeEvents, layoutFor } from '../../../src/hw/evdev-codec.js';
import { KEY_CODES, SW_CODES } from '../../../src/hw/input-codes.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { capturingLogger } from '../../helpers/log-capture.js';
import { FifoFeeder, ev } from '../../helpers/evdev-fifo.js';
import { tempDir, until } from '../../helpers/pty.js';

const K = KEY_CODES;

/** A keypad and a hook on one FIFO, read as `arch` lays records out. */
async function rig(t: { teardown(fn: () => unknown): void }, arch: string, opts: { keymap?: Record<string, string>; event?: string; offHookValue?: 0 | 1 } = {}) {
  const tmp = tempDir('ipphone-evdev-');
  const path = join(tmp.dir, 'event0');
  const feeder = new FifoFeeder(path, arch);
  const cap = capturingLogger();
  const device = new EvdevDevice({ path, log: cap.log, arch, reopen: { baseMs: 10, maxMs: 40 } });
  const keypad = new EvdevKeypad({ device, ...(opts.keymap ? { keymap: opts.keymap } : {}), log: cap.log });
  const hook = new EvdevHookSwitch({ device, event: opts.event ?? 'KEY_PHONE', offHookValue: opts.offHookValue ?? 1, log: cap.log });
  const keys: string[] = [];
  const changes: boolean[] = [];
  keypad.onKey((k) => keys.push(k));
  hook.onChange((h) => changes.push(h));
  t.teardown(async () => {
    await keypad.close();
    await hook.close();
    feeder.close();
    tmp.remove();
  });
  await keypad.start();
  await hook.start();
  return { device, keypad, hook, keys, changes, feeder, cap, path };
}

for (const arch of ['x64', 'arm']) {
  const size = layoutFor(arch)!.size;
  test(`${arch} (${size}-byte records): presses become keys, releases and autorepeats do not; the hook follows KEY_PHONE`, async (t) => {
    const r = await rig(t, arch, { keymap: { KEY_1: '1', KEY_NUMERIC_STAR: '*', KEY_NUMERIC_POUND: '#', '257': 'menu' } });
    r.feeder.write([ev.key(K.KEY_1!, 1), ev.report(), ev.key(K.KEY_1!, 2), ev.report(), ev.key(K.KEY_1!, 2), ev.report(), ev.key(K.KEY_1!, 0), ev.report()]);
    r.feeder.write([ev.key(K.KEY_NUMERIC_STAR!, 1), ev.report(), ev.key(K.KEY_NUMERIC_STAR!, 0), ev.report()]);
    r.feeder.write([ev.key(257, 1), ev.report(), ev.key(K.KEY_9!, 1), ev.report()]);
    r.feeder.write([ev.key(K.KEY_PHONE!, 1), ev.report()]);
    await until(() => r.changes.length === 1, 5000, 'off hook');
    t.deepEqual(r.keys, ['1', '*', 'menu'], 'one key per press; KEY_9 is not in the keymap');
    t.true(r.hook.isOffHook());
    r.feeder.write([ev.key(K.KEY_PHONE!, 2), ev.report(), ev.key(K.KEY_NUMERIC_POUND!, 1), ev.report()]);
    await until(() => r.keys.length === 4, 5000, 'pound');
    t.true(r.hook.isOffHook(), 'an autorepeat of the hook key changes nothing');
    r.feeder.write([ev.key(K.KEY_PHONE!, 0), ev.report()]);
    await until(() => r.changes.length === 2, 5000, 'on hook');
    t.deepEqual(r.changes, [true, false]);
    t.deepEqual(r.keys, ['1', '*', 'menu', '#']);
    t.is(r.device.stats.opens, 1, 'keypad and hook share one reader');
  });
}

test('records split across writes are put together; events act only when their frame ends', async (t) => {
  const r = await rig(t, 'x64');
  const bytes = encodeEvents([ev.key(K.KEY_NUMERIC_5!, 1), ev.key(K.KEY_KP7!, 1), ev.report()], layoutFor('x64')!);
  r.feeder.bytes(bytes.subarray(0, 30));
  r.feeder.bytes(bytes.subarray(30, 50));
  // No SYN_REPORT yet: nothing may be reported. A later frame proves the reader got this far.
  r.feeder.bytes(bytes.subarray(50));
  await until(() => r.keys.length === 2, 5000, 'both keys');
  t.deepEqual(r.keys, ['5', '7'], 'the default keymap: phone and numeric keypad digits');
});

test('SYN_DROPPED: the partial frame and the rest up to the next SYN_REPORT are discarded; the hook keeps its last state, marked stale, until the next hook event', async (t) => {
  const r = await rig(t, 'x64');
  r.feeder.write([ev.key(K.KEY_PHONE!, 1), ev.report()]);
  await until(() => r.changes.length === 1, 5000, 'off hook');
  // A press in the frame cut by the drop, a hook release and a press after it before the resync: all lost.
  r.feeder.write([ev.key(K.KEY_1!, 1), ev.dropped(), ev.key(K.KEY_PHONE!, 0), ev.key(K.KEY_2!, 1), ev.report()]);
  r.feeder.write([ev.key(K.KEY_3!, 1), ev.report()]);
  await until(() => r.keys.length === 1, 5000, 'the key after the resync');
  t.deepEqual(r.keys, ['3']);
  t.true(r.hook.isOffHook(), 'last known state kept: no change invented');
  t.true(r.hook.stale);
  t.deepEqual(r.changes, [true]);
  t.is(r.device.stats.dropped, 1);
  t.true(r.cap.lines.some((l) => l.msg === 'hook events lost; keeping the last known state until the next hook event'));
  // The next hook event carries the true state.
  r.feeder.write([ev.key(K.KEY_PHONE!, 0), ev.report()]);
  await until(() => r.changes.length === 2, 5000, 'on hook');
  t.false(r.hook.stale);
  t.false(r.hook.isOffHook());
});

test('a hook on a switch (EV_SW) with offHookValue 0: the switch closed means on the cradle', async (t) => {
  const r = await rig(t, 'arm', { event: 'SW_DOCK', offHookValue: 0 });
  r.feeder.write([ev.sw(SW_CODES.SW_DOCK!, 0), ev.report()]);
  await until(() => r.changes.length === 1, 5000, 'off hook');
  t.true(r.hook.isOffHook());
  // A key with the same code number as the switch is another event.
  r.feeder.write([ev.key(SW_CODES.SW_DOCK!, 1), ev.report(), ev.sw(SW_CODES.SW_DOCK!, 1), ev.report()]);
  await until(() => r.changes.length === 2, 5000, 'on hook');
  t.deepEqual(r.changes, [true, false]);
});

test('the device removed and made again: the reader reopens it and keys flow; the hook state is kept, stale', async (t) => {
  const r = await rig(t, 'x64');
  r.feeder.write([ev.key(K.KEY_1!, 1), ev.report(), ev.key(K.KEY_PHONE!, 1), ev.report()]);
  await until(() => r.changes.length === 1, 5000, 'first key and off hook');
  r.feeder.remove();
  await until(() => r.device.stats.losses === 1, 5000, 'the loss');
  t.false(r.device.isOpen);
  t.true(r.hook.stale);
  t.true(r.hook.isOffHook());
  r.feeder.replug();
  await until(() => r.device.isOpen, 5000, 'reopened');
  r.feeder.write([ev.key(K.KEY_2!, 1), ev.report()]);
  await until(() => r.keys.length === 2, 5000, 'a key after the reopen');
  t.deepEqual(r.keys, ['1', '2']);
  t.is(r.device.stats.opens, 2);
  const infos = r.cap.lines.filter((l) => l.mod === 'evdev' && l.level === 30).map((l) => l.msg);
  t.deepEqual(infos, ['input device opened', 'input device lost', 'input device reopened']);
});

test('a device missing at start is waited for; the agent starts without it', async (t) => {
  const tmp = tempDir('ipphone-evdev-');
  t.teardown(tmp.remove);
  const path = join(tmp.dir, 'late');
  const cap = capturingLogger();
  const device = new EvdevDevice({ path, log: cap.log, reopen: { baseMs: 10, maxMs: 20 } });
  const keypad = new EvdevKeypad({ device, log: cap.log });
  const keys: string[] = [];
  keypad.onKey((k) => keys.push(k));
  await keypad.start();
  await until(() => cap.lines.some((l) => l.msg === 'input device not available; retrying'), 5000, 'the warning');
  const feeder = new FifoFeeder(path, process.arch);
  t.teardown(async () => {
    await keypad.close();
    feeder.close();
  });
  feeder.write([ev.key(K.KEY_0!, 1), ev.report()]);
  await until(() => keys.length === 1, 5000, 'the key');
  t.deepEqual(keys, ['0']);
});

/** A file system whose open fails with `codes` in turn, then hands out fd 7 that never has anything to read. */
function failingFs(codes: string[]): EvdevFs & { opens: number; reads: number; closed: number[] } {
  const fs = {
    opens: 0,
    reads: 0,
    closed: [] as number[],
    open: async () => {
      const code = codes[fs.opens++];
      if (code !== undefined) throw Object.assign(new Error(code), { code });
      return 7;
    },
    read: async () => {
      fs.reads++;
      return null;
    },
    close: async (fd: number) => void fs.closed.push(fd),
  };
  return fs;
}

const flush = () => new Promise((r) => setImmediate(r));

test('reopen backoff: attempt n waits random × min(max, base × 2^n) on the injected clock', async (t) => {
  const clock = new FakeClock();
  const fs = failingFs(['ENOENT', 'ENODEV', 'ENOENT', 'ENOENT', 'ENOENT']);
  const device = new EvdevDevice({ path: '/dev/input/event9', log: silentLogger(), clock, random: () => 0.5, reopen: { baseMs: 100, maxMs: 500 }, fs });
  await device.start();
  await flush();
  t.is(fs.opens, 1);
  // Waits: 0.5 × 100, 0.5 × 200, 0.5 × 400, then capped: 0.5 × 500, 0.5 × 500.
  for (const wait of [50, 100, 200, 250, 250]) {
    clock.advance(wait - 1);
    await flush();
    const before = fs.opens;
    clock.advance(1);
    await flush();
    t.is(fs.opens, before + 1, `after ${wait} ms`);
  }
  t.true(device.isOpen);
  await device.close();
  t.is(clock.pending, 0);
});

/** A file system with one device (fd 7) whose reads return what `queue` holds, else nothing. */
function queueFs(queue: Buffer[]): EvdevFs & { reads: number; closed: number[] } {
  const fs = {
    reads: 0,
    closed: [] as number[],
    open: async () => 7,
    read: async (_fd: number, buf: Buffer) => {
      fs.reads++;
      const next = queue.shift();
      if (next === undefined) return null;
      next.copy(buf);
      return next.length;
    },
    close: async (fd: number) => void fs.closed.push(fd),
  };
  return fs;
}

test('an idle device is read every poll.idleMs, every poll.activeMs within poll.activeForMs of its last event; close() ends the wait and closes the fd at once', async (t) => {
  const clock = new FakeClock();
  const queue: Buffer[] = [];
  const fs = queueFs(queue);
  const keys: string[] = [];
  const device = new EvdevDevice({ path: '/dev/input/event9', log: silentLogger(), clock, arch: 'x64', poll: { idleMs: 100, activeMs: 20, activeForMs: 1000 }, fs });
  const keypad = new EvdevKeypad({ device, log: silentLogger() });
  keypad.onKey((k) => keys.push(k));
  await keypad.start();
  await flush();
  t.is(fs.reads, 1);
  /** Let `ms` pass in steps of 10 ms, running the reads each step makes due. */
  const run = async (ms: number) => {
    for (let i = 0; i < ms / 10; i++) {
      clock.advance(10);
      await flush();
    }
  };
  await run(90);
  t.is(fs.reads, 1, 'idle: nothing read before 100 ms');
  await run(10);
  t.is(fs.reads, 2);
  await run(1000);
  t.is(fs.reads, 12, 'one read per 100 ms while idle');
  queue.push(encodeEvents([ev.key(K.KEY_5!, 1), ev.report()], layoutFor('x64')!));
  await run(100);
  t.deepEqual(keys, ['5'], 'the key at the next idle read');
  const atKey = fs.reads;
  await run(1000);
  t.is(fs.reads - atKey, 50, 'every 20 ms for a second after the key');
  await run(1000);
  t.is(fs.reads - atKey, 60, 'then every 100 ms again');
  await keypad.close();
  await flush();
  t.deepEqual(fs.closed, [7]);
  t.is(clock.pending, 0);
});

test('close() while waiting to reopen cancels the retry; closing twice is fine', async (t) => {
  const clock = new FakeClock();
  const fs = failingFs(['ENOENT', 'ENOENT']);
  const device = new EvdevDevice({ path: '/dev/input/event9', log: silentLogger(), clock, random: () => 1, reopen: { baseMs: 100, maxMs: 100 }, fs });
  await device.start();
  await flush();
  t.is(clock.pending, 1);
  await device.close();
  await device.close();
  t.is(clock.pending, 0);
  clock.advance(1000);
  await flush();
  t.is(fs.opens, 1);
});

test('a device shared by two users stays open until the last one closes', async (t) => {
  const fs = failingFs([]);
  const device = new EvdevDevice({ path: '/dev/input/event9', log: silentLogger(), clock: new FakeClock(), fs });
  await device.start();
  await device.start();
  await flush();
  t.is(fs.opens, 1);
  await device.close();
  t.true(device.isOpen);
  await device.close();
  t.false(device.isOpen);
});

test('an architecture without a known record layout is refused with HW_UNAVAILABLE', async (t) => {
  const device = new EvdevDevice({ path: '/dev/input/event0', log: silentLogger(), arch: 's390x', fs: failingFs([]) });
  const err = await t.throwsAsync(device.start());
  t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));
  t.regex(err!.message, /s390x/);
});

test('a keymap naming an unknown code, or a switch, is BOARD_INVALID naming each entry', async (t) => {
  const device = new EvdevDevice({ path: '/dev/input/event0', log: silentLogger(), fs: failingFs([]), clock: new FakeClock() });
  const keypad = new EvdevKeypad({ device, keymap: { KEY_1: '1', KEY_ONE: '1', SW_LID: 'x', '9999': '9' }, log: silentLogger() });
  const err = await t.throwsAsync(keypad.start());
  t.true(isIpphoneError(err, 'BOARD_INVALID'));
  const problems = (err as unknown as { context: { problems: string[] } }).context.problems;
  t.is(problems.length, 3, problems.join('\n'));
  // JSON object order: integer-like names first.
  t.regex(problems[0]!, /^keypad\/keymap\/9999: key code 9999 is out of range/);
  t.regex(problems[1]!, /^keypad\/keymap\/KEY_ONE: unknown input event code/);
  t.regex(problems[2]!, /^keypad\/keymap\/SW_LID: is a switch/);
  t.false(device.isOpen, 'nothing opened');
});
