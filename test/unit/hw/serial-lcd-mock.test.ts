import test from 'ava';
import { pino } from 'pino';
import { SerialPortMock } from 'serialport';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { SerialLcd, type BindingInterface, type SerialLcdOptions } from '../../../src/hw/serial-lcd.js';
import { codecFor, encodeDiff, encodeFull, sanitizeFrame } from '../../../src/hw/lcd-protocol.js';
import { MatrixOrbitalEmulator } from '../../helpers/pty.js';

/** `@serialport/binding-mock`, reached through serialport (its own `exports` map hides its typings). */
const MockBinding = SerialPortMock.binding;
type MockPortBinding = Awaited<ReturnType<typeof MockBinding.open>>;

/**
 * MockBinding with faults a real device has: opens that fail, writes that
 * fail or finish late, and reads that end in a hangup. Every port it opens
 * is kept, so a test can read each one's recording.
 */
function faultyBinding() {
  const ctl = {
    ports: [] as MockPortBinding[],
    openAttempts: 0,
    failOpens: 0,
    failWrites: false,
    /** When set, writes wait for {@link release}. */
    gated: false,
    writesStarted: 0,
    inFlight: 0,
    releases: [] as (() => void)[],
    hangups: [] as ((err: Error) => void)[],
    release(): void {
      for (const r of ctl.releases.splice(0)) r();
    },
    hangup(): void {
      for (const h of ctl.hangups.splice(0)) h(Object.assign(new Error('EIO: i/o error, read'), { code: 'EIO' }));
    },
  };
  const binding = {
    ...MockBinding,
    async open(options: Parameters<typeof MockBinding.open>[0]) {
      ctl.openAttempts++;
      if (ctl.failOpens > 0) {
        ctl.failOpens--;
        throw Object.assign(new Error(`ENOENT: no such file, open ${options.path}`), { code: 'ENOENT' });
      }
      const p = await MockBinding.open(options);
      ctl.ports.push(p);
      const write = p.write.bind(p);
      p.write = async (buf: Buffer) => {
        ctl.writesStarted++;
        if (ctl.failWrites) throw Object.assign(new Error('EIO: i/o error, write'), { code: 'EIO' });
        ctl.inFlight++;
        try {
          if (ctl.gated) await new Promise<void>((r) => ctl.releases.push(r));
          return await write(buf);
        } finally {
          ctl.inFlight--;
        }
      };
      const read = p.read.bind(p);
      p.read = (buffer: Buffer, offset: number, length: number) =>
        new Promise((resolve, reject) => {
          ctl.hangups.push(reject);
          read(buffer, offset, length).then(resolve, reject);
        });
      return p;
    },
  };
  return { ctl, binding: binding as unknown as BindingInterface };
}

/** Let the mock binding's nextTick/promise chains run; bounded, no wall clock. */
async function settle(cond: () => boolean = () => false, maxTurns = 200): Promise<void> {
  for (let i = 0; i < maxTurns && !cond(); i++) await new Promise((r) => setImmediate(r));
}

function captureLog() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines, msgs: () => lines.filter((l) => l.mod === 'lcd').map((l) => `${l.level}:${String(l.msg)}`) };
}

let seq = 0;
function setup(over: Partial<SerialLcdOptions> = {}, create = true) {
  const path = `/dev/mock-lcd-${++seq}`;
  if (create) MockBinding.createPort(path, { echo: false, record: true });
  const { ctl, binding } = faultyBinding();
  const clock = new FakeClock();
  const cap = captureLog();
  const lcd = new SerialLcd({ path, baudRate: 19200, cols: 20, rows: 4, protocol: 'matrix-orbital', log: cap.log, clock, random: () => 0.5, binding, reopen: { baseMs: 100, maxMs: 1000 }, ...over });
  return { path, lcd, ctl, clock, cap };
}

function screenOf(port: MockPortBinding, cols = 20, rows = 4): MatrixOrbitalEmulator {
  const emu = new MatrixOrbitalEmulator(cols, rows);
  emu.feed(port.recording);
  return emu;
}

const mo = codecFor('matrix-orbital', 20, 4);
const frame = (...l: string[]) => sanitizeFrame(mo, l);

test('open draws the whole screen: clear, backlight, text', async (t) => {
  const { lcd, ctl, cap } = setup();
  lcd.show(['Home: cm-a', 'Ready']);
  await lcd.start();
  await settle(() => (ctl.ports[0]?.recording.length ?? 0) > 0);
  const port = ctl.ports[0]!;
  t.is(port.recording.toString('hex'), encodeFull(mo, frame('Home: cm-a', 'Ready')).toString('hex'));
  t.true(port.recording.subarray(0, 5).equals(Buffer.from([0xfe, 0x58, 0xfe, 0x42, 0x00])));
  t.deepEqual(screenOf(port).screen(), frame('Home: cm-a', 'Ready'));
  t.true(cap.msgs().includes('30:lcd opened'));
  t.true(cap.lines.some((l) => l.msg === 'lcd flush' && l.level === 20 && l.full === true));
  await lcd.close();
});

test('a second show writes only the changed cells; an unchanged show writes nothing', async (t) => {
  const { lcd, ctl } = setup();
  await lcd.start();
  lcd.show(['Home: cm-a', 'Ready']);
  await settle(() => lcd.stats.flushes >= 2 && ctl.inFlight === 0);
  const port = ctl.ports[0]!;
  lcd.show(['Home: cm-b', 'Ready']);
  await settle(() => port.lastWrite?.equals(Buffer.from([0xfe, 0x47, 10, 1, 0x62])) === true);
  t.deepEqual(port.lastWrite, Buffer.from([0xfe, 0x47, 10, 1, 0x62]));
  const before = port.recording.length;
  const flushes = lcd.stats.flushes;
  lcd.show(['Home: cm-b', 'Ready', '', '']);
  await settle();
  t.is(port.recording.length, before);
  t.is(lcd.stats.flushes, flushes);
  t.deepEqual(screenOf(port).screen(), frame('Home: cm-b', 'Ready'));
  await lcd.close();
});

test('hd44780-backpack: full redraw uses FE 01, 7C 9D and DDRAM addresses', async (t) => {
  const { lcd, ctl } = setup({ protocol: 'hd44780-backpack', cols: 16, rows: 2 });
  lcd.show(['No service', 'a|b']);
  await lcd.start();
  await settle(() => (ctl.ports[0]?.recording.length ?? 0) > 0 && ctl.inFlight === 0);
  const expected = Buffer.concat([Buffer.from([0xfe, 0x01, 0x7c, 0x9d, 0xfe, 0x80]), Buffer.from('No service'), Buffer.from([0xfe, 0xc0]), Buffer.from('a?b')]);
  t.is(ctl.ports[0]!.recording.toString('hex'), expected.toString('hex'));
  await lcd.close();
});

test('a write error drops the port, reopens with exponential backoff + jitter, and redraws everything', async (t) => {
  const { lcd, ctl, clock, cap } = setup();
  lcd.show(['Home: cm-a', 'Ready']);
  await lcd.start();
  await settle(() => lcd.stats.flushes === 1 && ctl.inFlight === 0);
  ctl.failWrites = true;
  ctl.failOpens = 2;
  lcd.show(['Home: cm-b', 'Ready']);
  await settle(() => lcd.stats.losses === 1);
  t.is(lcd.stats.losses, 1);
  t.false(lcd.isOpen);
  ctl.failWrites = false;
  t.is(ctl.openAttempts, 1);
  // random() = 0.5: delays 0.5 × 100, 0.5 × 200, 0.5 × 400 ms
  for (const delay of [50, 100, 200]) {
    const attempts = ctl.openAttempts;
    clock.advance(delay - 1);
    await settle();
    t.is(ctl.openAttempts, attempts, `no attempt before ${delay} ms`);
    clock.advance(1);
    await settle(() => ctl.openAttempts > attempts && (clock.pending === 1 || lcd.isOpen));
    t.is(ctl.openAttempts, attempts + 1, `attempt after ${delay} ms`);
  }
  await settle(() => (ctl.ports[1]?.recording.length ?? 0) > 0 && ctl.inFlight === 0);
  t.true(lcd.isOpen);
  const emu = screenOf(ctl.ports[1]!);
  t.is(emu.clears, 1);
  t.true(ctl.ports[1]!.recording.subarray(0, 2).equals(Buffer.from([0xfe, 0x58])), 'the redraw starts with clear');
  t.deepEqual(emu.screen(), frame('Home: cm-b', 'Ready'));
  t.deepEqual(cap.msgs().filter((m) => m.startsWith('30:')), ['30:lcd opened', '30:lcd lost', '30:lcd reopened']);
  // a success resets the backoff: the next loss waits 50 ms again
  ctl.hangup();
  await settle(() => lcd.stats.losses === 2);
  const attempts = ctl.openAttempts;
  clock.advance(50);
  await settle(() => lcd.isOpen);
  t.is(ctl.openAttempts, attempts + 1);
  await lcd.close();
});

test('the backoff ceiling is maxMs', async (t) => {
  const { lcd, ctl, clock } = setup({ random: () => 0.999, reopen: { baseMs: 100, maxMs: 300 } }, false);
  await lcd.start();
  for (let i = 0; i < 6; i++) {
    const attempts = ctl.openAttempts;
    clock.advance(300);
    // the failed open schedules the next attempt a few ticks later
    await settle(() => ctl.openAttempts > attempts && clock.pending === 1);
    t.is(ctl.openAttempts, attempts + 1, `attempt ${i} within maxMs`);
  }
  await lcd.close();
});

test('a hangup seen by the reader (close event) also reopens and redraws', async (t) => {
  const { lcd, ctl, clock } = setup();
  lcd.show(['Line one', 'Line two']);
  await lcd.start();
  await settle(() => lcd.stats.flushes === 1 && ctl.inFlight === 0);
  ctl.hangup();
  await settle(() => lcd.stats.losses === 1);
  t.is(lcd.stats.losses, 1);
  t.false(ctl.ports[0]!.isOpen, 'the lost port was closed');
  lcd.show(['Line one', 'Line 2']);
  clock.advance(50);
  await settle(() => (ctl.ports[1]?.recording.length ?? 0) > 0 && ctl.inFlight === 0);
  t.deepEqual(screenOf(ctl.ports[1]!).screen(), frame('Line one', 'Line 2'));
  await lcd.close();
});

test('a missing device at start is not fatal: warn, retry, draw when it appears', async (t) => {
  const { lcd, ctl, clock, cap, path } = setup({}, false);
  lcd.show(['waiting']);
  await t.notThrowsAsync(lcd.start());
  t.false(lcd.isOpen);
  t.true(cap.msgs().includes('40:lcd not available at start; retrying'));
  MockBinding.createPort(path, { echo: false, record: true });
  clock.advance(50);
  await settle(() => (ctl.ports[0]?.recording.length ?? 0) > 0 && ctl.inFlight === 0);
  t.true(lcd.isOpen);
  t.deepEqual(screenOf(ctl.ports[0]!).screen(), frame('waiting'));
  await lcd.close();
});

test('a slow port never blocks show(); frames coalesce to the latest', async (t) => {
  const { lcd, ctl } = setup();
  ctl.gated = true;
  lcd.show(['frame A']);
  await lcd.start();
  await settle(() => ctl.inFlight === 1);
  t.is(ctl.writesStarted, 1);
  for (let i = 0; i < 100; i++) lcd.show([`frame ${i}`, `counter ${i * 7}`]);
  lcd.show(['frame D', 'last']);
  await settle();
  t.is(ctl.writesStarted, 1, 'nothing queued behind the slow write');
  t.is(ctl.inFlight, 1);
  ctl.release();
  await settle(() => ctl.writesStarted === 2 && ctl.inFlight === 1);
  t.is(ctl.writesStarted, 2);
  ctl.release();
  await settle(() => ctl.inFlight === 0);
  await settle();
  t.is(ctl.writesStarted, 2, 'one write for all the frames shown meanwhile');
  const port = ctl.ports[0]!;
  t.is(port.lastWrite?.toString('hex'), encodeDiff(mo, frame('frame A'), frame('frame D', 'last')).toString('hex'));
  t.deepEqual(screenOf(port).screen(), frame('frame D', 'last'));
  await lcd.close();
});

test('a write that never finishes (stuck flow control) counts as lost after writeTimeoutMs + wire time', async (t) => {
  const { lcd, ctl, clock, cap } = setup({ writeTimeoutMs: 1000 });
  ctl.gated = true;
  lcd.show(['stuck']);
  await lcd.start();
  await settle(() => ctl.inFlight === 1);
  const bytes = encodeFull(mo, frame('stuck')).length;
  const timeout = 1000 + Math.ceil((bytes * 10 * 1000) / 19200);
  clock.advance(timeout - 1);
  await settle();
  t.is(lcd.stats.losses, 0);
  for (let i = 0; i < 10; i++) lcd.show(['stuck', `still ${i}`]);
  clock.advance(1);
  await settle(() => lcd.stats.losses === 1);
  t.is(lcd.stats.losses, 1);
  t.true(cap.lines.some((l) => l.msg === 'lcd lost' && /write not done/.test(String(l.err))));
  ctl.gated = false;
  clock.advance(50);
  await settle(() => (ctl.ports[1]?.recording.length ?? 0) > 0 && ctl.inFlight === 0);
  t.deepEqual(screenOf(ctl.ports[1]!).screen(), frame('stuck', 'still 9'));
  await lcd.close();
});

test('show() never throws, even on garbage', async (t) => {
  const { lcd, ctl } = setup();
  await lcd.start();
  t.notThrows(() => lcd.show(undefined as unknown as string[]));
  t.notThrows(() => lcd.show([42 as unknown as string, '\u0000\u2603']));
  await settle(() => lcd.stats.flushes >= 1 && ctl.inFlight === 0);
  t.deepEqual(screenOf(ctl.ports[0]!).screen(), frame('42', '??'));
  await lcd.close();
});

test('invalid options reject start() with BOARD_INVALID naming every problem', async (t) => {
  const { lcd, ctl } = setup({ cols: 0, protocol: 'vt100' as 'matrix-orbital' });
  const err = await t.throwsAsync(lcd.start());
  t.true(isIpphoneError(err, 'BOARD_INVALID'));
  t.regex(err!.message, /protocol/);
  t.regex(err!.message, /cols/);
  t.is(ctl.openAttempts, 0);
  t.notThrows(() => lcd.show(['x']));
  await t.notThrowsAsync(lcd.close());
  for (const over of [{ protocol: 'hd44780-backpack', cols: 40, rows: 4 }, { baudRate: 0 }, { path: '' }, { writeTimeoutMs: -1 }, { reopen: { baseMs: 500, maxMs: 100 } }] as Partial<SerialLcdOptions>[]) {
    const bad = setup(over);
    t.true(isIpphoneError(await t.throwsAsync(bad.lcd.start()), 'BOARD_INVALID'), JSON.stringify(over));
    t.is(bad.ctl.openAttempts, 0);
  }
});

test('close() is idempotent, closes the port, cancels retries, and later shows are dropped', async (t) => {
  const { lcd, ctl, clock } = setup();
  lcd.show(['bye']);
  await lcd.start();
  await settle(() => lcd.stats.flushes === 1 && ctl.inFlight === 0);
  await lcd.close();
  await lcd.close();
  t.false(ctl.ports[0]!.isOpen);
  const len = ctl.ports[0]!.recording.length;
  lcd.show(['after']);
  await settle();
  t.is(ctl.ports[0]!.recording.length, len);

  const waiting = setup({}, false);
  await waiting.lcd.start();
  t.is(waiting.clock.pending, 1, 'a retry is scheduled');
  await waiting.lcd.close();
  t.is(waiting.clock.pending, 0, 'and cancelled by close');
  waiting.clock.advance(10_000);
  await settle();
  t.is(waiting.ctl.openAttempts, 1);
  t.is(clock.pending, 0);
});
