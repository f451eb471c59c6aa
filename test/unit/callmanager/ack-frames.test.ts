import test from 'ava';
import mqttPacket from 'mqtt-packet';
import { AckBatcher, MAX_FRAME_BODY, publishFrame } from '../../../src/callmanager/ack-frames.js';

/** Every packet mqtt-packet's parser reads from `bytes` (the reference decoder mqtt.js itself uses). */
function parseAll(bytes: Buffer, protocolVersion: 4 | 5): mqttPacket.Packet[] {
  const parser = mqttPacket.parser({ protocolVersion });
  const out: mqttPacket.Packet[] = [];
  const errors: Error[] = [];
  parser.on('packet', (p) => out.push(p));
  parser.on('error', (e) => errors.push(e));
  parser.parse(bytes);
  if (errors.length > 0) throw errors[0];
  return out;
}

for (const version of [4, 5] as const) {
  test(`MQTT ${version}: frames decode as QoS 0 PUBLISH with the same topic and payload, across Remaining Length sizes`, (t) => {
    const topic = 'ipphone/v1/phone/p-1/ack';
    // Bodies around the variable byte integer's one/two/three-byte boundaries, and multi-byte UTF-8.
    for (const size of [0, 1, 90, 94, 95, 96, 127, 128, 16_000, 16_380, 16_383, 16_384, 200_000]) {
      const payload = 'x'.repeat(size);
      const [p] = parseAll(publishFrame(topic, payload, version), version) as mqttPacket.IPublishPacket[];
      t.is(p?.cmd, 'publish');
      t.is(p?.qos, 0);
      t.false(p?.retain);
      t.false(p?.dup);
      t.is(p?.topic, topic);
      t.is(p?.payload.toString(), payload, `payload of ${size}`);
    }
    const [u] = parseAll(publishFrame('ipphone/v1/phone/tél-ü/ack', '{"cm":"cm-ä","seq":1}', version), version) as mqttPacket.IPublishPacket[];
    t.is(u?.topic, 'ipphone/v1/phone/tél-ü/ack');
    t.is(u?.payload.toString(), '{"cm":"cm-ä","seq":1}');
  });

  test(`MQTT ${version}: the same bytes as mqtt-packet's own encoder`, (t) => {
    const topic = 'ipphone/v1/phone/p-42/ack';
    const payload = '{"cm":"cm-a","seq":17,"pointersVersion":3}';
    const reference = mqttPacket.generate({ cmd: 'publish', topic, payload, qos: 0, dup: false, retain: false, ...(version === 5 ? { properties: {} } : {}) } as mqttPacket.IPublishPacket, { protocolVersion: version });
    t.deepEqual(publishFrame(topic, payload, version), reference);
  });
}

test('an empty topic, a topic over 65,535 bytes and a body over the cap are refused', (t) => {
  t.throws(() => publishFrame('', 'x', 5), { instanceOf: RangeError });
  t.throws(() => publishFrame('t'.repeat(70_000), 'x', 5), { instanceOf: RangeError });
  t.throws(() => publishFrame('t', 'x'.repeat(MAX_FRAME_BODY), 4), { instanceOf: RangeError });
});

test('a batch of acks (until the next immediate: every packet the socket delivered) is one write of whole frames, in order; the next is another write', async (t) => {
  const writes: Buffer[] = [];
  const b = new AckBatcher({ write: (f) => (writes.push(f), true) }, 5);
  for (let i = 0; i < 100; i++) b.add(`p/phone/p-${i}/ack`, `{"seq":${i}}`);
  t.is(writes.length, 0, 'nothing written within the tick');
  await new Promise((r) => setImmediate(r));
  t.is(writes.length, 1);
  const packets = parseAll(writes[0]!, 5) as mqttPacket.IPublishPacket[];
  t.deepEqual(
    packets.map((p) => p.topic),
    Array.from({ length: 100 }, (_, i) => `p/phone/p-${i}/ack`),
  );
  b.add('p/phone/x/ack', '{}');
  await new Promise((r) => setImmediate(r));
  t.is(writes.length, 2);
  t.is(b.written, 101);
  t.is(b.dropped, 0);
});

test('a batch over maxBatchBytes is written at once; flush() writes what is pending', (t) => {
  const writes: Buffer[] = [];
  const b = new AckBatcher({ write: (f) => (writes.push(f), true) }, 4, 1000);
  for (let i = 0; i < 30; i++) b.add('p/phone/p/ack', 'y'.repeat(60));
  t.true(writes.length >= 2, `${writes.length} early writes`);
  t.true(writes.every((w) => w.length >= 1000));
  b.flush();
  const total = writes.reduce((n, w) => n + parseAll(w, 4).length, 0);
  t.is(total, 30);
  b.flush();
  t.is(writes.reduce((n, w) => n + parseAll(w, 4).length, 0), 30, 'an empty flush writes nothing');
});

test('a sink that cannot write (disconnected, backlog full) drops and counts the batch', async (t) => {
  let open = false;
  const writes: Buffer[] = [];
  const b = new AckBatcher({ write: (f) => (open ? (writes.push(f), true) : false) }, 5);
  b.add('a/ack', '1');
  b.add('b/ack', '2');
  await new Promise((r) => setImmediate(r));
  t.is(b.dropped, 2);
  t.is(writes.length, 0);
  open = true;
  b.add('c/ack', '3');
  await new Promise((r) => setImmediate(r));
  t.is(b.written, 1);
  t.deepEqual(
    (parseAll(writes[0]!, 5) as mqttPacket.IPublishPacket[]).map((p) => p.payload.toString()),
    ['3'],
  );
});

test('acks-of-a-per-packet-pump-are-one-write: mqtt.js hands one packet per nextTick; every ack of what the socket delivered goes out in one write', async (t) => {
  const writes: Buffer[] = [];
  const b = new AckBatcher({ write: (f) => (writes.push(f), true) }, 5);
  // mqtt.js 5's parser pump: one incoming packet handled per process.nextTick.
  await new Promise<void>((done) => {
    let i = 0;
    const work = (): void => {
      b.add(`p/phone/p-${i}/ack`, `{"seq":${i}}`);
      if (++i < 50) process.nextTick(work);
      else done();
    };
    process.nextTick(work);
  });
  await new Promise((r) => setImmediate(r));
  t.is(writes.length, 1, 'one write for the 50 acks, not one per packet');
  t.is(parseAll(writes[0]!, 5).length, 50);
});

test('later-runs-in-the-order-queued: an item queued between frames is published after the frames before it were written and before the frames after it', async (t) => {
  const order: string[] = [];
  const b = new AckBatcher<string>({ write: (f) => (order.push(...(parseAll(f, 5) as mqttPacket.IPublishPacket[]).map((p) => p.topic)), true) }, 5, undefined, (item) => order.push(item));
  b.add('a/ack', '{}');
  b.add('b/ack', '{}');
  b.later('push b');
  b.add('c/ack', '{}');
  b.later('push c');
  b.later('push c2');
  b.add('d/ack', '{}');
  t.deepEqual(order, [], 'nothing before the immediate');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order, ['a/ack', 'b/ack', 'push b', 'c/ack', 'push c', 'push c2', 'd/ack'], 'runs of frames between items are one write each');
  t.is(b.written, 4);
  b.later('alone');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(order.slice(7), ['alone'], 'an item without a frame in the batch is published too');
});

test('pushes-count-in-the-batch: work queued with its size flushes the batch at maxBatchBytes, so the first acks of a burst do not wait for the last', (t) => {
  const writes: Buffer[] = [];
  let after = 0;
  const b = new AckBatcher<number>({ write: (f) => (writes.push(f), true) }, 5, 1000, () => after++);
  b.add('p/phone/a/ack', '{}');
  b.later(1, 600);
  t.is(writes.length, 0, 'under the bound: waits for the immediate');
  b.add('p/phone/b/ack', '{}');
  b.later(2, 600);
  t.is(writes.length, 2, 'over the bound with the pushes counted: written at once, each ack before its own push');
  t.is(after, 2, 'and the pushes published');
  t.is(parseAll(writes[0]!, 5).length + parseAll(writes[1]!, 5).length, 2);
});

test('a dropped run of acks does not hold back the pushes queued with it (QoS 1: mqtt.js queues them)', (t) => {
  const pushed: string[] = [];
  const b = new AckBatcher<string>({ write: () => false }, 4, undefined, (item) => pushed.push(item));
  b.add('a/ack', '{}');
  b.later('a');
  b.flush();
  t.is(b.dropped, 1);
  t.deepEqual(pushed, ['a']);
});
