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

// Found by the group simulation (seed 75): a broker that comes up when the phone no longer wants it
// is disconnected in the same step; the status published to it then went to the transport's
// offline queue and reached the broker at the next connection, seconds later and stale (an older
// config version, a home long left), ahead of the fresh one.
test('a broker that comes up unwanted and is left at once gets no status: nothing stale waits in the queue for its next connection', async (t) => {
  const clock = new FakeClock();
  const BC = 'mqtt://127.0.0.1:3';
  const pointers = [
    { id: 'cm-a', broker: BA, services: 'http://127.0.0.1:1/a' },
    { id: 'cm-b', broker: BB, services: 'http://127.0.0.1:2/b' },
    { id: 'cm-c', broker: BC, services: 'http://127.0.0.1:3/c' },
  ];
  const { agent, net, run } = await agentOn(clock, { config: { pointers } });
  t.teardown(() => agent.stop());
  await run(5_000);
  t.is(agent.home, 'cm-a');
  // A late CONNACK of a connection the phone no longer needs: homed on its primary, it wants cm-a's
  // broker and the standby's (cm-b's), not cm-c's (machine.ts syncBrokers).
  const before = net.published.length;
  net.up.add(BC);
  (net as unknown as { events: { up(b: string): void } }).events.up(BC);
  t.false(net.isUp(BC), 'the phone leaves the broker it does not need');
  t.deepEqual(net.published.slice(before).filter((m) => m.broker === BC && m.topic === STATUS), []);
});
