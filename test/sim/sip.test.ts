/**
 * The simulator's SIP world answers as docs/simulation.md says: a registrar
 * beside its call manager on that site's network (a phone cut from the site
 * reaches neither), bindings that expire after `regintS` unless refreshed or
 * unregistered, a registrar that stops answering keeps its bindings, and
 * calls routed to the callee's live binding.
 */
import test from 'ava';
import { registrarOf } from '../../src/sim/group.js';
import { SipAtHome, sipBounds, TIMER_F_MS, type SipPhoneHost } from '../../src/sim/sip.js';
import { sipWorld } from '../helpers/sim-sip.js';

test('a REGISTER is answered within two link crossings and binds the phone at that registrar only', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(60);
  t.deepEqual(p.events.map((e) => e.type), ['up', 'registered']);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
});

test('a phone cut from a site reaches neither its broker nor its registrar: the REGISTER is lost and fails at Timer F', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  s.net.setCut(p.host, s.net.byUrl(s.topo.brokers[0]!.url)!, true, false);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(TIMER_F_MS - 100);
  t.deepEqual(s.sw.boundAt('10001'), []);
  t.false(p.events.some((e) => e.type === 'register-failed'));
  await s.run(200);
  t.true(p.events.some((e) => e.type === 'register-failed'));
});

test('an answer lost on the way back leaves a binding the phone does not know of, which expires after regintS', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  s.net.setCut(p.host, s.net.byUrl(s.topo.brokers[0]!.url)!, false, true);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(100);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
  t.false(p.events.some((e) => e.type === 'registered'));
  await s.run(60_000);
  t.deepEqual(s.sw.boundAt('10001'), []);
});

test('an unregister lost on the way (the phone cut from the site) leaves the binding to expire regintS after its last refresh', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(100);
  s.net.setCut(p.host, s.net.byUrl(s.topo.brokers[0]!.url)!, true, false);
  await p.ua.removeAccount(s.aor('10001', 'cm-a'));
  await s.run(59_000);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
  await s.run(1_000);
  t.deepEqual(s.sw.boundAt('10001'), []);
});

test('an unregister removes the binding; a refresh at 90 % of regintS keeps a live account bound', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await p.ua.addAccount(s.aor('10001', 'cm-b'), 60);
  await s.run(200_000);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a', 'cm-b']);
  await p.ua.removeAccount(s.aor('10001', 'cm-a'));
  await s.run(100);
  t.deepEqual(s.sw.boundAt('10001'), ['cm-b']);
});

test('a registrar that stops answering keeps its bindings and answers nothing; a dead phone\'s bindings expire', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await s.run(100);
  s.cms.get('cm-a')!.registrarUp = false;
  t.deepEqual(s.sw.boundAt('10001'), ['cm-a']);
  p.clock.kill();
  await s.run(60_000);
  t.deepEqual(s.sw.boundAt('10001'), []);
});

test('planted: a registrar that keeps bindings ignores unregisters and expiry; one that forgets stores nothing', async (t) => {
  const keeps = sipWorld('registrar-keeps');
  const a = keeps.phone('p-0001');
  await keeps.run(5);
  await a.ua.addAccount(keeps.aor('10001', 'cm-a'), 60);
  await keeps.run(100);
  await a.ua.removeAccount(keeps.aor('10001', 'cm-a'));
  await keeps.run(120_000);
  t.deepEqual(keeps.sw.boundAt('10001'), ['cm-a']);
  const forgets = sipWorld('registrar-forgets');
  const b = forgets.phone('p-0001');
  await forgets.run(5);
  await b.ua.addAccount(forgets.aor('10001', 'cm-a'), 60);
  await forgets.run(100);
  t.true(b.events.some((e) => e.type === 'registered'));
  t.deepEqual(forgets.sw.boundAt('10001'), []);
});

test('a call is routed to the callee\'s live binding in the group: it rings, the answer establishes both ends, a hangup closes the other', async (t) => {
  const s = sipWorld();
  const caller = s.phone('p-0001');
  const callee = s.phone('p-0002');
  await s.run(5);
  await caller.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await callee.ua.addAccount(s.aor('10002', 'cm-c'), 60);
  await s.run(100);
  await caller.ua.dial(s.aor('10001', 'cm-a'), s.aor('10002', 'cm-a'));
  await s.run(200);
  t.is(callee.events.at(-1)?.type, 'incoming');
  t.is(caller.events.at(-1)?.type, 'ringing');
  await callee.ua.answer();
  await s.run(200);
  t.is(caller.events.at(-1)?.type, 'established');
  t.is(callee.events.at(-1)?.type, 'established');
  await caller.ua.hangup();
  await s.run(100);
  t.deepEqual(callee.events.at(-1), { type: 'closed', peer: s.aor('10001', 'cm-a'), reason: 'remote hangup' });
  t.is(caller.ua.call, null);
  t.is(callee.ua.call, null);
});

test('a call to a number bound nowhere fails 404; a callee in a call answers 486', async (t) => {
  const s = sipWorld();
  const a = s.phone('p-0001');
  const b = s.phone('p-0002');
  const c = s.phone('p-0003');
  await s.run(5);
  for (const [p, u] of [[a, '10001'], [b, '10002'], [c, '10003']] as const) await p.ua.addAccount(s.aor(u, 'cm-a'), 60);
  await s.run(100);
  await a.ua.dial(s.aor('10001', 'cm-a'), s.aor('19999', 'cm-a'));
  await s.run(100);
  t.deepEqual(a.events.at(-1), { type: 'closed', peer: s.aor('19999', 'cm-a'), reason: '404 Not Found' });
  await b.ua.dial(s.aor('10002', 'cm-a'), s.aor('10003', 'cm-a'));
  await s.run(100);
  await a.ua.dial(s.aor('10001', 'cm-a'), s.aor('10003', 'cm-a'));
  await s.run(200);
  t.deepEqual(a.events.at(-1), { type: 'closed', peer: s.aor('10003', 'cm-a'), reason: '486 Busy Here' });
});

test('sip-at-home: an old binding may stay while the phone is busy (a call keeps its account) and is reported once the phone has been idle on its home past staleMs', async (t) => {
  const s = sipWorld();
  const p = s.phone('p-0001');
  await s.run(5);
  await p.ua.addAccount(s.aor('10001', 'cm-a'), 60);
  await p.ua.addAccount(s.aor('10001', 'cm-b'), 60);
  const list = s.topo.pointers.map((id) => ({ id, sip: registrarOf(s.cms.get(id)!.spec) }));
  const host: SipPhoneHost = { phoneId: 'p-0001', hook: { offHook: true, set() {} }, agent: { home: 'cm-b', state: { list } }, keypad: { press() {} }, ua: p.ua };
  const b = sipBounds(s.topo, 30);
  const seen: string[] = [];
  const check = new SipAtHome(s.sw, new Map([['p-0001', host]]), b, (d) => seen.push(d), () => undefined);
  // The checker samples after each event: one every 100 ms.
  const tick = (ms: number) => {
    for (let x = s.w.now + 100; x <= s.w.now + ms; x += 100) s.w.at(x, () => undefined);
    return s.w.runUntil(s.w.now + ms, () => check.tick(s.w.now));
  };
  await tick(b.staleMs + 5_000);
  t.deepEqual(seen, [], 'busy: the account at cm-a may linger');
  host.hook.offHook = false;
  await tick(b.staleMs - 1_000);
  t.deepEqual(seen, []);
  await tick(2_000);
  t.true(seen.length > 0);
  t.regex(seen[0]!, /p-0001 idle on cm-b .* still bound at cm-a/);
});

test('sip-at-home: a phone homed where its registrar answers and bound nowhere is reported after registerMs, not before', async (t) => {
  const s = sipWorld();
  const list = s.topo.pointers.map((id) => ({ id, sip: registrarOf(s.cms.get(id)!.spec) }));
  const host: SipPhoneHost = { phoneId: 'p-0002', hook: { offHook: false, set() {} }, agent: { home: 'cm-a', state: { list } }, keypad: { press() {} }, ua: null };
  const b = sipBounds(s.topo, 30);
  const seen: string[] = [];
  const check = new SipAtHome(s.sw, new Map([['p-0002', host]]), b, (d) => seen.push(d), () => undefined);
  for (let x = 100; x <= b.registerMs + 2_000; x += 100) s.w.at(x, () => undefined);
  await s.w.runUntil(b.registerMs - 100, () => check.tick(s.w.now));
  t.deepEqual(seen, []);
  await s.w.runUntil(b.registerMs + 2_000, () => check.tick(s.w.now));
  t.true(seen.length > 0);
  t.regex(seen[0]!, /p-0002 homed on cm-a .* not registered there/);
});
