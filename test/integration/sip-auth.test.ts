/**
 * Issue 17, "SIP with credentials": every part real — two Kamailio registrars with digest
 * authentication (deploy/kamailio/kamailio.cfg WITH_AUTH: auth_db over a db_text subscriber
 * table), two call managers each paired with one, phones each with its own baresip 1.0.0 and the
 * simulator board on a pty, the password in the file `sip.passwordFile` names. The right password
 * registers at A and, after A's registrar is killed (kill -9), at B; a wrong one stays home (no
 * rehome, no tour of the group), its status says `sip-auth-failed`, it tries again slowly. The
 * password appears in no log line (the agents log at debug), status or event. Registration time
 * with authentication beside without (the same baresip, two registrars) is logged as a figure,
 * never asserted.
 */
import test from 'ava';
import { BaresipUserAgent } from '../../src/sip/baresip.js';
import { silentLogger } from '../../src/lib/log.js';
import type { SipEvent } from '../../src/sip/user-agent.js';
import { startBaresip } from '../helpers/baresip.js';
import { startKamailio } from '../helpers/kamailio.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { sipOf, startSipGroup, sipTestCluster, untilPhone as until, type UaPhone as Phone } from '../helpers/sip-group.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

const RIGHT = 'Right-Pass-1001';
const WRONG = 'not-the-password';
const P2_PASS = 'Pass-1002.x';
const SUBSCRIBERS = [
  { user: '1001', password: RIGHT },
  { user: '1002', password: P2_PASS },
  { user: '1003', password: 'Pass-1003' },
];



test.serial('digest auth: the right password registers at A and, after A\'s registrar is killed, at B; a wrong one stays home, says why, tries again; the passwords are never logged or published', async (t) => {
  t.timeout(240_000);
  const { c, cleanup } = sipTestCluster(t);
  const g = await startSipGroup(c, mosq.url, {
    probe: { probeMs: 300, missLimit: 3 },
    fallbackHoldMs: 60_000,
    kamailio: { auth: SUBSCRIBERS },
    phones: [
      { id: 'p-1', user: '1001', password: RIGHT },
      { id: 'p-2', user: '1002', password: WRONG, sip: { authRetryMs: 1000 } },
    ],
    agent: { log: { level: 'debug' } },
    cleanup,
  });
  const [p1, p2] = g.phones as [Phone, Phone];

  await until(c, p1, () => c.status(p1.id)?.home === 'cm-a' && sipOf(c, p1.id)?.registrar === 'cm-a', 'registered at cm-a with the right password');
  t.is(sipOf(c, p1.id)?.reason, null);

  // The wrong password: homed on cm-a, registered nowhere, the status says why, no rehome.
  await until(c, p2, () => c.status(p2.id)?.home === 'cm-a' && sipOf(c, p2.id)?.reason === 'sip-auth-failed', 'sip-auth-failed on cm-a');
  // Longer than registerTimeoutMs (4 s) and several retries (1 s, 2 s, 4 s).
  await until(c, p2, () => c.events(p2.id, 'sip-auth-failed').length >= 3, 'three refusals (retries)', 30_000);
  const refusals = c.events(p2.id, 'sip-auth-failed').map((e) => e.payload);
  t.like(refusals[0], { cm: 'cm-a', reason: '401 Unauthorized' });
  t.deepEqual(
    refusals.slice(0, 3).map((e) => e.retryMs),
    [1000, 2000, 4000],
    'the retry waits double',
  );
  t.is(c.status(p2.id)?.home, 'cm-a', 'a wrong password stays home');
  t.is(sipOf(c, p2.id)?.registrar, null);
  t.deepEqual(c.events(p2.id, 'rehomed').filter((e) => e.payload.reason === 'sip-failed'), [], 'no tour of the group for refused credentials');

  // A's registrar dies (kill -9): cm-a reports offline, the phones fail over, p-1 registers at B.
  const killedAt = Date.now();
  await g.ka.kill('SIGKILL');
  await until(c, p1, () => c.status(p1.id)?.home === 'cm-b' && sipOf(c, p1.id)?.registrar === 'cm-b', 'registered at cm-b after A died');
  t.log(`A's registrar killed → p-1 registered at B with digest auth: ${Date.now() - killedAt} ms`);
  t.like(c.events(p1.id, 'rehomed').at(-1)?.payload, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
  // p-2 follows its home for the call manager's failure, and is refused at B as well: it stays there.
  await until(c, p2, () => c.status(p2.id)?.home === 'cm-b' && sipOf(c, p2.id)?.reason === 'sip-auth-failed', 'refused at cm-b too');
  await until(c, p2, () => c.events(p2.id, 'sip-auth-failed').some((e) => e.payload.cm === 'cm-b'), 'sip-auth-failed at cm-b');
  t.is(c.status(p2.id)?.home, 'cm-b');

  // The passwords: in no log line (debug level), status or event.
  for (const p of [p1, p2]) {
    const out = p.agent.output();
    t.true(out.includes('"level":20'), `${p.id} logged at debug`);
    for (const secret of [RIGHT, WRONG, P2_PASS]) t.false(out.includes(secret), `${p.id}'s log holds no password`);
  }
  const published = JSON.stringify([...c.seen.statuses, ...c.seen.events]);
  for (const secret of [RIGHT, WRONG, P2_PASS]) t.false(published.includes(secret), 'no password in any status or event');
});

test.serial('figure: REGISTER → 200 OK with digest auth beside without (one baresip, two registrars, alternating)', async (t) => {
  t.timeout(120_000);
  const [plain, auth] = await Promise.all([startKamailio(), startKamailio({ auth: SUBSCRIBERS })]);
  const b = await startBaresip();
  t.teardown(async () => {
    await b.stop();
    await plain.stop();
    await auth.stop();
  });
  const events: SipEvent[] = [];
  const waiters: (() => void)[] = [];
  const ua = new BaresipUserAgent({ port: b.ctrlPort, log: silentLogger(), auth: { user: '1001', password: RIGHT } });
  t.teardown(() => ua.close());
  ua.start((e) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  });
  await waitFor(() => ua.connected(), { timeoutMs: 10_000, what: 'ctrl_tcp up' });
  // The account carries credentials at both: the registrar without auth never challenges them.
  const once = async (aor: string): Promise<number> => {
    const from = events.length;
    const t0 = performance.now();
    await ua.addAccount(aor, 600);
    const answer = (): SipEvent | undefined => events.slice(from).find((e) => (e.type === 'registered' || e.type === 'register-failed') && e.aor === aor);
    await waitFor(() => answer() !== undefined, { timeoutMs: 10_000, what: `answer for ${aor}` });
    const ms = performance.now() - t0;
    const last = answer();
    t.is(last?.type, 'registered', `${aor} registered`);
    await ua.removeAccount(aor);
    return ms;
  };
  const plainMs: number[] = [];
  const authMs: number[] = [];
  for (let i = 0; i < 10; i++) {
    plainMs.push(await once(`sip:1001@127.0.0.1:${plain.port};transport=tcp`));
    authMs.push(await once(`sip:1001@127.0.0.1:${auth.port};transport=tcp`));
  }
  const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const mp = median(plainMs);
  const ma = median(authMs);
  t.log(`REGISTER → 200 OK over TCP, median of 10 each (loaded machine): without auth ${mp.toFixed(1)} ms, with digest auth ${ma.toFixed(1)} ms (ratio ${(ma / mp).toFixed(2)})`);
  t.log(`without: ${plainMs.map((x) => x.toFixed(1)).join(', ')}; with: ${authMs.map((x) => x.toFixed(1)).join(', ')}`);
});
