/**
 * A whole Agent with a SIP user agent (the in-memory fake) on one FakeClock:
 * registration follows the home make-before-break, a registrar that refuses
 * the phone fails its pointer (`sip-failed`), a user agent that restarts is
 * registered again, a call makes the phone busy (no voluntary move) and a
 * failure move during a call keeps the call.
 */
import test from 'ava';
import { HeadlessDisplay, SoftHook } from '../../../src/hw/headless.js';
import type { Keypad, Led } from '../../../src/hw/types.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { FakeSipUserAgent } from '../../../src/sip/user-agent-fake.js';
import { agentOn, BA, BB } from '../../helpers/agent-loop.js';

const SIP_A = 'sip:127.0.0.1:5071;transport=tcp';
const SIP_B = 'sip:127.0.0.1:5072;transport=tcp';
const AOR_A = 'sip:1001@127.0.0.1:5071;transport=tcp';
const AOR_B = 'sip:1001@127.0.0.1:5072;transport=tcp';

class TestKeypad implements Keypad {
  #h: ((k: string) => void)[] = [];
  async start(): Promise<void> {}
  async close(): Promise<void> {}
  onKey(h: (k: string) => void): void {
    this.#h.push(h);
  }
  type(text: string): void {
    for (const k of text) for (const h of this.#h) h(k);
  }
}

class TestLed implements Led {
  readonly history: boolean[] = [];
  async start(): Promise<void> {}
  set(on: boolean): void {
    this.history.push(on);
  }
  async close(): Promise<void> {}
}

async function phone(t: { teardown(fn: () => Promise<void>): void }, opts: { sip?: boolean; registerTimeoutMs?: number; credentials?: boolean } = {}) {
  const clock = new FakeClock();
  const ua = new FakeSipUserAgent();
  const display = new HeadlessDisplay(20, 4);
  const keypad = new TestKeypad();
  const hook = new SoftHook();
  const lamp = new TestLed();
  const { agent, net, run } = await agentOn(clock, {
    config: {
      pointers: [
        { id: 'cm-a', broker: BA, services: 'http://127.0.0.1:1/a', sip: SIP_A },
        { id: 'cm-b', broker: BB, services: 'http://127.0.0.1:2/b', sip: SIP_B },
      ],
      ...(opts.sip === false ? {} : { sip: { driver: 'baresip', ctrl: '127.0.0.1:4444', user: '1001', registerTimeoutMs: opts.registerTimeoutMs ?? 2000, ...(opts.credentials === true ? { passwordFile: '/unused/sip.secret', authRetryMs: 5000 } : {}) } }),
    },
    deps: { display, keypad, hook, sip: opts.sip === false ? null : ua, messageLed: lamp },
  });
  t.teardown(() => agent.stop());
  const status = (): Record<string, any> => {
    const last = net.published.filter((p) => p.topic.endsWith('/status')).at(-1);
    return last === undefined ? {} : (JSON.parse(last.payload) as Record<string, any>);
  };
  return { agent, net, ua, display, keypad, hook, lamp, clock, run, status };
}

test('registered at the home only: status sip, one sip-registered event', async (t) => {
  const p = await phone(t);
  await p.run(500);
  t.is(p.agent.home, 'cm-a');
  t.deepEqual(p.ua.of('add'), [{ cmd: 'add', aor: AOR_A, regintS: 120 }]);
  t.deepEqual([...p.ua.accounts], [AOR_A]);
  t.like(p.status().sip, { registrar: 'cm-a', call: 'idle' });
  t.like(p.net.agentEvents.filter((e) => e.type === 'sip-registered'), [{ type: 'sip-registered', cm: 'cm-a' }]);
});

test('a home change registers at the new home make-before-break', async (t) => {
  const p = await phone(t);
  await p.run(500);
  p.net.alive.delete('cm-a');
  await p.run(6000);
  t.is(p.agent.home, 'cm-b');
  const order = p.ua.commands.map((c) => `${c.cmd} ${'aor' in c ? c.aor : ''}`);
  t.deepEqual(order, [`add ${AOR_A}`, `add ${AOR_B}`, `remove ${AOR_A}`]);
  t.deepEqual([...p.ua.accounts], [AOR_B]);
  t.like(p.status().sip, { registrar: 'cm-b', call: 'idle' });
  t.like(p.net.agentEvents.filter((e) => e.type === 'sip-registered').at(-1), { cm: 'cm-b' });
});

test('a registrar refusing the phone fails that pointer: the machine moves on (reason sip-failed)', async (t) => {
  const p = await phone(t);
  p.ua.answers.set('127.0.0.1:5071', 'fail');
  await p.run(500);
  t.is(p.agent.home, 'cm-b');
  t.like(p.net.agentEvents.find((e) => e.type === 'rehomed'), { from: 'cm-a', to: 'cm-b', reason: 'sip-failed' });
  t.deepEqual([...p.ua.accounts], [AOR_B]);
  t.like(p.status().sip, { registrar: 'cm-b', call: 'idle' });
});

test('a registrar that never answers fails that pointer after the time-out', async (t) => {
  const p = await phone(t, { registerTimeoutMs: 2000 });
  p.ua.answers.set('127.0.0.1:5071', 'never');
  await p.run(1500);
  t.is(p.agent.home, 'cm-a');
  t.like(p.status().sip, { registrar: null, call: 'idle', reason: 'registering' });
  await p.run(1500);
  t.is(p.agent.home, 'cm-b');
  t.like(p.status().sip, { registrar: 'cm-b', call: 'idle' });
});

test('a user agent that goes down and comes back is registered again; until then the status says so', async (t) => {
  const p = await phone(t);
  await p.run(500);
  p.ua.goDown('killed');
  await p.run(100);
  t.like(p.status().sip, { registrar: null, call: 'idle', reason: 'ua-down' });
  p.ua.comeUp();
  await p.run(100);
  t.deepEqual(p.ua.of('add').map((c) => c.aor), [AOR_A, AOR_A]);
  t.like(p.status().sip, { registrar: 'cm-a', call: 'idle' });
});

test('an outgoing call from the keypad and hook: dialling screen, dial URI at the registrar, connected, hang up', async (t) => {
  const p = await phone(t);
  await p.run(2500);
  const page = [...p.display.lines];
  t.true(page.some((l) => l.includes('ok'))); // the services page
  p.hook.set(true);
  p.keypad.type('1002');
  t.deepEqual(p.display.lines.slice(1, 3), ['Dial:', '1002']);
  p.keypad.type('#');
  t.deepEqual(p.ua.of('dial'), [{ cmd: 'dial', aor: AOR_A, uri: 'sip:1002@127.0.0.1:5071;transport=tcp' }]);
  p.ua.emit({ type: 'established', peer: 'sip:1002@127.0.0.1:5071;transport=tcp' });
  await p.run(50);
  t.like(p.status().sip, { registrar: 'cm-a', call: 'connected' });
  t.true(p.status().busy);
  t.deepEqual(p.display.lines.slice(1, 3), ['Connected', '1002']);
  p.hook.set(false);
  await p.run(50);
  t.is(p.ua.of('hangup').length, 1);
  t.like(p.status().sip, { registrar: 'cm-a', call: 'idle' });
  t.false(p.status().busy);
  t.deepEqual(p.display.lines, page); // the services page is back
});

test('an incoming call shows the caller, blinks the message lamp; lifting answers', async (t) => {
  const p = await phone(t);
  await p.run(500);
  p.ua.emit({ type: 'incoming', peer: 'sip:1002@127.0.0.1:5071' });
  await p.run(1000);
  t.deepEqual(p.display.lines.slice(1, 3), ['Call from', '1002']);
  t.deepEqual(p.status().sip.call, 'ringing');
  t.true(p.lamp.history.length >= 3 && p.lamp.history.includes(true) && p.lamp.history.includes(false));
  p.hook.set(true);
  t.is(p.ua.of('answer').length, 1);
  t.false(p.lamp.history.at(-1));
  p.ua.emit({ type: 'established', peer: 'sip:1002@127.0.0.1:5071' });
  await p.run(50);
  t.is(p.status().sip.call, 'connected');
});

test('during a call the phone is busy: no voluntary move (fallback waits for the call to end)', async (t) => {
  const p = await phone(t);
  p.net.alive.delete('cm-a');
  await p.run(3000);
  t.is(p.agent.home, 'cm-b');
  p.ua.emit({ type: 'incoming', peer: 'sip:1002@127.0.0.1:5072' });
  p.hook.set(true);
  p.ua.emit({ type: 'established', peer: 'sip:1002@127.0.0.1:5072' });
  p.net.alive.add('cm-a');
  await p.run(40_000); // past fallback.holdMs
  t.is(p.agent.home, 'cm-b');
  t.is(p.status().sip.call, 'connected');
  p.hook.set(false);
  await p.run(32_000);
  t.is(p.agent.home, 'cm-a');
  t.like(p.net.agentEvents.filter((e) => e.type === 'rehomed').at(-1), { to: 'cm-a', reason: 'fallback' });
  t.like(p.status().sip, { registrar: 'cm-a', call: 'idle' });
});

test('a failure move during a call keeps the call and re-registers; the old account goes when the call ends', async (t) => {
  const p = await phone(t);
  await p.run(500);
  p.hook.set(true);
  p.keypad.type('1002#');
  p.ua.emit({ type: 'established', peer: 'sip:1002@127.0.0.1:5071;transport=tcp' });
  p.net.alive.delete('cm-a');
  await p.run(6000);
  t.is(p.agent.home, 'cm-b');
  t.like(p.status().sip, { registrar: 'cm-b', call: 'connected' });
  t.is(p.ua.of('hangup').length, 0);
  t.deepEqual(p.ua.of('remove'), []); // cm-a's account may carry the call
  p.hook.set(false);
  await p.run(50);
  t.deepEqual(p.ua.of('remove'), [{ cmd: 'remove', aor: AOR_A }]);
  t.deepEqual([...p.ua.accounts], [AOR_B]);
});

test('a phone without sip: no sip status, the hook alone makes it busy', async (t) => {
  const p = await phone(t, { sip: false });
  await p.run(500);
  t.is(p.status().sip, undefined);
  p.hook.set(true);
  await p.run(50);
  t.true(p.status().busy);
  t.deepEqual(p.ua.commands, []);
});

test('a registrar refusing the phone\'s credentials (401) is no failure of its call manager: the phone stays home, the status says why, it tries again slowly', async (t) => {
  const p = await phone(t, { credentials: true });
  p.ua.answers.set('127.0.0.1:5071', 'unauthorized');
  await p.run(3000);
  t.is(p.agent.home, 'cm-a', 'no rehome');
  t.false(p.net.agentEvents.some((e) => e.type === 'rehomed' && e.reason === 'sip-failed'), 'no tour of the group');
  t.like(p.status().sip, { registrar: null, reason: 'sip-auth-failed' });
  t.like(p.net.agentEvents.find((e) => e.type === 'sip-auth-failed'), { cm: 'cm-a', reason: '401 Unauthorized', retryMs: 5000 });
  t.deepEqual(p.ua.of('add').map((c) => c.aor), [AOR_A]);
  t.false(p.ua.of('add').some((c) => c.aor === AOR_B), 'never registered at B');
  // The slow retry: again after 5 s, then 10 s; the password fixed on the registrar, it registers.
  await p.run(3000);
  t.deepEqual(p.ua.of('add').map((c) => c.aor), [AOR_A, AOR_A]);
  p.ua.answers.set('127.0.0.1:5071', 'ok');
  await p.run(10_500);
  t.deepEqual(p.ua.of('add').map((c) => c.aor), [AOR_A, AOR_A, AOR_A]);
  t.is(p.agent.home, 'cm-a');
  t.like(p.status().sip, { registrar: 'cm-a', reason: null });
});

test('with credentials, a registrar failing otherwise (503) still fails its pointer: the phone moves on', async (t) => {
  const p = await phone(t, { credentials: true });
  p.ua.answers.set('127.0.0.1:5071', 'fail');
  await p.run(1000);
  t.is(p.agent.home, 'cm-b');
  t.like(p.status().sip, { registrar: 'cm-b', reason: null });
});
