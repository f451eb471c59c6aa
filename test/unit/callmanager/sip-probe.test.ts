import { createServer, type Server, type Socket } from 'node:net';
import test from 'ava';
import { SipProbe } from '../../../src/callmanager/sip-probe.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';

/** A loopback TCP server speaking just enough SIP: answers each OPTIONS as `mode` says. */
async function fakeRegistrar() {
  const requests: string[] = [];
  const sockets = new Set<Socket>();
  const o = { mode: 'answer' as 'answer' | 'silent' | '404' | 'wrong-call-id' };
  const server: Server = createServer((s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
    let buf = '';
    s.on('data', (d) => {
      buf += d.toString('latin1');
      let end;
      while ((end = buf.indexOf('\r\n\r\n')) >= 0) {
        const msg = buf.slice(0, end);
        buf = buf.slice(end + 4);
        requests.push(msg);
        const h = (name: string) => /^([^:]+): (.*)$/m.exec(msg.split('\r\n').find((l) => l.startsWith(`${name}:`)) ?? '')?.[2] ?? '';
        if (o.mode === 'silent') continue;
        const status = o.mode === '404' ? '404 Not Here' : '200 OK';
        const callId = o.mode === 'wrong-call-id' ? 'other' : h('Call-ID');
        s.write(`SIP/2.0 ${status}\r\nVia: ${h('Via')}\r\nFrom: ${h('From')}\r\nTo: ${h('To')};tag=srv\r\nCall-ID: ${callId}\r\nCSeq: ${h('CSeq')}\r\nContent-Length: 0\r\n\r\n`);
      }
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as { port: number }).port;
  return {
    port,
    requests,
    o,
    close: () => {
      for (const s of sockets) s.destroy();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}

/** Wait for real loopback I/O (not for time the test simulates): bounded. */
async function until(cond: () => boolean): Promise<void> {
  for (let i = 0; i < 500 && !cond(); i++) await new Promise((r) => setTimeout(r, 4));
  if (!cond()) throw new Error('condition not met');
}

function probeOf(port: number, clock: FakeClock, changes: boolean[]) {
  let n = 0;
  return new SipProbe({
    target: { host: '127.0.0.1', port, transport: 'tcp' },
    probeMs: 100,
    missLimit: 3,
    user: 'cm-a',
    clock,
    log: silentLogger(),
    onChange: (online) => changes.push(online),
    randomBytes: (len) => Buffer.alloc(len, ++n),
  });
}

test('answered probes keep it online; missLimit silent probes in a row → offline; an answer → online', async (t) => {
  const srv = await fakeRegistrar();
  const clock = new FakeClock();
  const changes: boolean[] = [];
  const p = probeOf(srv.port, clock, changes);
  t.teardown(() => {
    p.stop();
    return srv.close();
  });
  p.start();
  await until(() => p.answered === 1);
  const first = srv.requests[0]!;
  t.regex(first, /^OPTIONS sip:127\.0\.0\.1:\d+;transport=tcp SIP\/2\.0\r\n/);
  t.regex(first, /\r\nVia: SIP\/2\.0\/TCP 127\.0\.0\.1:\d+;branch=z9hG4bK[0-9a-f]+;rport/);
  t.regex(first, /\r\nFrom: <sip:cm-a@127\.0\.0\.1>;tag=[0-9a-f]+/);
  t.regex(first, /\r\nCSeq: 1 OPTIONS/);
  t.regex(first, /\r\nContent-Length: 0$/);

  srv.o.mode = 'silent';
  for (let i = 1; i <= 3; i++) {
    clock.advance(100);
    await until(() => srv.requests.length === i + 1);
  }
  t.true(p.online, 'two misses so far (probe 4 is still within its time)');
  clock.advance(100);
  t.false(p.online);
  t.deepEqual(changes, [false]);
  t.is(p.missed, 3);

  await until(() => srv.requests.length === 5);
  srv.o.mode = 'answer';
  t.false(p.online, 'probe 5 went out while silent');
  clock.advance(100); // probe 5 missed; probe 6 answered
  await until(() => p.online);
  t.deepEqual(changes, [false, true]);
  t.is(p.lastStatus, 200);
});

test('any SIP response answers (404 too); an answer that is not to the outstanding probe does not', async (t) => {
  const srv = await fakeRegistrar();
  const clock = new FakeClock();
  const changes: boolean[] = [];
  const p = probeOf(srv.port, clock, changes);
  t.teardown(() => {
    p.stop();
    return srv.close();
  });
  srv.o.mode = '404';
  p.start();
  await until(() => p.answered === 1);
  t.is(p.lastStatus, 404);
  srv.o.mode = 'wrong-call-id';
  for (let i = 1; i <= 3; i++) {
    clock.advance(100);
    await until(() => srv.requests.length === i + 1);
  }
  // The (mismatched) answers have arrived before the deadline passes.
  await until(() => p.stray === 3);
  clock.advance(100);
  t.is(p.answered, 1);
  t.false(p.online);
  t.deepEqual(changes, [false]);
});

test('a refused connection is a miss; the probe reconnects when the server is back', async (t) => {
  const srv = await fakeRegistrar();
  const port = srv.port;
  await srv.close();
  const clock = new FakeClock();
  const changes: boolean[] = [];
  const p = probeOf(port, clock, changes);
  t.teardown(() => p.stop());
  p.start();
  for (let i = 0; i < 3; i++) clock.advance(100);
  t.false(p.online);
  t.is(p.answered, 0);
  t.deepEqual(changes, [false]);
});

test('a connection reset with a probe outstanding is a miss at once: a killed server is offline within missLimit × probeMs', async (t) => {
  const srv = await fakeRegistrar();
  const clock = new FakeClock();
  const changes: boolean[] = [];
  const p = probeOf(srv.port, clock, changes);
  t.teardown(() => p.stop());
  p.start();
  await until(() => p.answered === 1);
  srv.o.mode = 'silent';
  clock.advance(100);
  await until(() => srv.requests.length === 2);
  t.is(p.missed, 0, 'probe 2 is outstanding, within its time');
  await srv.close(); // the server dies: its connections close under the outstanding probe
  await until(() => p.missed === 1);
  t.true(p.online);
  clock.advance(100); // probe 3: connection refused
  await until(() => p.missed === 2);
  clock.advance(100); // probe 4: refused → the third miss in a row
  await until(() => p.missed === 3);
  t.false(p.online, 'offline two periods after the death, not three');
  t.deepEqual(changes, [false]);
});
