/**
 * Issue 11, "Calls follow the home", with every part real: two Kamailio
 * registrars, two call managers each paired with one (`sip.registrar`, probed
 * with OPTIONS), two phones each with its own baresip (ctrl_tcp) and the
 * simulator board on a pty (the test types the keys and the hook key). The
 * phones register where they are homed and nowhere else, follow the home on
 * a registrar's death and on a call manager's, call each other from the
 * keypad and hook, and keep a call through a failure move. Figures (home
 * change → REGISTER_OK, off-hook-to-ringing) are logged, never asserted on time.
 */
import test, { type ExecutionContext } from 'ava';
import { Cluster } from '../helpers/cluster.js';
import type { Kamailio } from '../helpers/kamailio.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { callIs, sipOf, startSipGroup, sipTestCluster, untilPhone as until, type UaPhone as Phone } from '../helpers/sip-group.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

const PROBE = { probeMs: 300, missLimit: 3 };


interface SipGroup {
  c: Cluster;
  ka: Kamailio;
  kb: Kamailio;
  p1: Phone;
  p2: Phone;
}



const registeredAt = async (c: Cluster, p: Phone, cm: string): Promise<void> => until(c, p, () => c.status(p.id)?.home === cm && sipOf(c, p.id)?.registrar === cm, `homed and registered at ${cm}`);

async function sipGroup(t: ExecutionContext, fallbackHoldMs = 4000): Promise<SipGroup & { restartCmA: () => Promise<unknown> }> {
  t.timeout(180_000);
  const { c, cleanup } = sipTestCluster(t);
  const g = await startSipGroup(c, mosq.url, {
    probe: PROBE,
    fallbackHoldMs,
    phones: [
      { id: 'p-1', user: '1001' },
      { id: 'p-2', user: '1002' },
    ],
    cleanup,
  });
  const [p1, p2] = g.phones as [Phone, Phone];
  for (const p of [p1, p2]) await registeredAt(c, p, 'cm-a');
  return { c, ka: g.ka, kb: g.kb, p1, p2, restartCmA: g.restartCmA };
}

/** `sip-registered` events of a phone at `cm` (their `ms`: home change → REGISTER_OK). */
const registrations = (c: Cluster, phone: string, cm: string): number[] =>
  c.seen.events.filter((e) => e.phone === phone && e.payload.type === 'sip-registered' && e.payload.cm === cm).map((e) => e.payload.ms as number);

/** p1 lifts the handset and dials p2's number; p2 rings, shows p1's number, answers by lifting its handset. Returns off-hook → p2 ringing in ms. */
async function call(c: Cluster, p1: Phone, p2: Phone): Promise<number> {
  p1.type('h');
  await callIs(c, p1, 'dialing');
  const t0 = Date.now();
  p1.type(`${p2.user}#`);
  await callIs(c, p2, 'ringing');
  const setupMs = Date.now() - t0;
  await until(c, p2, () => p2.agent.output().includes(p1.user), `display shows the caller ${p1.user}`);
  p2.type('h');
  await callIs(c, p1, 'connected');
  await callIs(c, p2, 'connected');
  return setupMs;
}

async function hangUp(c: Cluster, caller: Phone, callee: Phone): Promise<void> {
  caller.type('h');
  await callIs(c, caller, 'idle');
  await callIs(c, callee, 'idle');
  callee.type('h'); // the callee replaces its handset too
  await until(c, callee, () => c.status(callee.id)?.busy === false, 'handset replaced');
}

test.serial('registrar A killed (cm-a lives): cm-a reports offline, both phones home on cm-b and register at B, then call each other from hook and keypad', async (t) => {
  const { c, ka, p1, p2 } = await sipGroup(t);
  const cmA = c.group.find((g) => g.id === 'cm-a')!;
  const killedAt = Date.now();
  await ka.kill('SIGKILL');
  for (const p of [p1, p2]) await registeredAt(c, p, 'cm-b');
  t.log(`registrar death → both phones registered at B: ${Date.now() - killedAt} ms (probeMs ${PROBE.probeMs} × missLimit ${PROBE.missLimit} = ${PROBE.probeMs * PROBE.missLimit} ms)`);
  t.is(c.cms.get('cm-a')!.child.exitCode, null, 'cm-a\'s process lives');
  const health = await fetch(cmA.services.replace(/\/services$/, '/healthz'));
  t.is(health.status, 503, 'cm-a says it is not healthy while its PBX is dead');
  for (const p of [p1, p2]) {
    const ev = c.seen.events.find((e) => e.phone === p.id && e.payload.type === 'rehomed' && e.payload.to === 'cm-b');
    t.is(ev?.payload.reason, 'cm-offline');
    t.log(`${p.id}: home change → REGISTER_OK at B: ${registrations(c, p.id, 'cm-b').join(', ')} ms`);
  }
  const setupMs = await call(c, p1, p2);
  t.log(`off-hook-to-ringing: dial → far end ringing ${setupMs} ms`);
  await hangUp(c, p1, p2);
  t.is(sipOf(c, p1.id)?.registrar, 'cm-b');
});

test.serial('cm-a killed (registrar alive): the registrations move to B; a call up through the move survives it; fallback re-registers at A only once idle', async (t) => {
  const { c, p1, p2, restartCmA } = await sipGroup(t);
  await call(c, p1, p2);
  c.cms.get('cm-a')!.signal('SIGKILL');
  for (const p of [p1, p2]) await registeredAt(c, p, 'cm-b');
  t.is(sipOf(c, p1.id)?.call, 'connected', 'the call survives the failure move (media runs phone to phone)');
  t.is(sipOf(c, p2.id)?.call, 'connected');
  // cm-a comes back; the fallback hold passes, but a phone in a call is busy: it stays.
  await restartCmA();
  await new Promise((r) => setTimeout(r, 6000));
  for (const p of [p1, p2]) {
    t.is(c.status(p.id)?.home, 'cm-b', `${p.id} does not fall back during its call`);
    t.is(sipOf(c, p.id)?.call, 'connected');
  }
  await hangUp(c, p1, p2);
  for (const p of [p1, p2]) await registeredAt(c, p, 'cm-a');
  for (const p of [p1, p2]) t.log(`${p.id}: fallback home change → REGISTER_OK at A: ${registrations(c, p.id, 'cm-a').slice(-1).join('')} ms`);
});
