import test from 'ava';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { blankFrame, changedRuns, codecFor, encodeDiff, encodeFull, hd44780RowOffsets, sanitizeFrame, sanitizeRow } from '../../../src/hw/lcd-protocol.js';
import { MatrixOrbitalEmulator } from '../../helpers/pty.js';

const hex = (b: Buffer) => b.toString('hex');
const bytes = (...parts: (number[] | string)[]) =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

test('matrix-orbital: clear, 1-based cursor, backlight', (t) => {
  const mo = codecFor('matrix-orbital', 20, 4);
  t.is(hex(mo.clear()), 'fe58');
  t.is(hex(mo.cursor(0, 0)), 'fe470101');
  t.is(hex(mo.cursor(19, 3)), 'fe471404');
  t.is(hex(mo.cursor(4, 1)), 'fe470502');
  t.is(hex(mo.backlight(true)), 'fe4200');
  t.is(hex(mo.backlight(false)), 'fe46');
  t.is(mo.cursorBytes, 4);
});

test('hd44780-backpack: clear, DDRAM row offsets for 20x4, 16x2, 16x4, backlight', (t) => {
  const b20 = codecFor('hd44780-backpack', 20, 4);
  t.is(hex(b20.clear()), 'fe01');
  t.deepEqual([0, 1, 2, 3].map((r) => hex(b20.cursor(0, r))), ['fe80', 'fec0', 'fe94', 'fed4']);
  t.is(hex(b20.cursor(19, 3)), 'fee7'); // 0x80 | (0x54 + 19)
  const b16 = codecFor('hd44780-backpack', 16, 2);
  t.deepEqual([hex(b16.cursor(0, 0)), hex(b16.cursor(0, 1)), hex(b16.cursor(15, 1))], ['fe80', 'fec0', 'fecf']);
  const b164 = codecFor('hd44780-backpack', 16, 4);
  t.deepEqual([0, 1, 2, 3].map((r) => hex(b164.cursor(0, r))), ['fe80', 'fec0', 'fe90', 'fed0']);
  t.is(hex(b20.backlight(true)), '7c9d');
  t.is(hex(b20.backlight(false)), '7c80');
  t.is(b20.cursorBytes, 2);
  t.deepEqual(hd44780RowOffsets(20, 4), [0x00, 0x40, 0x14, 0x54]);
  t.deepEqual(hd44780RowOffsets(16, 2), [0x00, 0x40]);
});

test('bad geometry, protocol or cursor is BOARD_INVALID', (t) => {
  for (const [p, c, r] of [['matrix-orbital', 0, 4], ['matrix-orbital', 20, 0], ['matrix-orbital', 41, 2], ['matrix-orbital', 2.5, 2], ['hd44780-backpack', 40, 4], ['hd44780-backpack', 20, 3], ['vt100', 20, 4]] as const) {
    const err = t.throws(() => codecFor(p, c, r), undefined, `${p} ${c}x${r}`);
    t.true(isIpphoneError(err, 'BOARD_INVALID'), `${p} ${c}x${r}`);
  }
  const mo = codecFor('matrix-orbital', 16, 2);
  t.true(isIpphoneError(t.throws(() => mo.cursor(16, 0)), 'BOARD_INVALID'));
  t.true(isIpphoneError(t.throws(() => mo.cursor(0, 2)), 'BOARD_INVALID'));
});

test('sanitizeRow pads, cuts and replaces non-printable ASCII with ?', (t) => {
  t.is(sanitizeRow('ab', 5), 'ab   ');
  t.is(sanitizeRow('abcdefgh', 5), 'abcde');
  t.is(sanitizeRow('Zürich\tx', 8), 'Z?rich?x');
  t.is(sanitizeRow('a😀b', 4), 'a?b ', 'an astral code point is one cell');
  t.is(sanitizeRow('\x1b[2J', 4), '?[2J');
  t.is(sanitizeRow('\x7f~ ', 3), '?~ ');
  t.is(sanitizeRow('a|b', 3, new Set([0x7c])), 'a?b', 'reserved bytes are replaced');
  const bp = codecFor('hd44780-backpack', 16, 2);
  t.deepEqual(sanitizeFrame(bp, ['x|y']), ['x?y             ', ' '.repeat(16)]);
  const mo = codecFor('matrix-orbital', 4, 2);
  t.deepEqual(sanitizeFrame(mo, ['a|', 'b', 'dropped']), ['a|  ', 'b   ']);
});

test('changedRuns: none when equal, separate runs, merged across gaps shorter than a cursor move', (t) => {
  t.deepEqual(changedRuns('hello', 'hello', 4), []);
  t.deepEqual(changedRuns('hello', 'jello', 4), [{ start: 0, end: 1 }]);
  // gap of 3 unchanged cells < 4-byte cursor move: merge
  t.deepEqual(changedRuns('aXXXbcccccccd', 'zXXXycccccccq', 4), [{ start: 0, end: 5 }, { start: 12, end: 13 }]);
  // gap of 4 = cursor cost: not fewer bytes, keep separate
  t.deepEqual(changedRuns('aXXXXb', 'zXXXXy', 4), [{ start: 0, end: 1 }, { start: 5, end: 6 }]);
  // the HD44780 cursor costs 2: a gap of 1 merges, a gap of 2 does not
  t.deepEqual(changedRuns('aXbXXc', 'zXyXXq', 2), [{ start: 0, end: 3 }, { start: 5, end: 6 }]);
});

test('encodeDiff: no bytes when unchanged', (t) => {
  const mo = codecFor('matrix-orbital', 20, 4);
  const f = sanitizeFrame(mo, ['CM cm-a', 'ready']);
  t.is(encodeDiff(mo, f, f).length, 0);
});

test('encodeDiff: only the changed runs, each behind a cursor move (matrix-orbital)', (t) => {
  const mo = codecFor('matrix-orbital', 20, 4);
  const a = sanitizeFrame(mo, ['Home: cm-a', 'idle', '', '12:00']);
  const b = sanitizeFrame(mo, ['Home: cm-b', 'idle', '', '12:01']);
  t.is(hex(encodeDiff(mo, a, b)), hex(bytes([0xfe, 0x47, 10, 1], 'b', [0xfe, 0x47, 5, 4], '1')));
  // two far-apart changes in one row: two cursor moves
  const c = sanitizeFrame(mo, ['Xome: cm-a', 'idle', '', '12:00']);
  const d = sanitizeFrame(mo, ['Home: cm-a          X']);
  t.is(hex(encodeDiff(mo, c, sanitizeFrame(mo, ['Home: cm-a         Z', 'idle', '', '12:00']))), hex(bytes([0xfe, 0x47, 1, 1], 'H', [0xfe, 0x47, 20, 1], 'Z')));
  // a non-ASCII character arrives as '?'
  t.is(hex(encodeDiff(mo, d, sanitizeFrame(mo, ['Home: cm-ä          X']))), hex(bytes([0xfe, 0x47, 10, 1], '?')));
});

test('encodeDiff: hd44780-backpack uses DDRAM addresses', (t) => {
  const bp = codecFor('hd44780-backpack', 16, 2);
  const a = sanitizeFrame(bp, ['abc', 'def']);
  const b = sanitizeFrame(bp, ['abc', 'dXf']);
  t.is(hex(encodeDiff(bp, a, b)), hex(bytes([0xfe, 0xc1], 'X')));
});

test('encodeFull: clear, backlight on, then only the non-blank text', (t) => {
  const mo = codecFor('matrix-orbital', 20, 4);
  const f = sanitizeFrame(mo, ['No service', '', '', '   *']);
  t.is(hex(encodeFull(mo, f)), hex(bytes([0xfe, 0x58, 0xfe, 0x42, 0], [0xfe, 0x47, 1, 1], 'No service', [0xfe, 0x47, 4, 4], '*')));
  const bp = codecFor('hd44780-backpack', 20, 4);
  t.is(hex(encodeFull(bp, sanitizeFrame(bp, ['', '', 'x']))), hex(bytes([0xfe, 0x01, 0x7c, 0x9d, 0xfe, 0x94], 'x')));
  t.is(hex(encodeFull(mo, blankFrame(mo))), 'fe58fe4200');
});

test('diffs replayed on an emulator always give the target screen', (t) => {
  const mo = codecFor('matrix-orbital', 8, 2);
  const frames = [['hello', 'world'], ['help', 'world!'], ['', 'w o r l'], ['ZZZZZZZZ', 'a'], ['h€llo', '']];
  const emu = new MatrixOrbitalEmulator(8, 2);
  let shown = sanitizeFrame(mo, frames[0]!);
  emu.feed(encodeFull(mo, shown));
  for (const f of frames.slice(1)) {
    const next = sanitizeFrame(mo, f);
    emu.feed(encodeDiff(mo, shown, next));
    t.deepEqual(emu.screen(), next);
    shown = next;
  }
  t.deepEqual(emu.errors, []);
});
