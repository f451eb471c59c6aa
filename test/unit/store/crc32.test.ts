import test from 'ava';
import { seededRandom } from '../../../src/lib/clock.js';
import { crc32, crc32Table, nativeCrc32 } from '../../../src/store/crc32.js';

test('check value: crc32("123456789") is 0xCBF43926 (table and dispatcher)', (t) => {
  t.is(crc32Table('123456789'), 0xcbf43926);
  t.is(crc32(Buffer.from('123456789', 'ascii')), 0xcbf43926);
  t.is(crc32Table(new Uint8Array(0)), 0);
  t.is(crc32(''), 0);
});

test('zlib.crc32 is used only when present, and agrees with the check value', (t) => {
  t.log(`native zlib.crc32 present: ${nativeCrc32 !== undefined}`);
  if (nativeCrc32 !== undefined) t.is(nativeCrc32('123456789') >>> 0, 0xcbf43926);
  else t.is(crc32('123456789'), crc32Table('123456789'));
});

test('running value: crc(b, crc(a)) equals crc(a‖b), table and native', (t) => {
  const a = Buffer.from('hello, ');
  const b = Buffer.from('flash world');
  const whole = Buffer.concat([a, b]);
  t.is(crc32Table(b, crc32Table(a)), crc32Table(whole));
  t.is(crc32(b, crc32(a)), crc32(whole));
});

test('table and dispatcher agree on pseudo-random buffers', (t) => {
  const rnd = seededRandom(42);
  for (let n = 0; n < 50; n++) {
    const buf = Buffer.alloc(Math.floor(rnd() * 300));
    for (let i = 0; i < buf.length; i++) buf[i] = Math.floor(rnd() * 256);
    t.is(crc32Table(buf), crc32(buf));
  }
  // A single flipped bit changes the CRC.
  const buf = Buffer.from('pointer list v7');
  const before = crc32Table(buf);
  buf[3] = buf[3]! ^ 0x01;
  t.not(crc32Table(buf), before);
});
