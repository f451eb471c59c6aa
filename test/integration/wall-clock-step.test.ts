/**
 * Issue 10, "Deadlines follow the wall clock", on a live agent: the compiled
 * agent runs under libfaketime (Debian `faketime`) with its wall clock read
 * from a file on every call (FAKETIME_TIMESTAMP_FILE + FAKETIME_NO_CACHE) and
 * its monotonic clock left alone (FAKETIME_DONT_FAKE_MONOTONIC), as NTP steps
 * a real phone. A real mosquitto and two real call managers; a separate
 * mqtt.js subscriber counts the keep-alives that reach the call managers in
 * the 10 s without a step and in the 10 s after a step forward 1 h and after a
 * step back 1 h. Before the fix the step back left 0 keep-alives in its
 * 10 s (the next wake was an hour away).
 */
import test from 'ava';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { delay } from '../helpers/net.js';
import { assertBuilt } from '../helpers/programs.js';
import { libfaketime } from '../helpers/state-wire.js';

let mosq: Mosquitto;
test.before(async () => {
  assertBuilt();
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

const WINDOW_MS = 10_000;

test('wall-clock-step: keep-alives reach the call manager at the same rate in the 10 s after a ±1 h step of the agent\'s wall clock', async (t) => {
  const lib = libfaketime();
  const c = await Cluster.group(t, mosq.url);
  const rc = join(c.dir, 'faketime.rc');
  writeFileSync(rc, '+0\n');
  // Keep-alives as the call managers receive them, counted by arrival.
  const arrivals: number[] = [];
  const sub = connect(mosq.url, { reconnectPeriod: 200, clientId: `ka-count-${process.pid}` });
  t.teardown(() => sub.endAsync(true));
  sub.on('message', (topic, payload) => {
    if (/\/cm\/[^/]+\/keepalive(\/[^/]+)?$/.test(topic) && payload.toString().includes('"phone":"p1"') && payload.toString().includes('"probe":false')) arrivals.push(performance.now());
  });
  await new Promise<void>((done, fail) => {
    sub.once('connect', () => sub.subscribe([`${c.prefix}/cm/+/keepalive`, `${c.prefix}/cm/+/keepalive/+`], { qos: 0 }, (err) => (err ? fail(err) : done())));
    sub.once('error', fail);
  });
  const agent = c.startAgent('p1', c.agentConfig('p1'), {
    LD_PRELOAD: lib,
    FAKETIME_TIMESTAMP_FILE: rc,
    FAKETIME_NO_CACHE: '1',
    FAKETIME_DONT_FAKE_MONOTONIC: '1',
  });
  await c.waitHome('p1', 'cm-a');
  await delay(2000); // settled on its home
  const count = async (): Promise<number> => {
    const from = performance.now();
    await delay(WINDOW_MS);
    const to = performance.now();
    return arrivals.filter((at) => at >= from && at < to).length;
  };
  const rehomesBefore = c.events('p1', 'rehomed').length;
  const without = await count();
  // Forward first (offset +1 h), then back to the true time (a step back of 1 h): each step is 1 h.
  writeFileSync(rc, '+1h\n');
  const afterForward = await count();
  writeFileSync(rc, '+0\n');
  const afterBack = await count();
  t.log(`keep-alives at the CM in 10 s (interval 1 s): ${without} without a step, ${afterForward} after the wall clock stepped forward 1 h, ${afterBack} after it stepped back 1 h`);
  const out = agent.output();
  // Counts over a 10 s window may differ by one keep-alive on a loaded machine (where the window cuts the cadence).
  t.true(without >= 9, `a homed agent sends one keep-alive a second\n${out.slice(-3000)}`);
  t.true(Math.abs(afterBack - without) <= 1, `step back 1 h: ${afterBack} vs ${without}\n${out.slice(-3000)}`);
  t.true(Math.abs(afterForward - without) <= 1, `step forward 1 h: ${afterForward} vs ${without}\n${out.slice(-3000)}`);
  t.is(c.status('p1')?.home, 'cm-a', 'still homed on the primary');
  t.is(c.events('p1', 'rehomed').length, rehomesBefore, 'no failover from a clock step');
});
