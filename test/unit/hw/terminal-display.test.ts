import test from 'ava';
import { TerminalDisplay } from '../../../src/hw/terminal-display.js';
import { VtScreen } from '../../helpers/vt-screen.js';

/** A writable that records every chunk. */
function sink(isTTY?: boolean) {
  const chunks: string[] = [];
  return { chunks, out: { write: (s: string) => chunks.push(s), ...(isTTY === undefined ? {} : { isTTY }) } };
}

const ESC = '\x1b';

test('plain mode prints the framed screen as plain lines', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 6, rows: 2, out, isTTY: false });
  d.show(['CM a']);
  t.is(chunks.length, 1);
  t.is(chunks[0], ['┌──────┐', '│CM a  │', '│      │', '└──────┘', ''].join('\n'));
  t.false(chunks[0]!.includes(ESC));
  t.deepEqual(d.lines, ['CM a  ', '      ']);
});

test('the title sits in the top border and is cut to fit', (t) => {
  const { chunks, out } = sink();
  new TerminalDisplay({ cols: 8, rows: 1, out, isTTY: false, title: 'p1' }).show(['x']);
  t.is(chunks[0]!.split('\n')[0], '┌─ p1 ───┐');
  const long = sink();
  new TerminalDisplay({ cols: 5, rows: 1, out: long.out, isTTY: false, title: 'phone-number-one' }).show(['x']);
  const top = long.chunks[0]!.split('\n')[0]!;
  t.is(Array.from(top).length, 7, 'border width = cols + 2 corners');
  t.is(top, '┌─ pho┐');
});

test('long rows are cut, extra rows dropped, missing rows blank', (t) => {
  const { out } = sink();
  const d = new TerminalDisplay({ cols: 4, rows: 2, out, isTTY: false });
  d.show(['abcdefgh', 'ij', 'dropped']);
  t.deepEqual(d.lines, ['abcd', 'ij  ']);
  d.show([]);
  t.deepEqual(d.lines, ['    ', '    ']);
});

test('cutting never splits a surrogate pair', (t) => {
  const { out } = sink();
  const d = new TerminalDisplay({ cols: 2, rows: 1, out, isTTY: false });
  d.show(['a😀b']);
  t.is(d.lines[0], 'a😀');
});

test('control characters from the network cannot reach the terminal', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 10, rows: 1, out, isTTY: false, title: 'a\x1b[2Jb' });
  d.show(['x\x1b[31my\u009bz']);
  t.is(d.lines[0], 'x [31my z ');
  t.false(chunks.join('').includes(ESC));
});

test('no redraw when the lines do not change', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 5, rows: 2, out, isTTY: false });
  d.show(['a', 'b']);
  d.show(['a', 'b']);
  d.show(['a', 'b', 'ignored extra row']);
  d.show(['a   ', 'b']); // same once padded
  t.is(chunks.length, 1);
  t.is(d.draws, 1);
  d.show(['a', 'c']);
  t.is(chunks.length, 2);
  t.is(d.draws, 2);
});

test('the first show draws even a blank screen', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 3, rows: 1, out, isTTY: false });
  d.show([]);
  t.is(chunks.length, 1);
});

test('TTY mode redraws in place: cursor up over the old frame, each row cleared', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 4, rows: 2, out, isTTY: true });
  d.show(['one']);
  t.false(chunks[0]!.includes(`${ESC}[4A`), 'nothing to move over the first time');
  t.true(chunks[0]!.includes(`\r${ESC}[2K│one │`));
  d.show(['two']);
  t.true(chunks[1]!.startsWith(`${ESC}[4A`), 'up rows + 2 border lines');
  t.is(chunks[1]!.split(`${ESC}[2K`).length - 1, 4, 'every frame line cleared and rewritten');
  t.true(chunks[1]!.endsWith('└────┘\n'));
});

test('isTTY defaults to the stream’s own flag', (t) => {
  const tty = sink(true);
  const d = new TerminalDisplay({ cols: 2, rows: 1, out: tty.out });
  t.true(d.tty);
  const plain = sink();
  t.false(new TerminalDisplay({ cols: 2, rows: 1, out: plain.out }).tty);
});

test('printAbove keeps the frame pinned below the text on a TTY', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 3, rows: 1, out, isTTY: true });
  d.printAbove('before any frame');
  t.is(chunks[0], 'before any frame\n');
  d.show(['x']);
  d.printAbove('hello');
  const s = chunks[2]!;
  t.true(s.startsWith(`${ESC}[3A\r${ESC}[J` + 'hello\n'), 'frame erased, text written');
  t.true(s.endsWith('┌───┐\n│x  │\n└───┘\n'), 'frame drawn again below');
  d.show(['y']);
  t.true(chunks[3]!.startsWith(`${ESC}[3A`), 'a later redraw still finds the frame');
});

test('printAbove in plain mode just writes the text', (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 3, rows: 1, out, isTTY: false });
  d.show(['x']);
  d.printAbove('a line');
  t.is(chunks[1], 'a line\n');
});

test('never throws, even when the output does', async (t) => {
  const out = {
    write: () => {
      throw new Error('EPIPE');
    },
  };
  const d = new TerminalDisplay({ cols: 3, rows: 1, out, isTTY: true });
  t.notThrows(() => d.show(['x']));
  t.notThrows(() => d.printAbove('y'));
  t.notThrows(() => d.show(null as unknown as string[]));
  t.notThrows(() => d.show([42 as unknown as string]));
});

test('close is idempotent and later screens are ignored', async (t) => {
  const { chunks, out } = sink();
  const d = new TerminalDisplay({ cols: 3, rows: 1, out, isTTY: false });
  await d.start();
  d.show(['a']);
  await d.close();
  await d.close();
  d.show(['b']);
  t.is(chunks.length, 1);
  t.is(d.lines[0], 'a  ');
});

test('bad sizes fall back to 20 × 4', (t) => {
  const { out } = sink();
  const d = new TerminalDisplay({ cols: 0, rows: Number.NaN, out });
  t.is(d.cols, 20);
  t.is(d.rows, 4);
});

/** A terminal of `cols` × `rows` the display and "the log" both write to, modelled cell by cell. */
function terminal(cols: number, rows: number) {
  const screen = new VtScreen(cols, rows);
  const listeners: (() => void)[] = [];
  const out = {
    isTTY: true,
    rows,
    write: (s: string) => screen.feed(s),
    on: (_e: 'resize', l: () => void) => listeners.push(l),
    off: (_e: 'resize', l: () => void) => listeners.splice(listeners.indexOf(l), 1),
  };
  return { screen, out, listeners };
}

const logLine = (i: number): string => `{"level":30,"time":${1_700_000_000 + i},"phone":"p-0003","msg":"keepalive ack ${i}"}\n`;

test('sim-lcd-stays-readable: pinned, the frame keeps the top rows while log lines on the same terminal scroll below it', (t) => {
  const { screen, out } = terminal(100, 14);
  const d = new TerminalDisplay({ cols: 20, rows: 4, out, pin: true, title: 'sim' });
  d.show(['homed: cm-a', 'p-0003']);
  t.true(d.pinned);
  for (let i = 0; i < 40; i++) screen.feed(logLine(i));
  t.deepEqual(screen.lines().slice(0, 6), ['┌─ sim ──────────────┐', '│homed: cm-a         │', '│p-0003              │', '│                    │', '│                    │', '└────────────────────┘']);
  // Each line ends in a newline: the newest is on the row above the cursor's (the last one, empty).
  t.regex(screen.lines()[12]!, /keepalive ack 39/, 'the newest log line at the bottom');
  t.regex(screen.lines()[6]!, /keepalive ack 33/, 'older ones scrolled off below the frame, not over it');
  // A redraw after the log moved the cursor: at the top again, and the log goes on where it was.
  d.show(['homed: cm-b', 'p-0003']);
  screen.feed(logLine(40));
  t.is(screen.lines()[1], '│homed: cm-b         │');
  t.regex(screen.lines()[12]!, /keepalive ack 40/);
  t.regex(screen.lines()[11]!, /keepalive ack 39/);
  t.is(screen.lines().filter((l) => l.startsWith('┌')).length, 1, 'one frame on screen');
});

test('without pin (the demo), the frame is drawn where the cursor is: log lines written meanwhile scroll it away', (t) => {
  const { screen, out } = terminal(100, 14);
  const d = new TerminalDisplay({ cols: 20, rows: 4, out, title: 'sim' });
  d.show(['homed: cm-a']);
  for (let i = 0; i < 40; i++) screen.feed(logLine(i));
  t.false(d.pinned);
  t.false(screen.lines().some((l) => l.includes('homed: cm-a')), 'what issue 17 reported for phone-sim.json');
});

test('pinned: a terminal too small for the frame and 3 log rows, or of unknown height, draws in place as before', (t) => {
  for (const rows of [5, undefined]) {
    const chunks: string[] = [];
    const d = new TerminalDisplay({ cols: 3, rows: 1, out: { write: (s: string) => chunks.push(s), rows }, isTTY: true, pin: true });
    d.show(['x']);
    t.false(d.pinned, `rows ${rows}`);
    t.false(chunks.join('').includes('r'), 'no scrolling region set');
  }
  const d = new TerminalDisplay({ cols: 3, rows: 1, out: { write: () => 0, rows: 6 }, isTTY: true, pin: true });
  d.show(['x']);
  t.true(d.pinned, 'frame 3 rows + 3 log rows fit in 6');
});

test('pinned: close gives the whole screen back (region reset, cursor to the last row); a resize re-pins to the new height', async (t) => {
  const { screen, out, listeners } = terminal(100, 12);
  const d = new TerminalDisplay({ cols: 10, rows: 2, out, pin: true });
  d.show(['a']);
  t.is(listeners.length, 1);
  out.rows = 20;
  screen.feed('');
  const grown = new VtScreen(100, 20);
  out.write = (s: string) => grown.feed(s);
  listeners[0]!();
  t.is(grown.lines()[1], '│a         │', 'redrawn at the top of the resized screen');
  for (let i = 0; i < 30; i++) grown.feed(logLine(i));
  t.is(grown.lines()[1], '│a         │');
  t.regex(grown.lines()[18]!, /ack 29/);
  await d.close();
  t.is(listeners.length, 0);
  for (let i = 30; i < 60; i++) grown.feed(logLine(i));
  t.false(grown.lines().some((l) => l.includes('│a')), 'after close the whole screen scrolls');
  d.printAbove('after close');
});
