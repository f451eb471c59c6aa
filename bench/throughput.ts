/**
 * Keep-alives acked per second by one call-manager process at saturation,
 * beside mosquitto's own publish→subscribe ceiling measured the same way in
 * the same run (issue #3). Both use one load-generator process and one
 * counting subscriber; the only difference is whether the messages go
 * straight to the subscriber (ceiling) or through the call manager, which
 * answers each keep-alive with an ack (so the broker carries twice the
 * messages on that path).
 */
import { connect } from 'mqtt';
import { type Child, spawnNode, startGroup, Observer, sleep } from './harness.js';

export interface ThroughputResult {
  /** Messages per second received by a subscriber of the generator's topic. */
  ceilingPerSec: number;
  /** Acks per second received from the call manager. */
  cmAcksPerSec: number;
  windowMs: number;
  generatorSent: { ceiling: number; cm: number };
}

/** Count messages on `topic` during [warm, warm + window) after `start()`. */
async function countWhile(url: string, topic: string, warmMs: number, windowMs: number, run: () => Child): Promise<{ perSec: number; sent: number }> {
  const sub = connect(url, { reconnectPeriod: 0, clientId: `counter-${process.pid}-${Date.now()}` });
  await new Promise<void>((done, fail) => {
    sub.once('connect', () => sub.subscribe(topic, { qos: 0 }, (err) => (err ? fail(err) : done())));
    sub.once('error', fail);
  });
  let counting = false;
  let n = 0;
  sub.on('message', () => {
    if (counting) n++;
  });
  const gen = run();
  await sleep(warmMs);
  counting = true;
  const t0 = performance.now();
  await sleep(windowMs);
  counting = false;
  const elapsed = performance.now() - t0;
  const out = await gen.exited;
  void out;
  await sub.endAsync(true);
  const sent = Number(/"sent":(\d+)/.exec(gen.tail())?.[1] ?? NaN);
  return { perSec: (n * 1000) / elapsed, sent };
}

export async function runThroughput(o: { windowMs: number; log: (s: string) => void }): Promise<ThroughputResult> {
  const warmMs = 2000;
  const total = warmMs + o.windowMs + 1000;
  const group = await startGroup({ ids: ['cm-a'] });
  const observer = await Observer.connect(group.broker.url);
  try {
    const url = group.broker.url;
    o.log(`throughput: mosquitto ceiling (${o.windowMs} ms window)`);
    const ceiling = await countWhile(url, 'bench/echo', warmMs, o.windowMs, () => spawnNode('load-gen', ['--import', 'tsx', 'bench/load-gen.ts', url, 'bench/echo', String(total), '1000']));
    await group.startCm('cm-a', observer);
    o.log('throughput: call manager acks');
    const cm = await countWhile(url, 'ipphone/v1/phone/+/ack', warmMs, o.windowMs, () =>
      spawnNode('load-gen', ['--import', 'tsx', 'bench/load-gen.ts', url, 'ipphone/v1/cm/cm-a/keepalive', String(total), '1000']),
    );
    return { ceilingPerSec: ceiling.perSec, cmAcksPerSec: cm.perSec, windowMs: o.windowMs, generatorSent: { ceiling: ceiling.sent, cm: cm.sent } };
  } finally {
    await observer.close();
    await group.close();
  }
}
