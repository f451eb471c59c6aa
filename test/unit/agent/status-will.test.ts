/**
 * A phone's will is its status topic's `online: false`. A connection of the
 * live run that dies unclean — a probe of the primary dropped right after its
 * CONNACK, a backup lost — makes its broker publish that will over the status
 * the home connection published when the two brokers are one (or bridged).
 * The agent sees its own status topic and puts the live status back.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { agentOn, BA, BB } from '../../helpers/agent-loop.js';

const STATUS = 'ipphone/phone/p1/status';

test('own will seen while the run is alive: the live status is published again on that broker, retained', async (t) => {
  const clock = new FakeClock();
  const { agent, net, run } = await agentOn(clock);
  t.teardown(() => agent.stop());
  await run(5_000);
  t.is(agent.home, 'cm-a');
  const instance = (JSON.parse(net.published.filter((m) => m.topic === STATUS).at(-1)!.payload) as { instance: string }).instance;
  const before = net.published.length;
  net.deliver(BA, STATUS, { online: false, instance });
  const again = net.published.slice(before).filter((m) => m.topic === STATUS);
  t.is(again.length, 1);
  t.is(again[0]!.broker, BA);
  t.true(again[0]!.retain);
  const body = JSON.parse(again[0]!.payload) as { online: boolean; home: string; instance: string };
  t.like(body, { online: true, home: 'cm-a', instance });
});

test('another run\'s offline, our own online echo, or garbage on the status topic are not answered with a republish', async (t) => {
  const clock = new FakeClock();
  const { agent, net, run } = await agentOn(clock);
  t.teardown(() => agent.stop());
  await run(5_000);
  const instance = (JSON.parse(net.published.filter((m) => m.topic === STATUS).at(-1)!.payload) as { instance: string }).instance;
  const before = net.published.length;
  net.deliver(BA, STATUS, { online: false, instance: 'ffffffffffff' });
  net.deliver(BA, STATUS, { online: true, instance, home: 'cm-a' });
  net.deliver(BA, STATUS, 'not json');
  net.deliver(BA, STATUS, { online: false });
  t.is(net.published.slice(before).filter((m) => m.topic === STATUS).length, 0);
});

test('own will from a broker that is not up: nothing is published there', async (t) => {
  const clock = new FakeClock();
  const { agent, net, run } = await agentOn(clock);
  t.teardown(() => agent.stop());
  await run(5_000);
  const instance = (JSON.parse(net.published.filter((m) => m.topic === STATUS).at(-1)!.payload) as { instance: string }).instance;
  net.up.delete(BB);
  const before = net.published.length;
  net.deliver(BB, STATUS, { online: false, instance });
  t.is(net.published.slice(before).filter((m) => m.topic === STATUS).length, 0);
});
