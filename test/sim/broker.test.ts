/**
 * The simulator's broker model keeps the MQTT rules the product relies on
 * (docs/simulation.md): retained messages, wills on unclean loss only,
 * client-id takeover firing the old will, per-connection order, and the
 * printed ACL enforced per identity on publish and on delivery.
 */
import test from 'ava';
import { Net, openAcl, printedAcl, topicMatches, type Conn } from '../../src/sim/broker.js';
import { Host, ProcessClock } from '../../src/sim/clock.js';
import { SimMqttClient, SimTransport } from '../../src/sim/clients.js';
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

// Every product client connects with clean: true (mqtt-transport.ts, cm-session.ts, peer-links.ts,
// admin/connect.ts), so the model keeps no sessions: QoS 1 is neither queued for an absent client
// nor redelivered to its next connection (docs/simulation.md, "QoS 1 and sessions").
test('clean sessions: a QoS 1 message published while a client is away never reaches its next connection; retained ones do', async (t) => {
  const s = world();
  const pub = s.open('pub', 'x', 'pub');
  const first = s.open('sub', 'y', 'sub');
  void s.run(100);
  const [pc, c1] = await Promise.all([pub, first]);
  s.net.send(c1, (b) => b.subscribe(c1, ['t/+'], 1));
  await s.run(100);
  s.net.close(c1, true);
  await s.run(100);
  s.net.send(pc, (b) => b.publish(pc, 't/queued', Buffer.from('missed'), false));
  s.net.send(pc, (b) => b.publish(pc, 't/kept', Buffer.from('retained'), true));
  await s.run(100);
  const again = s.open('sub', 'y', 'sub');
  void s.run(100);
  const c2 = await again;
  s.net.send(c2, (b) => b.subscribe(c2, ['t/+'], 1));
  await s.run(200);
  t.deepEqual(s.got.map((g) => `${g.topic} ${g.payload} ${g.retain}`), ['t/kept retained true']);
});

test('the printed ACL lets an operator write phones\' config and pointers; a phone writes no config topic, its own included', (t) => {
  const acl = printedAcl(P, ['cm-a'], ['op-1']);
  t.true(acl.canWrite('op-1', `${P}/phone/p-0001/config`));
  t.true(acl.canWrite('op-1', `${P}/phone/p-0001/pointers`));
  t.true(acl.canRead('op-1', `${P}/phone/p-0001/status`));
  t.false(acl.canWrite('p-6666', `${P}/phone/p-0001/config`));
  t.false(acl.canWrite('p-6666', `${P}/phone/p-6666/config`));
  t.true(acl.canRead('p-0001', `${P}/phone/p-0001/config`));
  t.false(acl.canRead('p-6666', `${P}/phone/p-0001/config`));
});

// What the product does instead of sessions (mqtt-brokers.ts `retire`, mqtt.js's outgoing store): a QoS 1
// message whose PUBACK never came is sent again, first, on the client's next connection. At least once:
// the broker may get it twice.
test('client-side redelivery: a QoS 1 message left unacknowledged by a lost connection is sent again first on the next one', async (t) => {
  const s = world();
  const seen: string[] = [];
  s.net.observers.push((_b, from, topic, payload) => {
    if (from?.clientId === 'ipphone-p1' && !topic.endsWith('/status')) seen.push(`${topic} ${payload.toString()}`);
  });
  const host = new Host(s.w, 'p1');
  const downs: string[] = [];
  const tr = new SimTransport(s.net, host, new ProcessClock(host), 'p1', 'ipphone-p1', { up: () => undefined, down: (_b, r) => downs.push(r), message: () => undefined }, { topic: `${P}/phone/p1/status`, payload: Buffer.from('{"online":false}'), qos: 1, retain: true }, 10_000, 3000, 100);
  tr.connect(s.b.url);
  await s.run(100);
  t.true(tr.isUp(s.b.url));
  // The broker gets the message, its PUBACK is lost (broker→phone cut), and the connection ends by keep-alive.
  s.net.setCut(host, s.b, false, true);
  tr.publish(s.b.url, 'one', 'first', { qos: 1 });
  tr.publish(s.b.url, 'zero', 'once', { qos: 0 });
  await s.run(20_000);
  t.false(tr.isUp(s.b.url));
  t.deepEqual(downs, ['closed']);
  s.net.setCut(host, s.b, false, false);
  tr.publish(s.b.url, 'two', 'second', { qos: 1 });
  tr.connect(s.b.url);
  await s.run(200);
  t.deepEqual(seen, ['one first', 'zero once', 'one first', 'two second']);
  // Acknowledged now: a later loss sends nothing again.
  tr.disconnect(s.b.url);
  tr.connect(s.b.url);
  await s.run(200);
  t.is(seen.length, 4);
});

test('client-side redelivery, mqtt.js: the outgoing store goes again on reconnect before `connect`; the publish callback runs once, at the PUBACK', async (t) => {
  const s = world();
  const seen: string[] = [];
  s.net.observers.push((_b, from, topic, payload) => {
    if (from?.clientId === 'ipphone-cm-x') seen.push(`${topic} ${payload.toString()}`);
  });
  const host = new Host(s.w, 'cm-x');
  const c = new SimMqttClient(s.net, host, new ProcessClock(host), s.b.url, { clientId: 'ipphone-cm-x', clean: true, keepalive: 10, reconnectPeriod: 1000, connectTimeout: 2000 }, 'cm-x');
  let acks = 0;
  let connects = 0;
  // What a `connect` handler publishes (a call manager's state) goes after the stored messages.
  c.on('connect', () => {
    if (++connects === 2) c.publish('two', 'second', { qos: 1 });
  });
  c.on('error', () => undefined);
  await s.run(100);
  s.net.setCut(host, s.b, false, true);
  c.publish('one', 'first', { qos: 1 }, () => acks++);
  await s.run(20_000);
  t.false(c.connected);
  s.net.setCut(host, s.b, false, false);
  await s.run(3_000);
  t.true(c.connected);
  t.is(connects, 2);
  t.deepEqual(seen, ['one first', 'one first', 'two second']);
  t.is(acks, 1);
  c.end(true);
});

test('a cut shorter than the keep-alive delays what a live connection sends, as TCP retransmits it; a connection that ends first loses it', async (t) => {
  const s = world();
  const pw = s.open('w', 'watch', 'w');
  const pa = s.open('a', 'cm-a', 'id-a');
  void s.run(100);
  const [wc, ca] = await Promise.all([pw, pa]);
  s.net.send(wc, (b) => b.subscribe(wc, [`${P}/cm/+/state`, `${P}/cmd`], 1));
  await s.run(100);
  const a = s.b.conns().find((c) => c.clientId === 'id-a')!.host;
  const w = s.b.conns().find((c) => c.clientId === 'w')!.host;
  // Publisher cut both ways for 3 s (keep-alive 10 s: nobody notices): its online arrives after the heal.
  s.net.setCut(a, s.b, true, true);
  s.net.send(ca, (b) => b.publish(ca, `${P}/cm/cm-a/state`, Buffer.from('online'), true));
  await s.run(3000);
  t.deepEqual(s.got.map((g) => g.payload), []);
  s.net.setCut(a, s.b, false, false);
  await s.run(200);
  t.deepEqual(s.got.map((g) => g.payload), ['online']);
  // The subscriber cut broker→host: the message waits and arrives, in order, when the link heals.
  s.net.setCut(w, s.b, false, true);
  s.net.send(ca, (b) => b.publish(ca, `${P}/cm/cm-a/state`, Buffer.from('offline'), true));
  s.net.send(ca, (b) => b.publish(ca, `${P}/cm/cm-a/state`, Buffer.from('online-2'), true));
  await s.run(2000);
  t.deepEqual(s.got.map((g) => g.payload), ['online']);
  s.net.setCut(w, s.b, false, false);
  await s.run(200);
  t.deepEqual(s.got.map((g) => g.payload), ['online', 'offline', 'online-2']);
  // A cut past the keep-alive: the connection ends, and what it sent meanwhile is lost with it.
  s.net.setCut(a, s.b, true, true);
  s.net.send(ca, (b) => b.publish(ca, `${P}/cm/cm-a/state`, Buffer.from('lost'), true));
  await s.run(20_000);
  s.net.setCut(a, s.b, false, false);
  await s.run(200);
  t.false(s.got.some((g) => g.payload === 'lost'));
});
