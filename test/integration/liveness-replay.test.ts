/**
 * Signed states replayed within a run (issue 15 §2), end to end with
 * recorded genuine messages: a real mosquitto (open, then TLS with the ACL
 * `ipphone-admin acl` prints), a real Kamailio paired with cm-a, cm-a, cm-b
 * and phones as child processes. The attacker is an mqtt.js client — anyone
 * on the open broker, a phone certificate under the ACL. Effects are judged by
 * a separate subscriber, the phones' status and events, and cm-b's /metrics
 * and log, never by a publisher's return code. Each test is named after the
 * rule it proves (src/protocol/cm-liveness.ts).
 */
import test from 'ava';
import { aclFile } from '../../src/admin/acl.js';
import { Cluster, OBSERVER_CN } from '../helpers/cluster.js';
import { startKamailio } from '../helpers/kamailio.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { assertBuilt } from '../helpers/programs.js';
import { bodyOf, peerChanges, watch } from '../helpers/state-wire.js';

/** The separate subscriber's CN under TLS: an operator (reads everything), not the cluster's observer (one connection per CN). */
const WATCHER = 'ops-watch';

let pki: Pki;
test.before(async () => {
  assertBuilt();
  pki = await makePki();
});
test.after.always(() => pki?.remove());

async function metrics(c: Cluster, id: string): Promise<string> {
  return (await fetch(c.group.find((g) => g.id === id)!.services.replace(/\/services$/, '/metrics'))).text();
}
const metric = (text: string, name: string): number => Number(new RegExp(`^${name.replace(/[{}"]/g, (ch) => `\\${ch}`)} (\\S+)$`, 'm').exec(text)?.[1] ?? NaN);
const pushes = async (c: Cluster, id: string): Promise<number> => {
  const m = await metrics(c, id);
  return ['failover', 'rebalance', 'admin'].reduce((n, r) => n + metric(m, `ipphone_cm_pointer_pushes_total{reason="${r}"}`), 0);
};
const keepalives = async (c: Cluster, id: string): Promise<number> => metric(await metrics(c, id), 'ipphone_cm_keepalives_total');
const refused = async (c: Cluster, id: string): Promise<number> => metric(await metrics(c, id), 'ipphone_cm_peer_states_refused_total');
const moves = (c: Cluster, phone: string) => c.events(phone, 'rehomed').filter((e) => e.payload.reason !== 'services-timeout');
const staleRejections = (c: Cluster, phone: string, topic: string, since: number) =>
  c.events(phone, 'rejected').filter((e) => e.at >= since && e.payload.topic === topic && e.payload.code === 'STATE_STALE');

test.serial('liveness-seq-strictly-newer (open broker): cm-a\'s genuine offline of a silent registrar, recorded and replayed twice while cm-a lives, moves no phone and changes nothing at cm-b', async (t) => {
  t.timeout(180_000);
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const kam = await startKamailio();
  t.teardown(() => kam.stop());
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([{ id: 'cm-a', broker: mosq.url, sip: kam.uri }, { id: 'cm-b', broker: mosq.url }]);
  await c.observe(mosq.url);
  await c.startCm('cm-a', { sip: { registrar: kam.uri, probeMs: 300, missLimit: 3 } });
  await c.startCm('cm-b');
  const stateTopic = `${c.prefix}/cm/cm-a/state`;
  const states = await watch(t, mosq.url, [stateTopic]);
  c.startAgent('p1', c.agentConfig('p1', { fallback: { holdMs: 2000 } }));
  await c.waitHome('p1', 'cm-a', 30_000);
  await waitFor(() => states.got.some((m) => bodyOf(c, m.text).online), { timeoutMs: 10_000, what: 'cm-a online' });
  const online1 = bodyOf(c, states.got.at(-1)!.text);

  // The registrar goes silent: cm-a, alive, signs and publishes its own offline. Recorded.
  await kam.kill('SIGKILL');
  await waitFor(() => states.got.some((m) => !bodyOf(c, m.text).online), { timeoutMs: 20_000, what: 'cm-a\'s own offline' });
  const offline = states.got.find((m) => !bodyOf(c, m.text).online)!.text;
  const offBody = bodyOf(c, offline);
  t.is(offBody.will, undefined, 'its own offline is not the will');
  t.true(offBody.seq > online1.seq, `seq ${online1.seq} → ${offBody.seq}`);
  await c.waitHome('p1', 'cm-b', 30_000);
  t.like(moves(c, 'p1')[0]?.payload, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });

  // The registrar is back: cm-a online again, newer still; the phone falls back after the hold.
  await kam.restart();
  await waitFor(() => bodyOf(c, states.got.at(-1)!.text).online, { timeoutMs: 20_000, what: 'cm-a online again' });
  const online2 = states.got.at(-1)!.text;
  t.true(bodyOf(c, online2).seq > offBody.seq);
  t.false(states.got.some((m) => bodyOf(c, m.text).will === true), 'the will\'s bytes were never published while cm-a lived');
  await c.waitHome('p1', 'cm-a', 30_000);
  await waitFor(() => peerChanges(c).at(-1)?.length === 0, { timeoutMs: 10_000, what: 'cm-b counting cm-a online again' });

  // The attack: anyone on the open broker replays the recorded offline, retained, twice.
  const attacker = await watch(t, mosq.url, []);
  const movesBefore = moves(c, 'p1').length;
  const bOut = c.cms.get('cm-b')!.output().length;
  const pushesBefore = await pushes(c, 'cm-b');
  for (const round of [1, 2]) {
    const since = Date.now();
    const refusedBefore = await refused(c, 'cm-b');
    const seen = states.got.length;
    await attacker.client.publishAsync(stateTopic, offline, { qos: 1, retain: true });
    // Every party got it: the phone refused it (event), cm-b refused it (metric), cm-a republished its online over it.
    await waitFor(() => staleRejections(c, 'p1', stateTopic, since).length > 0 || round === 2, { timeoutMs: 10_000, what: 'the phone refusing the replay (STATE_STALE)' });
    await waitFor(async () => (await refused(c, 'cm-b')) > refusedBefore, { timeoutMs: 10_000, what: 'cm-b refusing the replay' });
    await waitFor(() => states.got.slice(seen).some((m) => m.text === online2), { timeoutMs: 10_000, what: 'cm-a republishing its online over the replay' });
    // A few keep-alive rounds later the phone is still home.
    const ka = await keepalives(c, 'cm-a');
    await waitFor(async () => (await keepalives(c, 'cm-a')) >= ka + 3, { timeoutMs: 15_000, what: 'three more keep-alives at cm-a' });
    t.like(c.status('p1'), { home: 'cm-a', state: 'homed' }, `round ${round}`);
  }
  t.is(moves(c, 'p1').length, movesBefore, 'the phone never left cm-a');
  t.is(await pushes(c, 'cm-b'), pushesBefore, 'cm-b pushed no list');
  t.deepEqual(peerChanges(c, bOut), [], 'cm-b never counted cm-a offline');
  t.regex(c.cms.get('cm-b')!.output().slice(bOut), /STATE_STALE/);
});

test.serial('liveness-will-is-final (open broker): cm-a killed -9, its recorded online republished retained → cm-b does not count it online, the phone\'s list does not get cm-a first', async (t) => {
  t.timeout(120_000);
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const c = await Cluster.group(t, mosq.url, ['cm-a', 'cm-b']);
  const stateTopic = `${c.prefix}/cm/cm-a/state`;
  const states = await watch(t, mosq.url, [stateTopic]);
  const pointers = await watch(t, mosq.url, [`${c.prefix}/phone/p2/pointers`]);
  c.startAgent('p2');
  await c.waitHome('p2', 'cm-a', 30_000);
  await waitFor(() => states.got.some((m) => bodyOf(c, m.text).online), { timeoutMs: 10_000, what: 'cm-a online' });
  const online = states.got.find((m) => bodyOf(c, m.text).online)!.text;

  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p2', 'cm-b', 30_000);
  await waitFor(() => peerChanges(c).at(-1)?.[0] === 'cm-a', { timeoutMs: 10_000, what: 'cm-b counting cm-a offline' });
  await waitFor(() => (c.status('p2')?.pointers as string[] | undefined)?.[0] === 'cm-b', { timeoutMs: 15_000, what: 'the phone holding cm-b first' });
  const version = c.status('p2')!.pointersVersion as number;

  const since = Date.now();
  const bOut = c.cms.get('cm-b')!.output().length;
  const refusedBefore = await refused(c, 'cm-b');
  const pushedBefore = pointers.got.length;
  const attacker = await watch(t, mosq.url, []);
  await attacker.client.publishAsync(stateTopic, online, { qos: 1, retain: true });
  await waitFor(async () => (await refused(c, 'cm-b')) > refusedBefore, { timeoutMs: 10_000, what: 'cm-b refusing the replayed online' });
  await waitFor(() => staleRejections(c, 'p2', stateTopic, since).length > 0, { timeoutMs: 10_000, what: 'the phone refusing the replayed online' });
  // Several acks of cm-b later (each carries cm-b's list for the phone):
  const ka = await keepalives(c, 'cm-b');
  await waitFor(async () => (await keepalives(c, 'cm-b')) >= ka + 3, { timeoutMs: 15_000, what: 'three more keep-alives at cm-b' });
  const st = c.status('p2')!;
  t.is((st.pointers as string[])[0], 'cm-b', `the phone's list: ${JSON.stringify(st.pointers)}`);
  t.is(st.pointersVersion, version, 'no new list');
  t.is(st.home, 'cm-b');
  t.is(pointers.got.length, pushedBefore, 'no list pushed to the phone');
  t.deepEqual(peerChanges(c, bOut), [], 'cm-b never counted the dead cm-a online');
  t.deepEqual(moves(c, 'p2').map((e) => e.payload.reason), ['cm-offline']);
});

test.serial('liveness-acl-confined-phone (TLS + printed ACL): a phone certificate publishes nothing on the state topic, nothing on another\'s challenge or any answer; its challenge flood is answered at most once a second and crowds out no one', async (t) => {
  t.timeout(180_000);
  const c = new Cluster({ tls: pki });
  t.teardown(() => c.close());
  const acl = pki.writeFile(`acl-${c.prefix.replace(/\W/g, '_')}.conf`, aclFile({ prefix: c.prefix, callManagers: ['cm-a', 'cm-b'], operators: [OBSERVER_CN, WATCHER] }));
  const mosq: Mosquitto = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, aclFile: acl } });
  t.teardown(() => mosq.stop());
  await c.defineGroup([{ id: 'cm-a', broker: mosq.url }, { id: 'cm-b', broker: mosq.url }]);
  await c.observe(mosq.url);
  await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
  await c.identity('p-good');
  c.startAgent('p-good');
  await c.waitHome('p-good', 'cm-a', 30_000);

  // A separate subscriber with operator rights sees every state, challenge and answer.
  const p = c.prefix;
  const stateTopic = `${p}/cm/cm-a/state`;
  const obs = await watch(t, mosq.url, [`${p}/cm/+/state`, `${p}/cm/+/challenge/#`, `${p}/phone/p-evil/status`], await pki.clientTls(WATCHER));
  await waitFor(() => obs.on(stateTopic).length > 0, { timeoutMs: 10_000, what: 'cm-a\'s retained state' });
  const online = obs.on(stateTopic).at(-1)!.text;
  // A genuine will of an earlier run of cm-a: kill -9, keep it, start again.
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.cms.get('cm-a')!.exited;
  await waitFor(() => obs.on(stateTopic).some((m) => bodyOf(c, m.text).will === true), { timeoutMs: 10_000, what: 'cm-a\'s will' });
  const will = obs.on(stateTopic).find((m) => bodyOf(c, m.text).will === true)!.text;
  await c.startCm('cm-a');
  const newRun = (m: { text: string }): boolean => bodyOf(c, m.text).online && bodyOf(c, m.text).bdSeq > bodyOf(c, will).bdSeq;
  await waitFor(() => obs.on(stateTopic).some(newRun), { timeoutMs: 10_000, what: 'cm-a\'s new run online' }).catch((err: Error) => {
    throw new Error(`${err.message}\n${obs.on(stateTopic).map((m) => JSON.stringify(bodyOf(c, m.text))).join('\n')}\n${c.cms.get('cm-a')!.output().slice(-3000)}\n${mosq.logTail()}`);
  });
  const current = obs.on(stateTopic).find(newRun)!.text;
  await waitFor(() => moves(c, 'p-good').at(-1)?.payload.to === 'cm-a' && c.status('p-good')?.home === 'cm-a', { timeoutMs: 30_000, what: 'p-good back on cm-a' });

  // The confined phone: its own certificate under the printed ACL.
  const evil = await watch(t, mosq.url, [`${p}/cm/+/challenge/+/answer`, `${p}/cm/+/state`], await pki.clientTls('p-evil'));
  /** Publish `topic` as the evil phone, then a sentinel on its own status: what the ACL let through arrives before it. */
  const attempt = async (topic: string, payload: string, retain = false): Promise<void> => {
    const seen = obs.got.length;
    await evil.client.publishAsync(topic, payload, { qos: 1, retain });
    const sentinel = `{"online":true,"sentinel":${Math.random()}}`;
    await evil.client.publishAsync(`${p}/phone/p-evil/status`, sentinel, { qos: 1 });
    await waitFor(() => obs.got.slice(seen).some((m) => m.text === sentinel), { timeoutMs: 10_000, what: 'the sentinel' });
    t.deepEqual(obs.got.slice(seen).filter((m) => m.text !== sentinel).map((m) => m.topic), [], `nothing of ${topic} reached the subscriber`);
  };
  const moved = moves(c, 'p-good').length;
  for (const payload of [will, online, current, '', '{"online":false}']) await attempt(stateTopic, payload, true);
  await attempt(`${p}/cm/cm-a/challenge/p-good`, '{"challenge":"AAAAAAAAAAAAAAAAAAAAAA"}');
  await attempt(`${p}/cm/cm-a/challenge/p-good/answer`, current);
  await attempt(`${p}/cm/cm-a/challenge/p-evil/answer`, current);
  t.is(obs.on(stateTopic).at(-1)!.text, current, 'the retained state is still cm-a\'s own');

  // What it may do: challenge cm-a on its own topic. A flood of 300 over ~3 s.
  const honest = await watch(t, mosq.url, [`${p}/cm/cm-a/challenge/p-honest/answer`], await pki.clientTls('p-honest'));
  const evilAnswers = `${p}/cm/cm-a/challenge/p-evil/answer`;
  const started = Date.now();
  let honestAskedAt = 0;
  for (let i = 0; i < 300; i++) {
    await evil.client.publishAsync(`${p}/cm/cm-a/challenge/p-evil`, JSON.stringify({ challenge: `evil${String(i).padStart(18, '0')}` }), { qos: 0 });
    if (i === 150) {
      honestAskedAt = Date.now();
      await honest.client.publishAsync(`${p}/cm/cm-a/challenge/p-honest`, JSON.stringify({ challenge: 'honest-challenge-0000001' }), { qos: 1 });
    }
    if (i % 10 === 0) await new Promise((r) => setTimeout(r, 100));
  }
  await waitFor(() => honest.got.length > 0, { timeoutMs: 10_000, what: 'the honest phone\'s answer' });
  const honestAnswer = bodyOf(c, honest.got[0]!.text);
  t.like(honestAnswer, { cm: 'cm-a', online: true, challenge: 'honest-challenge-0000001', bdSeq: bodyOf(c, current).bdSeq });
  // Let the last flood challenge be answered, then count.
  await waitFor(() => obs.on(evilAnswers).some((m) => bodyOf(c, m.text).challenge === `evil${String(299).padStart(18, '0')}`), { timeoutMs: 10_000, what: 'the answer to the flood\'s last challenge' });
  const elapsed = Date.now() - started;
  const answered = obs.on(evilAnswers).length;
  t.log(`300 challenges from one phone in ${elapsed} ms → ${answered} answers; the honest phone's answer ${honest.got[0]!.at - honestAskedAt} ms after it asked`);
  t.true(answered <= 2 + Math.ceil(elapsed / 1000), `${answered} answers in ${elapsed} ms (at most one a second)`);
  t.true(evil.got.every((m) => !m.topic.endsWith('/answer') || m.topic === evilAnswers), 'the evil phone read no one else\'s answer');
  // The operator's scrape of cm-a counts them: every answer seen here (the flood's and the honest phone's), perhaps a peer's too.
  t.true(metric(await metrics(c, 'cm-a'), 'ipphone_cm_liveness_challenges_total{outcome="answered"}') >= answered + 1, 'answered challenges in /metrics');
  t.is(moves(c, 'p-good').length, moved, 'the phone never moved');
  t.like(c.status('p-good'), { home: 'cm-a' });
});
