/**
 * A call manager whose PBX died is a dead call manager to the phones (issue
 * 11, "The call manager"), end to end: a real mosquitto, a real Kamailio
 * paired with cm-a (`sip.registrar`), cm-a and cm-b and two phones (without
 * SIP) as child processes. kill -9 of Kamailio (cm-a's process lives) → cm-a's
 * signed state says offline, /healthz 503, the phones home on cm-b with
 * reason cm-offline; Kamailio back on the same port → cm-a online, /healthz
 * 200, the phones fall back.
 */
import test from 'ava';
import { connect } from 'mqtt';
import { openEnvelope, parsePublicKey } from '../../src/protocol/envelope.js';
import { Cluster } from '../helpers/cluster.js';
import { startKamailio } from '../helpers/kamailio.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';

const PROBE_MS = 300;
const MISS_LIMIT = 3;

test('cm-sip: registrar death → cm-a offline (signed), /healthz 503, phones on cm-b (cm-offline); registrar back → online, phones fall back', async (t) => {
  t.timeout(120_000);
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const kam = await startKamailio();
  t.teardown(() => kam.stop());

  const c = new Cluster();
  t.teardown(() => c.close());
  // cm-a's member entry names its registrar: every list the group signs carries it.
  await c.defineGroup([{ id: 'cm-a', broker: mosq.url, sip: kam.uri }, { id: 'cm-b', broker: mosq.url }]);
  await c.observe(mosq.url);
  await c.startCm('cm-a', { sip: { registrar: kam.uri, probeMs: PROBE_MS, missLimit: MISS_LIMIT } });
  await c.startCm('cm-b');

  // cm-a's retained state, opened and checked as a phone would.
  const states: { online: boolean; signedOnline: boolean; at: number }[] = [];
  const w = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(async () => void (await w.endAsync(true)));
  w.on('message', (_topic, payload) => {
    const o = JSON.parse(payload.toString()) as { online: boolean; kid: string; body: string; sig: string };
    const body = JSON.parse(openEnvelope(o, new Map([['ops-1', parsePublicKey(c.publicPem)]])).toString()) as { online: boolean };
    states.push({ online: o.online, signedOnline: body.online, at: Date.now() });
  });
  await new Promise<void>((r) => w.once('connect', () => r()));
  await w.subscribeAsync(`${c.prefix}/cm/cm-a/state`, { qos: 1 });
  const healthz = async (): Promise<number> => (await fetch(c.group[0]!.services.replace(/\/services$/, '/healthz'))).status;

  for (const p of ['p1', 'p2']) c.startAgent(p);
  await Promise.all(['p1', 'p2'].map((p) => c.waitHome(p, 'cm-a')));
  t.is(await healthz(), 200);
  await waitFor(() => states.at(-1)?.online === true, { timeoutMs: 30_000, what: 'cm-a online' });

  const cmA = c.cms.get('cm-a')!;
  const killedAt = Date.now();
  await kam.kill('SIGKILL');
  await Promise.all(['p1', 'p2'].map((p) => c.waitHome(p, 'cm-b', 30_000)));
  const movedAt = Date.now();
  const offline = states.find((s) => s.at >= killedAt && !s.online);
  t.truthy(offline, 'cm-a published an offline state');
  t.false(offline!.signedOnline, 'the signed body says offline too');
  t.is(await healthz(), 503);
  t.is(cmA.child.exitCode, null, "cm-a's process lives");
  for (const p of ['p1', 'p2']) {
    const ev = c.events(p, 'rehomed').filter((e) => e.at >= killedAt);
    t.is(ev[0]?.payload.reason, 'cm-offline', `${p}: ${JSON.stringify(ev.map((e) => e.payload))}`);
    t.is(ev[0]?.payload.to, 'cm-b');
  }
  const rehomedAt = Math.max(...['p1', 'p2'].map((p) => c.events(p, 'rehomed').find((e) => e.at >= killedAt)!.at));
  t.log(
    `registrar death → cm-a offline ${offline!.at - killedAt} ms, → both phones on backup ${rehomedAt - killedAt} ms (homed seen ${movedAt - killedAt} ms); probeMs × missLimit = ${PROBE_MS * MISS_LIMIT} ms`,
  );
  t.regex(cmA.output(), /reporting offline: sip registrar silent/);

  await kam.restart();
  await waitFor(async () => (await healthz()) === 200, { timeoutMs: 20_000, intervalMs: 100, what: 'cm-a /healthz 200 again' });
  await waitFor(() => states.at(-1)?.online === true, { timeoutMs: 30_000, what: 'cm-a online again' });
  await Promise.all(['p1', 'p2'].map((p) => c.waitHome(p, 'cm-a', 30_000)));
  for (const p of ['p1', 'p2']) {
    const back = c.events(p, 'rehomed').filter((e) => e.at >= killedAt && e.payload.to === 'cm-a');
    t.is(back[0]?.payload.reason, 'fallback', `${p}: ${JSON.stringify(back.map((e) => e.payload))}`);
  }
});
