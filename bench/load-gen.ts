/**
 * Load generator child for bench/throughput.ts: a raw MQTT 3.1.1 client on a
 * plain TCP socket that writes pre-encoded QoS-0 PUBLISH packets as fast as
 * the socket takes them (it waits for 'drain'), for a bounded time, then
 * exits — so the generator is not what limits the measurement.
 *
 *   node --import tsx bench/load-gen.ts URL TOPIC DURATION_MS PHONES
 *
 * Payloads are keep-alives cycling over PHONES phone ids.
 */
import { connect as tcp } from 'node:net';
import mqttPacket from 'mqtt-packet';

const [url, topic, durationArg, phonesArg] = process.argv.slice(2);
if (!url || !topic) {
  process.stderr.write('usage: load-gen URL TOPIC DURATION_MS PHONES\n');
  process.exit(2);
}
const durationMs = Math.min(Number(durationArg ?? 10_000), 120_000);
const phones = Math.max(1, Number(phonesArg ?? 1000));
const u = new URL(url);
const BATCH = 1000;

// One batch of BATCH publishes, encoded once and written again and again (seq repeats: the
// call manager answers every valid keep-alive whatever its seq).
const batch = Buffer.concat(
  Array.from({ length: BATCH }, (_, i) =>
    mqttPacket.generate({
      cmd: 'publish',
      topic,
      payload: Buffer.from(`{"phone":"lg-${i % phones}","seq":${i},"pointersVersion":1,"busy":false,"intervalMs":60000}`),
      qos: 0,
      dup: false,
      retain: false,
    }),
  ),
);

const sock = tcp({ host: u.hostname, port: Number(u.port || 1883) });
let sent = 0;
sock.on('connect', () => {
  sock.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `loadgen-${process.pid}`, keepalive: 60 }));
  const end = Date.now() + durationMs;
  const pump = (): void => {
    while (Date.now() < end) {
      sent += BATCH;
      if (!sock.write(batch)) {
        sock.once('drain', pump);
        return;
      }
    }
    sock.end(mqttPacket.generate({ cmd: 'disconnect' }), () => {
      process.stdout.write(`${JSON.stringify({ sent })}\n`);
      process.exit(0);
    });
  };
  pump();
});
sock.on('data', () => {
  /* CONNACK; nothing else is expected */
});
sock.on('error', (err) => {
  process.stderr.write(`load-gen: ${err.message}\n`);
  process.exit(1);
});
