/**
 * Issue 17, "SIP over TLS": registrars with `;transport=tls` — Kamailio's tls module
 * (deploy/kamailio/kamailio.cfg WITH_TLS, with digest auth as well) serving a certificate the
 * test's own CA signed (test/helpers/pki.ts, openssl), the call managers still probing over TCP,
 * phones with baresip 1.0.0 given the group's CA (`sip_cafile`). The phones register over TLS at
 * their home and call each other from hook and keypad; the callee's INVITE comes back over the
 * TLS connection it opened (Kamailio's `force_tcp_alias`: a phone has no server certificate).
 *
 * And what baresip 1.0.0 cannot do, proved: it does not verify the registrar's certificate
 * (libre 1.1.0's SIP TLS client checks no chain and no name) — given an unrelated CA, it
 * registers all the same. Encryption yes, server authentication no: docs/operations.md says so.
 */
import test, { type ExecutionContext } from 'ava';
import { BaresipUserAgent } from '../../src/sip/baresip.js';
import { silentLogger } from '../../src/lib/log.js';
import type { SipEvent } from '../../src/sip/user-agent.js';
import { startBaresip } from '../helpers/baresip.js';
import { startKamailio } from '../helpers/kamailio.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { callIs, sipOf, startSipGroup, sipTestCluster, untilPhone as until, type UaPhone as Phone } from '../helpers/sip-group.js';

let mosq: Mosquitto;
let pki: Pki;
test.before(async () => {
  [mosq, pki] = await Promise.all([startMosquitto(), makePki()]);
});
test.after.always(async () => {
  await mosq?.stop();
  pki?.remove();
});

const SUBSCRIBERS = [
  { user: '1001', password: 'tls-pass-1001' },
  { user: '1002', password: 'tls-pass-1002' },
];



async function tlsGroup(t: ExecutionContext) {
  t.timeout(180_000);
  const { c, cleanup } = sipTestCluster(t);
  const g = await startSipGroup(c, mosq.url, {
    probe: { probeMs: 300, missLimit: 3 },
    fallbackHoldMs: 60_000,
    kamailio: { auth: SUBSCRIBERS, tls: pki.server },
    overTls: true,
    baresipConf: [`sip_cafile ${pki.ca.cert}`],
    phones: SUBSCRIBERS.map((s, i) => ({ id: `p-${i + 1}`, user: s.user, password: s.password })),
    cleanup,
  });
  return { c, g, phones: g.phones as Phone[] };
}

test.serial('SIP over TLS with digest auth: both phones register at their home over TLS and call each other from hook and keypad', async (t) => {
  const { c, g, phones } = await tlsGroup(t);
  const [p1, p2] = phones as [Phone, Phone];
  t.regex(g.ka.tlsUri!, /^sip:127\.0\.0\.1:\d+;transport=tls$/);
  for (const p of [p1, p2]) {
    await until(c, p, () => c.status(p.id)?.home === 'cm-a' && sipOf(c, p.id)?.registrar === 'cm-a', 'registered at cm-a over TLS');
    // baresip prints the transport of each binding it got: "1001@127.0.0.1: {0/TLS/v4} 200 OK".
    await until(c, p, () => /\{0\/TLS\/v4\} 200 OK/.test(p.ua.output()), 'baresip reports a TLS binding');
    t.log(`${p.id}: home change → REGISTER_OK over TLS: ${c.events(p.id, 'sip-registered').map((e) => e.payload.ms).join(', ')} ms`);
  }
  // p-1 lifts the handset and dials p-2; p-2 rings, shows the caller, answers; both hang up.
  p1.type('h');
  await callIs(c, p1, 'dialing');
  const t0 = Date.now();
  p1.type(`${p2.user}#`);
  await callIs(c, p2, 'ringing');
  t.log(`off-hook-to-ringing over TLS (INVITE challenged 407 and sent again with credentials): ${Date.now() - t0} ms`);
  await until(c, p2, () => p2.agent.output().includes(p1.user), `display shows the caller ${p1.user}`);
  p2.type('h');
  await callIs(c, p1, 'connected');
  await callIs(c, p2, 'connected');
  p1.type('h');
  await callIs(c, p1, 'idle');
  await callIs(c, p2, 'idle');
  p2.type('h');
  t.is(sipOf(c, p1.id)?.registrar, 'cm-a');
  t.is(sipOf(c, p2.id)?.registrar, 'cm-a');
});

test.serial('baresip 1.0.0 does not verify a TLS registrar\'s certificate: given an unrelated CA (sip_cafile), it registers all the same', async (t) => {
  t.timeout(60_000);
  const k = await startKamailio({ tls: pki.server });
  const b = await startBaresip({ conf: [`sip_cafile ${pki.otherCa.cert}`] });
  const ua = new BaresipUserAgent({ port: b.ctrlPort, log: silentLogger() });
  t.teardown(async () => {
    await ua.close();
    await b.stop();
    await k.stop();
  });
  const events: SipEvent[] = [];
  ua.start((e) => events.push(e));
  await waitFor(() => ua.connected(), { timeoutMs: 10_000, what: 'ctrl_tcp up' });
  const aor = `sip:1001@127.0.0.1:${k.tlsPort};transport=tls`;
  await ua.addAccount(aor, 600);
  await waitFor(() => events.some((e) => e.type === 'registered' || e.type === 'register-failed'), { timeoutMs: 15_000, what: 'an answer' });
  // A verifying client would refuse the handshake (certificate signed by a CA it was not given).
  t.like(events.find((e) => e.type === 'registered' || e.type === 'register-failed'), { type: 'registered' }, b.output());
});
