/**
 * Soak: the compiled agent keeps-alive as fast as its config allows
 * (keepalive.intervalMs = 10, as issue #6 asks; missLimit 20 so that one GC pause is not a failover) against
 * a real call manager for 30 s (IPPHONE_LONG=1: 10 minutes). Its RSS is read
 * from /proc every second; growth from the 25 % mark to the end must stay
 * small (compared as post-GC floors: lowest sample of the second quarter
 * against lowest of the last), and the phone must stay homed without a single rehome.
 *
 * Not measured: the agent's event-loop delay and ack round trip (neither is
 * exposed outside the process; a child cannot be given --expose-gc from
 * here either, so RSS includes garbage not yet collected).
 */
import test from 'ava';
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { delay } from '../helpers/net.js';
import { LONG_MODE, sized, timeoutFor } from '../helpers/long-mode.js';

const ROOT = resolve(import.meta.dirname, '../..');
const AGENT_BIN = join(ROOT, 'dist/bin/ipphone-agent.js');
const SOAK_MS = sized(30_000, 600_000);
const INTERVAL_MS = 10;
/**
 * The soak lasts SOAK_MS and until cm-a has answered 75 % of SOAK_MS / INTERVAL_MS keep-alives:
 * the load it is meant to apply. On a loaded machine the agent gets less CPU and takes longer to
 * send them (up to STRETCH × SOAK_MS); the cadence itself is proven with an injected clock in
 * test/unit/agent/machine.test.ts (`keep-alive cadence follows the schedule`).
 */
const TARGET_KAS = (SOAK_MS / INTERVAL_MS) * 0.75;
const STRETCH = 4;

let mosq: Mosquitto;
test.before(async () => {
  if (!existsSync(AGENT_BIN)) execFileSync('npx', ['tsc', '-p', 'tsconfig.json'], { cwd: ROOT, stdio: 'inherit' });
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

function rssKiB(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!m) throw new Error(`no VmRSS for ${pid}`);
  return Number(m[1]);
}

/** Least-squares slope of y over x. */
function slope(xs: number[], ys: number[]): number {
  const n = xs.length;
  const mx = xs.reduce((a, b) => a + b, 0) / n;
  const my = ys.reduce((a, b) => a + b, 0) / n;
  let num = 0;
  let den = 0;
  for (let i = 0; i < n; i++) {
    num += (xs[i]! - mx) * (ys[i]! - my);
    den += (xs[i]! - mx) ** 2;
  }
  return den === 0 ? 0 : num / den;
}

async function keepalivesTotal(metricsUrl: string): Promise<number> {
  const text = await (await fetch(metricsUrl)).text();
  const m = /^ipphone_cm_keepalives_total(?:\{[^}]*\})? (\d+)/m.exec(text);
  return m ? Number(m[1]) : NaN;
}

test(`soak: keep-alives every ${INTERVAL_MS} ms for ${SOAK_MS / 1000} s — RSS flat after the 25 % mark, no rehome`, async (t) => {
  t.timeout(timeoutFor(SOAK_MS * STRETCH));
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: mosq.url },
    { id: 'cm-b', broker: mosq.url },
  ]);
  await c.observe(mosq.url);
  await Promise.all([c.startCm('cm-a', { keepalive: { phoneIntervalMs: INTERVAL_MS } }), c.startCm('cm-b', { keepalive: { phoneIntervalMs: INTERVAL_MS } })]);
  const cfg = c.agentConfig('p-soak', { keepalive: { intervalMs: INTERVAL_MS, missLimit: 20 }, fallback: { holdMs: 5000 }, log: { level: 'info' } });
  // Plain node on the compiled agent (no tsx loader in the process): the RSS is the agent's own.
  // Its health line (event-loop delay, memory) every 5 s.
  const child = spawn(process.execPath, [AGENT_BIN, '--config', cfg], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, IPPHONE_HEALTH_LOG_MS: '5000' } });
  let out = '';
  const health: { eventLoopP99Ms: number; eventLoopMaxMs: number; heapUsedMiB: number }[] = [];
  let pending = '';
  child.stdout.on('data', (b: Buffer) => {
    pending += b.toString();
    const lines = pending.split('\n');
    pending = lines.pop() ?? '';
    for (const l of lines) if (l.includes('"msg":"health"')) health.push(JSON.parse(l) as (typeof health)[number]);
  });
  for (const s of [child.stdout, child.stderr]) s.on('data', (b: Buffer) => (out = (out + b.toString()).slice(-20_000)));
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  t.teardown(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const agent = { child, pid: child.pid!, output: () => out };
  await c.waitHome('p-soak', 'cm-a');
  const metricsUrl = c.group[0]!.services.replace(/\/services$/, '/metrics');
  const ka0 = await keepalivesTotal(metricsUrl);
  const rehomes0 = c.events('p-soak', 'rehomed').length;

  const began = Date.now();
  const at: number[] = [];
  const rss: number[] = [];
  let answered = 0;
  while (Date.now() - began < SOAK_MS || answered < TARGET_KAS) {
    if (Date.now() - began > SOAK_MS * STRETCH) return void t.fail(`cm-a answered ${answered} keep-alives in ${Date.now() - began} ms, not the ${TARGET_KAS} the soak is meant to apply`);
    await delay(1000);
    answered = (await keepalivesTotal(metricsUrl)) - ka0;
    if (agent.child.exitCode !== null || agent.child.signalCode !== null) return void t.fail(`the agent exited\n${agent.output().slice(-4000)}`);
    at.push((Date.now() - began) / 1000);
    rss.push(rssKiB(agent.pid));
  }
  const ranMs = Date.now() - began;
  const kas = (await keepalivesTotal(metricsUrl)) - ka0;

  const quarter = Math.floor(rss.length / 4);
  // RSS saws up and down with garbage collection (a child cannot be given --expose-gc to
  // force it): compare the floors — the lowest sample of the second quarter against the
  // lowest of the last quarter — and report the raw points and the least-squares slope.
  const floorAtQuarter = Math.min(...rss.slice(quarter, 2 * quarter));
  const floorAtEnd = Math.min(...rss.slice(rss.length - quarter));
  const fromQuarter = floorAtEnd - floorAtQuarter;
  const tailAt = at.slice(quarter);
  const tailRss = rss.slice(quarter);
  const kibPerMin = slope(tailAt, tailRss) * 60;
  const moves = c.events('p-soak', 'rehomed').slice(rehomes0);
  const mib = (k: number): string => (k / 1024).toFixed(1);
  t.log(`${LONG_MODE ? 'long' : 'CI'} mode: ${(ranMs / 1000).toFixed(0)} s at keepalive.intervalMs ${INTERVAL_MS} ; cm-a answered ${kas} keep-alives (${((kas * 1000) / ranMs).toFixed(1)}/s)`);
  t.log(`RSS ${mib(rss[0]!)} → ${mib(rss[quarter]!)} (25 %) → ${mib(rss.at(-1)!)} MiB; min ${mib(Math.min(...tailRss))}, max ${mib(Math.max(...tailRss))} after 25 %; post-GC floor 25–50 % ${mib(floorAtQuarter)}, last 25 % ${mib(floorAtEnd)} MiB: growth ${(fromQuarter / 1024).toFixed(2)} MiB, slope ${kibPerMin.toFixed(0)} KiB/min`);
  const steady = health.slice(1); // the first period includes start-up
  t.log(`event loop over ${steady.length} health periods: p99 max ${Math.max(...steady.map((h) => h.eventLoopP99Ms))} ms, worst ${Math.max(...steady.map((h) => h.eventLoopMaxMs))} ms; heap ${steady.map((h) => h.heapUsedMiB).join(' ')} MiB`);
  t.true(steady.length >= 3, 'health lines arrived');
  // Event-loop delay is a figure (logged above), not asserted: on a shared machine it measures the
  // neighbours. What must hold whatever the load is asserted below: no rehome, RSS flat.
  t.log(`rehomes during the soak: ${moves.length}; final status ${JSON.stringify({ home: c.status('p-soak')?.home, state: c.status('p-soak')?.state, rehomes: c.status('p-soak')?.rehomes })}`);

  t.deepEqual(
    moves.map((e) => e.payload),
    [],
    'no rehome during the soak',
  );
  t.like(c.status('p-soak'), { home: 'cm-a', state: 'homed', online: true });
  // The load was applied (the loop ran until it was); the rate is a figure of the machine, logged above.
  t.true(kas >= TARGET_KAS, `${kas} keep-alives in ${ranMs} ms`);
  t.true(fromQuarter < sized(5, 10) * 1024, `RSS growth from the 25 % mark: ${fromQuarter} KiB`);
});
