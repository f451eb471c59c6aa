/**
 * Issue 10, "Deadlines follow the wall clock": the agent's keep-alive cadence,
 * miss counting and fallback hold-down run on the monotonic clock, so an NTP
 * step of the wall clock (either way) changes none of them. The whole Agent
 * runs on one FakeClock whose wall clock is stepped alone
 * ({@link FakeClock.stepWall}); the transport is an in-memory stand-in whose
 * call managers answer each keep-alive 5 ms later on the same clock.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { agentOn, type LoopTransport } from '../../helpers/agent-loop.js';

const HOUR = 3_600_000;

const sentBetween = (net: LoopTransport, cm: string, from: number, to: number): number => net.sent.filter((s) => s.cm === cm && s.at >= from && s.at < to).length;

for (const [name, step] of [
  ['back 1 h', -HOUR],
  ['forward 1 h', HOUR],
] as const) {
  test(`wall ${name}: keep-alives keep their cadence (as many in the 10 s after the step as in the 10 s before)`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    t.is(agent.home, 'cm-a');
    const t0 = clock.elapsed();
    await run(10_000);
    const before = sentBetween(net, 'cm-a', t0, t0 + 10_000);
    clock.stepWall(step);
    await run(10_000);
    const after = sentBetween(net, 'cm-a', t0 + 10_000, t0 + 20_000);
    t.log(`keep-alives in 10 s: ${before} without a step, ${after} after a wall step ${name}`);
    t.is(before, 10);
    t.is(after, before);
    t.is(agent.home, 'cm-a');
    t.is(agent.state.rehomes, 0);
    t.true(agent.healthy(), 'the wake-up timer is not judged overdue by wall time');
  });

  test(`wall ${name}: misses are counted only as real time passes`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    t.is(agent.home, 'cm-a');
    net.alive.delete('cm-a');
    clock.stepWall(step);
    // Three misses take at least 2 s more (the 3rd keep-alive after the loss plus its ack timeout).
    await run(2_000);
    t.is(agent.home, 'cm-a', 'no miss is counted for time that did not pass');
    t.is(agent.state.rehomes, 0);
    await run(3_000);
    t.is(agent.home, 'cm-b', 'the failover comes after missLimit intervals of real time');
    const ev = net.agentEvents.filter((e) => e.type === 'rehomed' && e.to === 'cm-b');
    t.is(ev.length, 1);
    const { detectMs, rehomeMs } = ev[0] as { detectMs: number; rehomeMs: number };
    t.true(detectMs >= 2_000 && detectMs <= 4_000, `detectMs ${detectMs} is real time since the last ack`);
    t.true(rehomeMs >= 0 && rehomeMs < 1_000, `rehomeMs ${rehomeMs} is real time`);
  });

  test(`wall ${name} while a keep-alive is outstanding: no miss is counted for it`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    net.ackDelayMs = 150; // within ackTimeoutMs (200)
    await run(1_000);
    const sent = net.sent.length;
    for (let i = 0; i < 1000 && net.sent.length === sent; i++) clock.advance(1);
    clock.advance(20); // that keep-alive is outstanding: its ack is due in 130 ms
    clock.stepWall(step);
    net.duplicateLastAck();
    let most = agent.state.health['cm-a']?.misses ?? 0;
    for (let i = 0; i < 200; i++) {
      await run(50);
      most = Math.max(most, agent.state.health['cm-a']?.misses ?? 0);
    }
    t.is(most, 0);
    t.is(agent.home, 'cm-a');
  });

  test(`wall ${name}: the fallback hold-down is respected`, async (t) => {
    const clock = new FakeClock();
    const { agent, net, run } = await agentOn(clock);
    t.teardown(() => agent.stop());
    await run(5_000);
    net.alive.delete('cm-a');
    await run(6_000);
    t.is(agent.home, 'cm-b');
    net.alive.add('cm-a');
    await run(2_000);
    clock.stepWall(step);
    await run(20_000);
    t.is(agent.home, 'cm-b', 'holdMs (30 s) has not passed since cm-a answered again');
    await run(15_000);
    t.is(agent.home, 'cm-a', 'back on the primary once holdMs passed');
  });
}
