/**
 * Issue 15 §6, "remote-site pointers are erased again", end to end: a phone's
 * list names its group (cm-a, cm-b) and a remote site (cm-r, another group on
 * its own broker). The group's acks and pushes reorder the group and keep cm-r
 * (the bodies' `owns`, protocol/list-merge.ts); with the whole group killed the
 * phone homes on cm-r. Before the fix the phone-bound signatures left `owns`
 * out, every ack replaced the list with [cm-a, cm-b], and a phone whose group
 * died searched for ever while cm-r was up.
 *
 * Real parts: two mosquittos, three call managers and the agent as child
 * processes, crashes as kill -9; judged by the phone's retained status and its
 * log, read by an observer.
 */
import test from 'ava';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';

test('remote-site-kept-by-acks: a phone [cm-a, cm-b, cm-r] keeps cm-r through its group\'s acks and pushes, and homes on it once cm-a and cm-b are killed', async (t) => {
  const groupBroker = await startMosquitto();
  t.teardown(() => groupBroker.stop());
  const siteBroker = await startMosquitto();
  t.teardown(() => siteBroker.stop());
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: groupBroker.url },
    { id: 'cm-b', broker: groupBroker.url },
    { id: 'cm-r', broker: siteBroker.url },
  ]);
  await c.observe(groupBroker.url);
  await c.observe(siteBroker.url);
  const [a, b, r] = c.group;
  // Two groups: cm-a + cm-b, and the remote site cm-r alone (each names only its own members).
  await Promise.all([c.startCm('cm-a', { group: [a, b] }), c.startCm('cm-b', { group: [a, b] }), c.startCm('cm-r', { group: [r] })]);

  // The phone's list: its group, then the remote site (agentConfig's default: every pointer defined).
  const agent = c.startAgent('p-remote', c.agentConfig('p-remote', { fallback: { holdMs: 60_000 } }));
  await c.waitHome('p-remote', 'cm-a');
  // cm-a's ack carried its (bound) group list: the phone took version 1 (it started at 0).
  await waitFor(() => Number(c.status('p-remote')?.pointersVersion) >= 1, { timeoutMs: 10_000, what: "the group's list adopted from cm-a's ack" });
  const adopted = (): string[][] =>
    agent
      .output()
      .split('\n')
      .filter((l) => l.includes('pointer list adopted'))
      .map((l) => (JSON.parse(l.slice(l.indexOf('{'))) as { pointers: string[] }).pointers);
  await waitFor(() => adopted().length >= 1, { timeoutMs: 5000, what: 'the adoption logged' });
  t.deepEqual(adopted()[0], ['cm-a', 'cm-b', 'cm-r'], 'the ack kept cm-r (was: [cm-a, cm-b])');

  // cm-a dies: cm-b's failover list (pushed, bound to the phone) demotes cm-a and keeps cm-r.
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-remote', 'cm-b');
  await waitFor(() => adopted().length >= 2, { timeoutMs: 10_000, what: "cm-b's failover list adopted" }).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-5000)}\n${c.cms.get('cm-b')!.output().slice(-3000)}`);
  });
  t.deepEqual(adopted().at(-1), ['cm-b', 'cm-a', 'cm-r'], "cm-b's list reorders the group and keeps cm-r");

  // The whole group dies: the remote site takes the phone.
  c.cms.get('cm-b')!.signal('SIGKILL');
  await c.waitHome('p-remote', 'cm-r', 20_000);
  t.is(c.status('p-remote')?.home, 'cm-r');
  t.is(agent.child.exitCode, null, 'agent still running');
});
