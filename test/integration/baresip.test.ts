/**
 * BaresipUserAgent against a real baresip 1.0.0 and a real Kamailio: what the
 * agent relies on (registration ok and failed, calls both ways, reconnect
 * after baresip dies). Each test runs its own processes on free loopback ports.
 */
import test, { type ExecutionContext } from 'ava';
import { isIpphoneError } from '../../src/lib/errors.js';
import { createLogger } from '../../src/lib/log.js';
import { BaresipUserAgent } from '../../src/sip/baresip.js';
import type { SipEvent } from '../../src/sip/user-agent.js';
import { startBaresip, type Baresip } from '../helpers/baresip.js';
import { startKamailio, type Kamailio } from '../helpers/kamailio.js';
import { waitFor } from '../helpers/net.js';

const log = createLogger(process.env.IPPHONE_TEST_LOG === '1' ? 'debug' : 'silent');

/** An adapter on `b`, recording its events. */
class Phone {
  readonly events: SipEvent[] = [];
  readonly ua: BaresipUserAgent;
  constructor(readonly b: Baresip, opts: { commandTimeoutMs?: number } = {}) {
    this.ua = new BaresipUserAgent({ port: b.ctrlPort, log, reconnect: { baseMs: 50, maxMs: 500 }, ...opts });
    this.ua.start((e) => this.events.push(e));
  }

  /** Wait (up to 15 s) for an event from index `from` on that `pred` accepts; returns it. */
  async next(pred: (e: SipEvent) => boolean, what: string, from = 0): Promise<SipEvent> {
    let hit: SipEvent | undefined;
    await waitFor(() => (hit = this.events.slice(from).find(pred)) !== undefined, { timeoutMs: 15_000, intervalMs: 20, what: `${what}; got ${JSON.stringify(this.events)}` });
    return hit as SipEvent;
  }
}

/** Start what the test needs and stop it afterwards; the processes' output goes to the log of a failed test. */
function cleanup(t: ExecutionContext, phones: Phone[], bs: Baresip[], ks: Kamailio[]): void {
  t.teardown(async () => {
    if (!t.passed) {
      for (const b of bs) t.log(`baresip ctrl ${b.ctrlPort}:\n${b.output()}`);
      for (const k of ks) t.log(`kamailio ${k.port}:\n${k.logTail()}`);
    }
    await Promise.all(phones.map((p) => p.ua.close()));
    await Promise.all([...bs.map((b) => b.stop()), ...ks.map((k) => k.stop())]);
  });
}

const aorAt = (user: string, port: number): string => `sip:${user}@127.0.0.1:${port};transport=tcp`;

test('addAccount at a live registrar → registered (with the AOR as given); removeAccount, also of an unknown account, resolves', async (t) => {
  const [b, k] = await Promise.all([startBaresip(), startKamailio()]);
  const p = new Phone(b);
  cleanup(t, [p], [b], [k]);
  await p.next((e) => e.type === 'up', 'up');
  t.true(p.ua.connected());
  const aor = aorAt('1001', k.port);
  await p.ua.addAccount(aor, 60);
  t.deepEqual(await p.next((e) => e.type === 'registered', 'registered'), { type: 'registered', aor });
  await p.ua.removeAccount(aor);
  await p.ua.removeAccount(aor);
  await p.ua.removeAccount(aorAt('nobody', 1));
  const err = await p.ua.dial(aor, aorAt('1002', k.port)).catch((e: unknown) => e);
  t.true(isIpphoneError(err, 'SIP_REFUSED'), String(err));
});

test('addAccount at a dead registrar → register-failed with a reason', async (t) => {
  // Port 1 (tcpmux): nothing listens there. A port from freePort() may be taken meanwhile by a
  // parallel test's non-SIP server, and a REGISTER into silence fails only after 32 s (Timer F).
  const [b, dead] = [await startBaresip(), 1];
  const p = new Phone(b);
  cleanup(t, [p], [b], []);
  await p.next((e) => e.type === 'up', 'up');
  const aor = aorAt('1001', dead);
  await p.ua.addAccount(aor, 60);
  const e = await p.next((x) => x.type === 'register-failed', 'register-failed');
  t.is(e.type === 'register-failed' && e.aor, aor);
  t.regex(e.type === 'register-failed' ? e.reason : '', /refused/i);
});

test('re-adding an account replaces it (one UA per AOR: one removeAccount ends its registration)', async (t) => {
  const [b, k] = await Promise.all([startBaresip(), startKamailio()]);
  const p = new Phone(b);
  cleanup(t, [p], [b], [k]);
  await p.next((e) => e.type === 'up', 'up');
  const aor = aorAt('1001', k.port);
  await p.ua.addAccount(aor, 60);
  await p.ua.addAccount(aor, 60);
  await p.ua.removeAccount(aor);
  const err = await p.ua.dial(aor, aorAt('1002', k.port)).catch((e: unknown) => e);
  t.true(isIpphoneError(err, 'SIP_REFUSED'), `a second UA of ${aor} survived: ${String(err)}`);
});

test('two baresips at one Kamailio call each other: ringing/incoming → answer → established both → hangup → closed both', async (t) => {
  const [b1, b2, k] = await Promise.all([startBaresip(), startBaresip(), startKamailio()]);
  const p1 = new Phone(b1);
  const p2 = new Phone(b2);
  cleanup(t, [p1, p2], [b1, b2], [k]);
  await Promise.all([p1.next((e) => e.type === 'up', 'up 1'), p2.next((e) => e.type === 'up', 'up 2')]);
  const a1 = aorAt('1001', k.port);
  const a2 = aorAt('1002', k.port);
  await Promise.all([p1.ua.addAccount(a1, 60), p2.ua.addAccount(a2, 60)]);
  await Promise.all([p1.next((e) => e.type === 'registered', 'registered 1'), p2.next((e) => e.type === 'registered', 'registered 2')]);

  await p1.ua.dial(a1, a2);
  const incoming = await p2.next((e) => e.type === 'incoming', 'incoming at 2');
  t.regex(incoming.type === 'incoming' ? incoming.peer : '', /^sip:1001@127\.0\.0\.1/);
  const ringing = await p1.next((e) => e.type === 'ringing', 'ringing at 1');
  t.regex(ringing.type === 'ringing' ? ringing.peer : '', /^sip:1002@127\.0\.0\.1/);

  await p2.ua.answer();
  await Promise.all([p1.next((e) => e.type === 'established', 'established 1'), p2.next((e) => e.type === 'established', 'established 2')]);

  await p1.ua.hangup();
  const [c1, c2] = await Promise.all([p1.next((e) => e.type === 'closed', 'closed 1'), p2.next((e) => e.type === 'closed', 'closed 2')]);
  t.is(c1.type, 'closed');
  t.regex(c2.type === 'closed' ? c2.peer : '', /^sip:1001@/);
});

test('kill -9 of baresip → down, TRANSPORT for commands; restarted on the same ctrl port → up; accounts re-addable', async (t) => {
  const [b, k] = await Promise.all([startBaresip(), startKamailio()]);
  const p = new Phone(b);
  cleanup(t, [p], [b], [k]);
  await p.next((e) => e.type === 'up', 'up');
  const aor = aorAt('1001', k.port);
  await p.ua.addAccount(aor, 60);
  await p.next((e) => e.type === 'registered', 'registered');

  const mark = p.events.length;
  await b.kill('SIGKILL');
  await p.next((e) => e.type === 'down', 'down', mark);
  t.false(p.ua.connected());
  const err = await p.ua.addAccount(aor, 60).catch((e: unknown) => e);
  t.true(isIpphoneError(err, 'TRANSPORT'), String(err));

  const mark2 = p.events.length;
  await b.restart();
  await p.next((e) => e.type === 'up', 'up after restart', mark2);
  t.true(p.ua.connected());
  await p.ua.addAccount(aor, 60);
  t.deepEqual(await p.next((e) => e.type === 'registered', 'registered after restart', mark2), { type: 'registered', aor });
});

test('a stopped baresip (SIGSTOP) → the command rejects with TIMEOUT; after SIGCONT it answers again', async (t) => {
  const b = await startBaresip();
  const p = new Phone(b, { commandTimeoutMs: 400 });
  cleanup(t, [p], [b], []);
  await p.next((e) => e.type === 'up', 'up');
  await b.kill('SIGSTOP');
  const err = await p.ua.answer().catch((e: unknown) => e);
  t.true(isIpphoneError(err, 'TIMEOUT'), String(err));
  await b.kill('SIGCONT');
  await p.ua.removeAccount(aorAt('nobody', 1));
  t.true(p.ua.connected());
});

test('another client taking ctrl_tcp (it serves one) → down, the adapter reconnects → up', async (t) => {
  const b = await startBaresip();
  const p = new Phone(b);
  cleanup(t, [p], [b], []);
  await p.next((e) => e.type === 'up', 'up');
  const { default: net } = await import('node:net');
  const intruder = net.connect(b.ctrlPort, '127.0.0.1');
  await new Promise((r) => intruder.once('connect', r));
  const down = await p.next((e) => e.type === 'down', 'down');
  t.is(down.type, 'down');
  intruder.destroy();
  await p.next((e) => e.type === 'up', 'up again', p.events.indexOf(down) + 1);
  await p.ua.removeAccount(aorAt('nobody', 1));
});
