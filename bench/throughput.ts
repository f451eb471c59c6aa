/**
 * Keep-alives acked per second by one call-manager process at saturation,
 * beside mosquitto's own publish→subscribe ceiling measured the same way in
 * the same run (issue #3). Both use one load-generator process and one
 * counting subscriber (a raw socket counting frames: raw-counter.ts); the only difference is whether the messages go
 * straight to the subscriber (ceiling) or through the call manager, which
 * answers each keep-alive with an ack (so the broker carries twice the
 * messages on that path).
 */
import { RawCounter } from './raw-counter.js';
import { type Child, cpuMs, spawnNode, startGroup, Observer, sleep } from './harness.js';

/** Share of one core each process used during a window (1.0 = one core busy throughout). */
export interface CpuShares {
  broker: number;
  generator: number;
  /** The counting subscriber: this bench process. */
  counter: number;
  /** The call manager (call-manager window only). */
  cm?: number;
}

export interface ThroughputResult {
  cpu: { ceiling: CpuShares; cm: CpuShares };
  /** Messages per second received by a subscriber of the generator's topic. */
  ceilingPerSec: number;
  /** Acks per second received from the call manager. */
  cmAcksPerSec: number;
  windowMs: number;
  generatorSent: { ceiling: number; cm: number };
}

/** CPU time so far of each named process, ms (this process through process.cpuUsage). */
function cpuNow(pids: Record<string, number | undefined>): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, pid] of Object.entries(pids)) {
    if (pid === undefined) continue;
    if (pid === process.pid) {
      const u = process.cpuUsage();
      out[name] = (u.user + u.system) / 1000;
    } else out[name] = cpuMs(pid);
  }
  return out;
}

/** Count messages on `topic` during [warm, warm + window) after `start()`; CPU shares of `pids` over the window. */
async function countWhile(
  url: string,
  topic: string,
  warmMs: number,
  windowMs: number,
  run: () => Child,
  pids: Record<string, number | undefined>,
): Promise<{ perSec: number; sent: number; cpu: Record<string, number> }> {
  const sub = await RawCounter.open(url, topic);
  const gen = run();
  await sleep(warmMs);
  const all = { ...pids, generator: gen.pid, counter: process.pid };
  const cpu0 = cpuNow(all);
  sub.counting = true;
  const t0 = performance.now();
  await sleep(windowMs);
  sub.counting = false;
  const n = sub.count;
  const elapsed = performance.now() - t0;
  const cpu1 = cpuNow(all);
  const cpu: Record<string, number> = {};
  for (const k of Object.keys(cpu1)) cpu[k] = (cpu1[k]! - (cpu0[k] ?? 0)) / elapsed;
  const out = await gen.exited;
  void out;
  await sub.close();
  const sent = Number(/"sent":(\d+)/.exec(gen.tail())?.[1] ?? NaN);
  return { perSec: (n * 1000) / elapsed, sent, cpu };
}

export async function runThroughput(o: { windowMs: number; log: (s: string) => void }): Promise<ThroughputResult> {
  const warmMs = 2000;
  const total = warmMs + o.windowMs + 1000;
  const group = await startGroup({ ids: ['cm-a'] });
  const observer = await Observer.connect(group.broker.url);
  try {
    const url = group.broker.url;
    o.log(`throughput: mosquitto ceiling (${o.windowMs} ms window)`);
    const broker = group.broker.pid;
    const ceiling = await countWhile(url, 'bench/echo', warmMs, o.windowMs, () => spawnNode('load-gen', ['--import', 'tsx', 'bench/load-gen.ts', url, 'bench/echo', String(total), '1000']), { broker });
    const cmChild = await group.startCm('cm-a', observer);
    o.log('throughput: call manager acks');
    const cm = await countWhile(
      url,
      'ipphone/v1/phone/+/ack',
      warmMs,
      o.windowMs,
      () => spawnNode('load-gen', ['--import', 'tsx', 'bench/load-gen.ts', url, 'ipphone/v1/cm/cm-a/keepalive', String(total), '1000']),
      { broker, cm: cmChild.pid },
    );
    const shares = (c: Record<string, number>): CpuShares => ({ broker: c.broker ?? NaN, generator: c.generator ?? NaN, counter: c.counter ?? NaN, ...(c.cm !== undefined ? { cm: c.cm } : {}) });
    return {
      ceilingPerSec: ceiling.perSec,
      cmAcksPerSec: cm.perSec,
      windowMs: o.windowMs,
      generatorSent: { ceiling: ceiling.sent, cm: cm.sent },
      cpu: { ceiling: shares(ceiling.cpu), cm: shares(cm.cpu) },
    };
  } finally {
    await observer.close();
    await group.close();
  }
}
