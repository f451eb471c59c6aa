/**
 * The serial LCD driver against real ptys made by socat: the driver opens one
 * end through serialport's native binding, the test decodes the other end
 * with a Matrix Orbital emulator. Killing socat is the unplugged display;
 * a new socat at the same link paths is the display plugged back in.
 */
import test from 'ava';
import path from 'node:path';
import { pino } from 'pino';
import { SerialLcd } from '../../src/hw/serial-lcd.js';
import { sanitizeRow } from '../../src/hw/lcd-protocol.js';
import { emulateFar, startPtyPair, tempDir, until } from '../helpers/pty.js';

function capture() {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, infos: () => lines.filter((l) => l.mod === 'lcd' && l.level === 30).map((l) => String(l.msg)) };
}

const expected = (cols: number, rows: number, lines: string[]) => Array.from({ length: rows }, (_, r) => sanitizeRow(lines[r] ?? '', cols));

test('draws on a real pty, survives the pty going away, redraws everything on the new one', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.remove);
  const near = path.join(tmp.dir, 'lcd');
  const far = path.join(tmp.dir, 'far');
  let pair = await startPtyPair(near, far);
  let reader = emulateFar(far, 20, 4);
  const cap = capture();
  const lcd = new SerialLcd({ path: near, baudRate: 19200, cols: 20, rows: 4, protocol: 'matrix-orbital', log: cap.log, reopen: { baseMs: 20, maxMs: 200 } });
  t.teardown(async () => {
    await lcd.close();
    reader.close();
    await pair.kill().catch(() => {});
  });

  await lcd.start();
  t.true(lcd.isOpen);
  lcd.show(['Home: cm-a', 'Ready', 'Zürich', '12:00']);
  const first = expected(20, 4, ['Home: cm-a', 'Ready', 'Z?rich', '12:00']);
  await until(() => reader.emu.screen().join('|') === first.join('|'), 5000, `first screen; got ${JSON.stringify(reader.emu.screen())}`);
  t.deepEqual(reader.emu.screen(), first);
  t.is(reader.emu.clears, 1);
  t.true(reader.emu.backlight);

  // A change sends only the changed cells.
  const before = reader.emu.bytes;
  lcd.show(['Home: cm-b', 'Ready', 'Zürich', '12:00']);
  const second = expected(20, 4, ['Home: cm-b', 'Ready', 'Z?rich', '12:00']);
  await until(() => reader.emu.screen()[0] === second[0], 5000, 'second screen');
  t.is(reader.emu.bytes - before, 5, 'one cursor move (4 bytes) and one character');
  t.deepEqual(reader.emu.screen(), second);

  // Unplug: socat goes away, both ptys hang up.
  await pair.kill();
  reader.close();
  await until(() => !lcd.isOpen, 5000, 'the driver to notice the hangup');
  t.notThrows(() => lcd.show(['Home: none', 'No service', 'Zürich', '12:01']));

  // Plug back in at the same paths: a fresh pty whose screen knows nothing.
  pair = await startPtyPair(near, far);
  reader = emulateFar(far, 20, 4);
  const third = expected(20, 4, ['Home: none', 'No service', 'Z?rich', '12:01']);
  await until(() => reader.emu.screen().join('|') === third.join('|'), 5000, `redraw after reopen; got ${JSON.stringify(reader.emu.screen())}`);
  t.deepEqual(reader.emu.screen(), third);
  t.is(reader.emu.clears, 1, 'the redraw starts with a clear');
  t.true(reader.emu.backlight);
  t.deepEqual(reader.emu.errors, []);
  t.true(lcd.isOpen);
  t.deepEqual(cap.infos().slice(0, 3), ['lcd opened', 'lcd lost', 'lcd reopened']);
});

test('a display that is not there at start appears later and gets drawn', async (t) => {
  const tmp = tempDir();
  t.teardown(tmp.remove);
  const near = path.join(tmp.dir, 'lcd');
  const far = path.join(tmp.dir, 'far');
  const cap = capture();
  const lcd = new SerialLcd({ path: near, baudRate: 9600, cols: 16, rows: 2, protocol: 'matrix-orbital', log: cap.log, reopen: { baseMs: 20, maxMs: 100 } });
  let reader: ReturnType<typeof emulateFar> | undefined;
  let pair: Awaited<ReturnType<typeof startPtyPair>> | undefined;
  t.teardown(async () => {
    await lcd.close();
    reader?.close();
    await pair?.kill().catch(() => {});
  });
  await lcd.start();
  t.false(lcd.isOpen);
  lcd.show(['late', 'but here']);
  pair = await startPtyPair(near, far);
  reader = emulateFar(far, 16, 2);
  const want = expected(16, 2, ['late', 'but here']);
  const r = reader;
  await until(() => r.emu.screen().join('|') === want.join('|'), 5000, 'screen after late open');
  t.deepEqual(r.emu.screen(), want);
});
