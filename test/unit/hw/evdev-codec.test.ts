import test from 'ava';
import { EvdevFramer, decodeEvents, encodeEvents, layoutFor, type InputEvent } from '../../../src/hw/evdev-codec.js';
import { EV_KEY, EV_SW, EV_SYN, SYN_DROPPED, SYN_REPORT } from '../../../src/hw/input-codes.js';

const key = (code: number, value: number): InputEvent => ({ type: EV_KEY, code, value });
const report: InputEvent = { type: EV_SYN, code: SYN_REPORT, value: 0 };
const dropped: InputEvent = { type: EV_SYN, code: SYN_DROPPED, value: 0 };

test('record size follows the word size of process.arch: 24 bytes on 64-bit, 16 on 32-bit; big-endian or unknown arches are refused', (t) => {
  for (const a of ['x64', 'arm64', 'riscv64']) t.is(layoutFor(a)?.size, 24, a);
  for (const a of ['arm', 'ia32']) t.is(layoutFor(a)?.size, 16, a);
  for (const a of ['s390x', 'mips', 'sparc']) t.is(layoutFor(a), null, a);
  t.not(layoutFor(), null, 'this machine is one we claim');
});

test('a 64-bit record as the kernel writes it: timeval 2 × u64, type u16, code u16, value s32, little-endian', (t) => {
  // KEY_PHONE (169 = 0xa9) pressed at 1700000000.5: bytes laid out by hand.
  const rec = Buffer.from([
    0x00, 0xf1, 0x53, 0x65, 0, 0, 0, 0, // tv_sec 1700000000
    0x20, 0xa1, 0x07, 0, 0, 0, 0, 0, // tv_usec 500000
    0x01, 0x00, // EV_KEY
    0xa9, 0x00, // KEY_PHONE
    0x01, 0x00, 0x00, 0x00, // pressed
  ]);
  t.deepEqual(decodeEvents(rec, layoutFor('x64')!), { events: [key(169, 1)], rest: Buffer.alloc(0) });
  t.deepEqual(encodeEvents([key(169, 1)], layoutFor('x64')!, 1_700_000_000, 500_000), rec);
});

test('a 32-bit record: timeval 2 × u32, then the same fields; a negative value decodes signed', (t) => {
  const rec = Buffer.from([0x00, 0xf1, 0x53, 0x65, 0x20, 0xa1, 0x07, 0x00, 0x05, 0x00, 0x00, 0x00, 0xff, 0xff, 0xff, 0xff]);
  t.deepEqual(decodeEvents(rec, layoutFor('arm')!).events, [{ type: EV_SW, code: 0, value: -1 }]);
  t.deepEqual(encodeEvents([{ type: EV_SW, code: 0, value: -1 }], layoutFor('arm')!, 1_700_000_000, 500_000), rec);
});

test('read with the other layout, records come out wrong: the layout matters', (t) => {
  const as64 = encodeEvents([key(2, 1), report], layoutFor('x64')!);
  t.notDeepEqual(decodeEvents(as64, layoutFor('arm')!).events, [key(2, 1), report]);
});

test('a record split across reads is kept until its rest arrives', (t) => {
  for (const arch of ['x64', 'arm']) {
    const layout = layoutFor(arch)!;
    const bytes = encodeEvents([key(2, 1), report, key(3, 1), report], layout);
    const cut = layout.size + 5;
    const a = decodeEvents(bytes.subarray(0, cut), layout);
    t.deepEqual(a.events, [key(2, 1)], arch);
    t.is(a.rest.length, 5);
    const b = decodeEvents(Buffer.concat([a.rest, bytes.subarray(cut)]), layout);
    t.deepEqual(b.events, [report, key(3, 1), report], arch);
    t.is(b.rest.length, 0);
  }
});

test('frames end at SYN_REPORT; an empty frame gives nothing', (t) => {
  const f = new EvdevFramer();
  t.deepEqual(f.push(key(2, 1)), { kind: 'none' });
  t.deepEqual(f.push(key(3, 1)), { kind: 'none' });
  t.deepEqual(f.push(report), { kind: 'frame', events: [key(2, 1), key(3, 1)] });
  t.deepEqual(f.push(report), { kind: 'none' });
  t.deepEqual(f.push({ type: EV_SYN, code: 2, value: 0 }), { kind: 'none' }, 'SYN_MT_REPORT is not an event for us');
});

test('SYN_DROPPED: the partial frame and everything up to and including the next SYN_REPORT are discarded, then frames flow again', (t) => {
  const f = new EvdevFramer();
  f.push(key(2, 1));
  t.deepEqual(f.push(dropped), { kind: 'dropped' });
  t.deepEqual(f.push(key(3, 1)), { kind: 'none' });
  t.deepEqual(f.push(key(4, 1)), { kind: 'none' });
  t.deepEqual(f.push(report), { kind: 'resynced' });
  f.push(key(5, 1));
  t.deepEqual(f.push(report), { kind: 'frame', events: [key(5, 1)] });
});

test('reset() drops a frame cut by a lost device', (t) => {
  const f = new EvdevFramer();
  f.push(key(2, 1));
  f.reset();
  t.deepEqual(f.push(report), { kind: 'none' });
});
