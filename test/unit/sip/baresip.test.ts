/**
 * BaresipUserAgent's timing on a FakeClock, against an in-process ctrl_tcp
 * stand-in on loopback (the real baresip is in test/integration/baresip.test.ts):
 * command time-out, reconnect backoff, framing errors, event mapping.
 */
import test from 'ava';
import net from 'node:net';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { BaresipUserAgent } from '../../../src/sip/baresip.js';
import { NetstringDecoder, encodeNetstring } from '../../../src/sip/netstring.js';
import type { SipEvent } from '../../../src/sip/user-agent.js';

/** A ctrl_tcp stand-in: records commands, lets the test answer and drop. */
async function fakeCtrl(): Promise<{ port: number; conns: net.Socket[]; commands: Record<string, string>[]; nextConn(): Promise<net.Socket>; nextCommand(): Promise<Record<string, string>>; close(): void }> {
  const conns: net.Socket[] = [];
  const commands: Record<string, string>[] = [];
  const waiters: (() => void)[] = [];
  const wake = (): void => void waiters.splice(0).forEach((w) => w());
  const server = net.createServer((s) => {
    conns.push(s);
    const d = new NetstringDecoder();
    s.on('data', (c) => d.push(c, (p) => (commands.push(JSON.parse(p.toString()) as Record<string, string>), wake())));
    s.on('error', () => undefined);
    wake();
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const until = async <T>(get: () => T | undefined): Promise<T> => {
    for (let v = get(); ; v = get()) {
      if (v !== undefined) return v;
      await new Promise<void>((r) => waiters.push(r));
    }
  };
  let seenConns = 0;
  let seenCmds = 0;
  return {
    port: (server.address() as net.AddressInfo).port,
    conns,
    commands,
    nextConn: () => until(() => (conns.length > seenConns ? conns[seenConns++] : undefined)),
    nextCommand: () => until(() => (commands.length > seenCmds ? commands[seenCmds++] : undefined)),
    close: () => {
      for (const c of conns) c.destroy();
      server.close();
    },
  };
}

function eventsOf(ua: BaresipUserAgent): { events: SipEvent[]; next(type: SipEvent['type']): Promise<SipEvent> } {
  const events: SipEvent[] = [];
  const waiters: (() => void)[] = [];
  ua.start((e) => {
    events.push(e);
    waiters.splice(0).forEach((w) => w());
  });
  let seen = 0;
  return {
    events,
    async next(type) {
      for (;;) {
        const i = events.findIndex((e, k) => k >= seen && e.type === type);
        if (i >= 0) {
          seen = i + 1;
          return events[i] as SipEvent;
        }
        await new Promise<void>((r) => waiters.push(r));
      }
    },
  };
}

test('a command unanswered for commandTimeoutMs rejects with TIMEOUT (fake clock); a late response is ignored', async (t) => {
  const srv = await fakeCtrl();
  const clock = new FakeClock();
  const ua = new BaresipUserAgent({ port: srv.port, log: silentLogger(), clock, commandTimeoutMs: 1000 });
  t.teardown(() => (void ua.close(), srv.close()));
  const ev = eventsOf(ua);
  await ev.next('up');
  const p = ua.answer();
  const cmd = await srv.nextCommand();
  t.like(cmd, { command: 'accept' });
  t.false('params' in cmd);
  clock.advance(999);
  clock.advance(1);
  const err = await p.catch((e: unknown) => e);
  t.true(isIpphoneError(err, 'TIMEOUT'), String(err));
  srv.conns[0]?.write(encodeNetstring(JSON.stringify({ response: true, ok: true, data: '', token: cmd.token })));
  // The connection stays usable: the next command is answered.
  const q = ua.hangup();
  const c2 = await srv.nextCommand();
  srv.conns[0]?.write(encodeNetstring(JSON.stringify({ response: true, ok: true, data: '', token: c2.token })));
  await q;
  t.true(ua.connected());
});

test('connection dropped → pending command TRANSPORT, down; reconnect after random × base × 2^n (fake clock) → up', async (t) => {
  const srv = await fakeCtrl();
  const clock = new FakeClock();
  const ua = new BaresipUserAgent({ port: srv.port, log: silentLogger(), clock, random: () => 0.5, reconnect: { baseMs: 100, maxMs: 1000 } });
  t.teardown(() => (void ua.close(), srv.close()));
  const ev = eventsOf(ua);
  await ev.next('up');
  const conn = await srv.nextConn();
  const p = ua.removeAccount('sip:1@h');
  await srv.nextCommand();
  conn.destroy();
  t.true(isIpphoneError(await p.catch((e: unknown) => e), 'TRANSPORT'));
  t.like(await ev.next('down'), { type: 'down' });
  t.false(ua.connected());
  t.is(clock.pending, 1);
  clock.advance(49);
  t.is(clock.pending, 1, 'reconnects no earlier than 0.5 × 100 ms');
  clock.advance(1);
  t.is(clock.pending, 0);
  await ev.next('up');
  await srv.nextConn();
  t.true(ua.connected());
});

test('bad framing from baresip → the connection is dropped (down) and made again; events before it are delivered', async (t) => {
  const srv = await fakeCtrl();
  const clock = new FakeClock();
  const ua = new BaresipUserAgent({ port: srv.port, log: silentLogger(), clock, random: () => 0 });
  t.teardown(() => (void ua.close(), srv.close()));
  const ev = eventsOf(ua);
  await ev.next('up');
  const conn = await srv.nextConn();
  const okEvent = encodeNetstring(JSON.stringify({ event: true, type: 'CALL_INCOMING', accountaor: 'sip:1@h', peeruri: 'sip:2@h' }));
  conn.write(Buffer.concat([okEvent, Buffer.from('xx:garbage')]));
  t.deepEqual(await ev.next('incoming'), { type: 'incoming', peer: 'sip:2@h' });
  t.like(await ev.next('down'), { type: 'down' });
  clock.advance(0);
  await ev.next('up');
});

test('close() is idempotent, stops reconnecting, and commands then reject with TRANSPORT', async (t) => {
  const srv = await fakeCtrl();
  const clock = new FakeClock();
  const ua = new BaresipUserAgent({ port: srv.port, log: silentLogger(), clock });
  t.teardown(() => srv.close());
  const ev = eventsOf(ua);
  await ev.next('up');
  await ua.close();
  await ua.close();
  t.is(clock.pending, 0);
  t.false(ua.connected());
  t.true(isIpphoneError(await ua.dial('sip:1@h', 'sip:2@h').catch((e: unknown) => e), 'TRANSPORT'));
  t.false(ev.events.some((e) => e.type === 'down'));
});
