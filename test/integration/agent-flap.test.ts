/**
 * Issue #10, "A phone that flaps", against running agents and a real
 * mosquitto: two agents with one phone id (a cloned image) kicking each other
 * off the broker, and a broker that accepts and drops (a TCP proxy in this
 * test that closes every phone connection right after the CONNACK). Figures
 * (connections per minute) are logged with t.log, never asserted on time;
 * the assertions are on what the agents report.
 */
import test from 'ava';
import net from 'node:net';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { delay, waitFor } from '../helpers/net.js';
import { programArgs } from '../helpers/programs.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

/** Figure window: long enough for the backoff to reach its steady state (base 1 s, production max 60 s). */
const WINDOW_MS = 40_000;

const count = (text: string, re: RegExp): number => text.split('\n').filter((l) => re.test(l)).length;

/** Log lines of an agent as objects (non-JSON lines skipped). */
function lines(text: string): Record<string, unknown>[] {
  const out: Record<string, unknown>[] = [];
  for (const l of text.split('\n')) {
    if (!l.startsWith('{')) continue;
    try {
      out.push(JSON.parse(l) as Record<string, unknown>);
    } catch {
      // a partial line
    }
  }
  return out;
}

test.serial('duplicate-id: two agents with one phone id back off and report duplicateId in the status', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  // Production backoff (base 1 s, max 60 s): the cluster's test default of 0.2–2 s would hide the defect.
  const path1 = c.agentConfig('p-dup', { mqtt: { connectTimeoutMs: 2000 } });
  const cfg = JSON.parse(readFileSync(path1, 'utf8')) as Record<string, unknown>;
  const path2 = join(c.dir, 'p-dup-clone.json');
  writeFileSync(path2, JSON.stringify({ ...cfg, stateDir: join(c.dir, 'state-p-dup-clone') }));
  const a = c.startAgent('p-dup', path1);
  await c.waitHome('p-dup', 'cm-a');
  const b = c.startAgentWith('p-dup-clone', [...programArgs('ipphone-agent'), '--config', path2]);
  const ups = (): number => count(a.output(), /"msg":"broker up"/) + count(b.output(), /"msg":"broker up"/);
  // Skip the first seconds (the clone's start), then count connections over the window.
  await delay(5000);
  const before = ups();
  await delay(WINDOW_MS);
  const perMin = ((ups() - before) * 60_000) / WINDOW_MS;
  t.log(`two agents, one phone id: ${perMin.toFixed(1)} connections/min (both agents together, over ${WINDOW_MS / 1000} s after the first 5 s)`);
  await waitFor(() => c.seen.statuses.some((s) => s.phone === 'p-dup' && s.payload.duplicateId === true), { timeoutMs: 30_000, what: 'a status with duplicateId: true' }).catch((e: Error) => {
    throw new Error(`${e.message}\n${a.output().slice(-3000)}`);
  });
  // mosquitto 2.0.11 closes the old connection without a DISCONNECT 0x8E: the evidence is our
  // retained status overwritten by the other run (duplicate-watch.ts), counted as takeovers.
  const kicks = lines(a.output() + b.output()).filter((l) => l.msg === 'broker lost' && typeof l.takeovers === 'number');
  t.true(
    kicks.some((l) => (l.takeovers as number) >= 3),
    `takeovers count on across acks (the clone's short sessions do not reset the backoff); highest ${Math.max(0, ...kicks.map((l) => l.takeovers as number))}`,
  );
  t.regex(a.output() + b.output(), /another client uses this phone id/);
});

/**
 * A TCP proxy to `target` that, for connections whose CONNECT names `clientId`,
 * forwards the CONNECT, passes the broker's first bytes (the CONNACK) back and
 * closes at once. Everything else is passed through untouched.
 */
async function acceptAndDrop(target: number, clientId: string): Promise<{ port: number; dropped: () => number; close: () => Promise<void> }> {
  let dropped = 0;
  const socks = new Set<net.Socket>();
  const server = net.createServer((down) => {
    socks.add(down);
    const up = net.connect(target, '127.0.0.1');
    socks.add(up);
    let flap: boolean | null = null;
    down.on('data', (d) => {
      if (flap === null) flap = d.includes(Buffer.from(clientId));
      up.write(d);
    });
    up.on('data', (d) => {
      if (down.destroyed) return;
      down.write(d);
      if (flap) {
        dropped++;
        down.end();
        up.destroy();
      }
    });
    const both = (): void => {
      up.destroy();
      down.destroy();
    };
    up.on('error', both).on('close', both);
    down.on('error', both).on('close', both);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    dropped: () => dropped,
    close: () =>
      new Promise<void>((r) => {
        for (const s of socks) s.destroy();
        server.close(() => r());
      }),
  };
}

test.serial('flapping-broker: a primary broker that accepts and drops is retried with a growing backoff, not reset by CONNACK', async (t) => {
  const proxy = await acceptAndDrop(mosq.port, 'ipphone-p-flap');
  t.teardown(() => proxy.close());
  const c = new Cluster();
  t.teardown(() => c.close());
  // The phone reaches cm-a through the proxy; cm-a itself (and cm-b's link to it) talk to mosquitto.
  await c.defineGroup([
    { id: 'cm-a', broker: `mqtt://127.0.0.1:${proxy.port}` },
    { id: 'cm-b', broker: mosq.url },
  ]);
  await c.observe(mosq.url);
  await c.startCm('cm-a', { broker: mosq.url });
  await c.startCm('cm-b');
  const agent = c.startAgent('p-flap', c.agentConfig('p-flap', { mqtt: { connectTimeoutMs: 2000 } }));
  await c.waitHome('p-flap', 'cm-b', 30_000);
  await delay(5000);
  const before = proxy.dropped();
  await delay(WINDOW_MS);
  const perMin = ((proxy.dropped() - before) * 60_000) / WINDOW_MS;
  t.log(`accept-and-drop primary: ${perMin.toFixed(1)} connections/min to it (over ${WINDOW_MS / 1000} s after the first 5 s, homed on the backup)`);
  const lost = lines(agent.output()).filter((l) => l.msg === 'broker lost' && String(l.broker).includes(`:${proxy.port}`));
  t.true(lost.length >= 3, `the flapping broker came up and was lost repeatedly (${lost.length})`);
  const most = Math.max(0, ...lost.map((l) => (typeof l.failures === 'number' ? l.failures : 0)));
  t.true(most >= 4, `failures count on across CONNACKs (highest ${most})`);
  // Each dropped probe makes mosquitto publish the phone's will over the status its home
  // connection published (here both brokers are one): the agent puts the live status back.
  const restored = count(agent.output(), /own will seen on a live run/);
  t.log(`own will seen and the live status put back ${restored} times`);
  await waitFor(() => c.status('p-flap')?.home === 'cm-b', { timeoutMs: 30_000, what: 'the live status (home cm-b) over the will of a dropped probe' });
  t.is(c.status('p-flap')?.duplicateId, false, 'drops without "session taken over" are not a duplicate id');
});
