/**
 * The simulator's broker model keeps the MQTT rules the product relies on
 * (docs/simulation.md): retained messages, wills on unclean loss only,
 * client-id takeover firing the old will, per-connection order, and the
 * printed ACL enforced per identity on publish and on delivery.
 */
import test from 'ava';
import { Net, openAcl, printedAcl, topicMatches, type Conn } from '../../src/sim/broker.js';
import { Host } from '../../src/sim/clock.js';
import { Rng } from '../../src/sim/rng.js';
import { World } from '../../src/sim/world.js';

const P = 'ipphone/v1';

function world(acl = openAcl) {
  const w = new World();
  const net = new Net(w, new Rng(1), 20);
  const b = net.addBroker('A', 'mqtt://10.0.1.1:1883', acl);
  const got: { who: string; topic: string; payload: string; retain: boolean }[] = [];
  const open = (who: string, identity: string, clientId: string, will?: { topic: string; payload: string }) =>
    new Promise<Conn>((resolve, reject) => {
      const host = new Host(w, who);
      net.connect(
        host,
        b.url,
        {
          identity,
          clientId,
          keepaliveMs: 10_000,
          connectTimeoutMs: 3000,
          alive: () => true,
          ...(will ? { will: { topic: will.topic, payload: Buffer.from(will.payload), qos: 1 as const, retain: true } } : {}),
          sink: { message: (topic, payload, retain) => got.push({ who, topic, payload: payload.toString(), retain }), closed: () => undefined },
        },
        (r) => (r.ok ? resolve(r.conn) : reject(new Error(r.reason))),
      );
    });
  const run = (ms: number) => w.runUntil(w.now + ms, () => undefined);
  return { w, net, b, got, open, run };
}

test('topic filters match as MQTT says (+ one level, # the rest)', (t) => {
  t.true(topicMatches('a/+/c', 'a/b/c'));
  t.false(topicMatches('a/+/c', 'a/b/d/c'));
  t.true(topicMatches('a/#', 'a/b/c'));
  t.true(topicMatches('#', 'a'));
  t.false(topicMatches('a/b', 'a/b/c'));
});

test('a will fires on an unclean loss and a takeover, never after a DISCONNECT', async (t) => {
  const s = world();
  const watcher = s.open('w', 'watch', 'w');
  const pa = s.open('a', 'cm-a', 'id-a', { topic: `${P}/cm/cm-a/state`, payload: 'will-1' });
  void s.run(100);
  const [wc, ca] = await Promise.all([watcher, pa]);
  s.net.send(wc, (b) => b.subscribe(wc, [`${P}/cm/+/state`], 1));
  await s.run(100);
  s.net.close(ca, true);
  await s.run(200);
  t.deepEqual(s.got, [], 'a clean disconnect discards the will');
  const second = s.open('a2', 'cm-a', 'id-a', { topic: `${P}/cm/cm-a/state`, payload: 'will-2' });
  void s.run(100);
  await second;
  const third = s.open('a3', 'cm-a', 'id-a', { topic: `${P}/cm/cm-a/state`, payload: 'will-3' });
  void s.run(100);
  const c3 = await third;
  await s.run(100);
  t.deepEqual(s.got.map((g) => g.payload), ['will-2'], 'the taken-over session\'s will fires');
  s.net.close(c3, false);
  await s.run(200);
  t.deepEqual(s.got.map((g) => g.payload), ['will-2', 'will-3'], 'an unclean close fires the will');
  t.is(s.b.retained.get(`${P}/cm/cm-a/state`)?.toString(), 'will-3');
});

test('the printed ACL confines a phone identity; retained messages reach only who may read them', async (t) => {
  const s = world(printedAcl(P, ['cm-a', 'cm-b']));
  const p = s.open('ph', 'p-1', 'ipphone-p-1');
  const c = s.open('cm', 'cm-a', 'ipphone-cm-cm-a');
  void s.run(100);
  const [pc, cc] = await Promise.all([p, c]);
  s.net.send(cc, (b) => b.subscribe(cc, [`${P}/cm/cm-a/keepalive/+`], 0));
  await s.run(100);
  // A phone may not write a call manager's state, nor another phone's keep-alive topic; its own it may.
  s.net.send(pc, (b) => b.publish(pc, `${P}/cm/cm-a/state`, Buffer.from('forged'), true));
  s.net.send(pc, (b) => b.publish(pc, `${P}/cm/cm-a/keepalive/p-2`, Buffer.from('x'), false));
  s.net.send(pc, (b) => b.publish(pc, `${P}/cm/cm-a/keepalive/p-1`, Buffer.from('ka2'), false));
  s.net.send(cc, (b) => b.publish(cc, `${P}/phone/p-2/ack`, Buffer.from('ack-2'), true));
  s.net.send(pc, (b) => b.subscribe(pc, [`${P}/#`], 1));
  await s.run(200);
  t.false(s.b.retained.has(`${P}/cm/cm-a/state`));
  t.deepEqual(s.got.filter((g) => g.who === 'cm').map((g) => g.payload), ['ka2']);
  t.deepEqual(s.got.filter((g) => g.who === 'ph').map((g) => g.topic), [], 'p-1 reads nothing of p-2');
});

test('messages of one connection arrive in the order sent', async (t) => {
  const s = world();
  const a = s.open('a', 'x', 'a');
  const r = s.open('r', 'y', 'r');
  void s.run(100);
  const [ac, rc] = await Promise.all([a, r]);
  s.net.send(rc, (b) => b.subscribe(rc, ['t'], 1));
  await s.run(100);
  for (let i = 0; i < 50; i++) s.net.send(ac, (b) => b.publish(ac, 't', Buffer.from(String(i)), false));
  await s.run(2000);
  t.deepEqual(s.got.map((g) => Number(g.payload)), Array.from({ length: 50 }, (_, i) => i));
});
