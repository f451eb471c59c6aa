import test from 'ava';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { FakeClock } from '../../../src/lib/clock.js';
import { IpphoneError } from '../../../src/lib/errors.js';
import { MAX_STATUS_CHARS, SdNotify, type NotifySend } from '../../../src/lib/sd-notify.js';

const SOCKET = '/run/systemd/notify';

function capturingLog(): { log: pino.Logger; lines: Array<{ level: number; msg: string }> } {
  const lines: Array<{ level: number; msg: string }> = [];
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const l of chunk.toString().split('\n')) if (l !== '') lines.push(JSON.parse(l) as { level: number; msg: string });
      cb();
    },
  });
  return { log: pino({ level: 'debug' }, stream), lines };
}

function recorder(): { calls: Array<{ socket: string; fields: string[] }>; send: NotifySend } {
  const calls: Array<{ socket: string; fields: string[] }> = [];
  return {
    calls,
    send: async (socket, fields) => {
      calls.push({ socket, fields: [...fields] });
    },
  };
}

function make(env: Record<string, string | undefined> = { NOTIFY_SOCKET: SOCKET }, send?: NotifySend, clock = new FakeClock()) {
  const rec = recorder();
  const cap = capturingLog();
  const sd = new SdNotify({ env, log: cap.log, send: send ?? rec.send, pid: 4242, clock });
  return { sd, calls: rec.calls, lines: cap.lines, clock };
}

test('without NOTIFY_SOCKET everything is a no-op', async (t) => {
  const clock = new FakeClock();
  const { sd, calls } = make({ WATCHDOG_USEC: '30000000' }, undefined, clock);
  t.false(sd.enabled);
  await sd.ready('up');
  await sd.status('x');
  await sd.watchdog();
  await sd.stopping('bye');
  t.is(sd.watchdogIntervalMs(), undefined);
  const stop = sd.startWatchdog(() => true);
  t.is(clock.pending, 0);
  stop();
  await sd.flush();
  t.deepEqual(calls, []);
  t.false(make({ NOTIFY_SOCKET: '' }).sd.enabled);
});

test('ready sends READY=1 once, with STATUS only when it changed', async (t) => {
  const { sd, calls } = make();
  t.true(sd.enabled);
  await sd.ready('homed to cm-a');
  await sd.ready('homed to cm-a');
  await sd.ready('homed to cm-b');
  await sd.ready();
  t.deepEqual(calls, [
    { socket: SOCKET, fields: ['READY=1', 'STATUS=homed to cm-a'] },
    { socket: SOCKET, fields: ['STATUS=homed to cm-b'] },
  ]);
});

test('status is sent only on change, on one line, capped in length', async (t) => {
  const { sd, calls } = make();
  await sd.status('a');
  await sd.status('a');
  await sd.status('line1\nREADY=1\r\nx');
  await sd.status('y'.repeat(500));
  await sd.status('y'.repeat(600)); // same after the cut
  t.deepEqual(
    calls.map((c) => c.fields),
    [['STATUS=a'], ['STATUS=line1 READY=1 x'], [`STATUS=${'y'.repeat(MAX_STATUS_CHARS)}`]],
  );
});

test('stopping sends STOPPING=1 and the status', async (t) => {
  const { sd, calls } = make();
  await sd.stopping('SIGTERM');
  await sd.stopping();
  t.deepEqual(
    calls.map((c) => c.fields),
    [['STOPPING=1', 'STATUS=SIGTERM'], ['STOPPING=1']],
  );
});

test('watchdog pings closer than the minimum gap are dropped', async (t) => {
  const { sd, calls, clock } = make();
  await sd.watchdog();
  await sd.watchdog();
  clock.advance(999);
  await sd.watchdog();
  clock.advance(1);
  await sd.watchdog();
  t.deepEqual(
    calls.map((c) => c.fields),
    [['WATCHDOG=1'], ['WATCHDOG=1']],
  );
});

const intervalRows: Array<[string, Record<string, string | undefined>, number | undefined]> = [
  ['a quarter of WATCHDOG_USEC', { WATCHDOG_USEC: '30000000' }, 7500],
  ['a quarter of a 2 s WatchdogSec', { WATCHDOG_USEC: '2000000' }, 500],
  ['WATCHDOG_PID is ours', { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4242' }, 7500],
  ['WATCHDOG_PID is another process', { WATCHDOG_USEC: '30000000', WATCHDOG_PID: '4243' }, undefined],
  ['empty WATCHDOG_PID counts as unset', { WATCHDOG_USEC: '8000000', WATCHDOG_PID: '' }, 2000],
  ['sub-millisecond rounds up to 1 ms', { WATCHDOG_USEC: '1' }, 1],
  ['no WATCHDOG_USEC', {}, undefined],
  ['zero', { WATCHDOG_USEC: '0' }, undefined],
  ['negative', { WATCHDOG_USEC: '-5' }, undefined],
  ['not a number', { WATCHDOG_USEC: '30s' }, undefined],
  ['absurdly long', { WATCHDOG_USEC: '1'.repeat(30) }, undefined],
];
for (const [name, env, want] of intervalRows) {
  test(`watchdogIntervalMs: ${name}`, (t) => {
    t.is(make({ NOTIFY_SOCKET: SOCKET, ...env }).sd.watchdogIntervalMs(), want);
  });
}

test('messages asked for while one is in flight are merged into the next', async (t) => {
  const calls: string[][] = [];
  const gates: Array<() => void> = [];
  const send: NotifySend = (_s, fields) => {
    calls.push([...fields]);
    return new Promise<void>((r) => gates.push(r));
  };
  const { sd, clock } = make(undefined, send);
  const first = sd.ready('starting');
  const a = sd.status('a');
  const w = sd.watchdog();
  clock.advance(5000);
  const w2 = sd.watchdog();
  const b = sd.status('b');
  t.is(calls.length, 1, 'one child at a time');
  t.is(a, b, 'merged requests share one delivery');
  t.is(w, w2);
  gates.shift()!();
  await first;
  t.deepEqual(calls, [['READY=1', 'STATUS=starting'], ['STATUS=b', 'WATCHDOG=1']]);
  gates.shift()!();
  await Promise.all([a, w]);
  await sd.flush();
  t.is(calls.length, 2);
  t.deepEqual(sd.stats, { sent: 2, failed: 0 });
});

test('a failing send never throws and warns once', async (t) => {
  let n = 0;
  const send: NotifySend = (socket, fields) => {
    n++;
    if (n === 2) throw new Error('synchronous boom');
    if (n === 4) return Promise.resolve();
    return Promise.reject(new IpphoneError('systemd-notify failed: exit 1', 'NOTIFY_FAILED', { socket, fields }));
  };
  const { sd, lines, clock } = make(undefined, send);
  await t.notThrowsAsync(sd.ready('up'));
  await t.notThrowsAsync(sd.status('x'));
  await t.notThrowsAsync(sd.watchdog());
  clock.advance(1000);
  await t.notThrowsAsync(sd.watchdog());
  await t.notThrowsAsync(sd.stopping('bye'));
  const failures = lines.filter((l) => l.msg.startsWith('sd_notify failed'));
  t.is(failures.filter((l) => l.level === 40).length, 1, 'one warn');
  t.is(failures.filter((l) => l.level === 20).length, 3, 'the rest at debug');
  t.deepEqual(sd.stats, { sent: 1, failed: 4 });
});

test('startWatchdog pings every quarter period only while healthy', async (t) => {
  const clock = new FakeClock();
  const { sd, calls, lines } = make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '30000000' }, undefined, clock);
  let healthy = true;
  const stop = sd.startWatchdog(() => healthy);
  await sd.flush();
  t.is(calls.length, 1, 'first ping at once');
  clock.advance(7500);
  await sd.flush();
  t.is(calls.length, 2);
  healthy = false;
  clock.advance(7500);
  clock.advance(7500);
  await sd.flush();
  t.is(calls.length, 2, 'no pings while unhealthy');
  t.is(lines.filter((l) => l.msg.startsWith('unhealthy')).length, 1, 'warned once');
  healthy = true;
  clock.advance(7500);
  await sd.flush();
  t.is(calls.length, 3);
  t.is(lines.filter((l) => l.msg.startsWith('healthy again')).length, 1);
  stop();
  t.is(clock.pending, 0);
  clock.advance(60_000);
  await sd.flush();
  t.is(calls.length, 3, 'stopped');
  t.true(calls.every((c) => c.fields.join() === 'WATCHDOG=1'));
});

test('a throwing health check counts as unhealthy', async (t) => {
  const clock = new FakeClock();
  const { sd, calls } = make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }, undefined, clock);
  const stop = sd.startWatchdog(() => {
    throw new Error('broken');
  });
  clock.advance(5000);
  await sd.flush();
  t.deepEqual(calls, []);
  stop();
});

test('startWatchdog is a no-op when the watchdog is not ours', (t) => {
  const clock = new FakeClock();
  const { sd } = make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '30000000', WATCHDOG_PID: '1' }, undefined, clock);
  sd.startWatchdog(() => true)();
  t.is(clock.pending, 0);
});

for (const [name, step] of [
  ['back 1 h', -3_600_000],
  ['forward 1 h', 3_600_000],
] as const) {
  test(`wall ${name}: the watchdog keeps sending every quarter period (its minimum gap is monotonic)`, async (t) => {
    const clock = new FakeClock();
    const { sd, calls } = make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '30000000' }, undefined, clock);
    const stop = sd.startWatchdog(() => true);
    t.teardown(stop);
    clock.advance(7500);
    await sd.flush();
    t.is(calls.length, 2);
    clock.stepWall(step);
    for (let i = 0; i < 4; i++) {
      clock.advance(7500);
      await sd.flush();
    }
    t.is(calls.length, 6, 'one WATCHDOG=1 per 7.5 s after the step as before it');
  });
}

/**
 * A clock whose timers fire a fraction of a millisecond "early" by the
 * monotonic reading, as Node's do: libuv runs a timer by its cached loop time
 * while performance.now() reads the clock afresh, so a callback due 500 ms
 * after a reading may read 499.7 ms.
 */
class EarlyTimerClock extends FakeClock {
  constructor(readonly earlyMs: number) {
    super();
  }

  override setTimeout(fn: () => void, ms: number) {
    return super.setTimeout(fn, Math.max(0, ms - this.earlyMs));
  }
}

/** Monotonic times of each WATCHDOG=1 the sender saw. */
function pingTimes(clock: FakeClock): { times: number[]; send: NotifySend } {
  const times: number[] = [];
  return {
    times,
    send: async (_s, fields) => {
      if (fields.includes('WATCHDOG=1')) times.push(clock.elapsed());
    },
  };
}

for (const usec of ['2000000', '1000000', '30000000']) {
  test(`timers firing early never drop a tick: WATCHDOG_USEC=${usec} is pinged at least every half period`, async (t) => {
    const clock = new EarlyTimerClock(0.3);
    const { times, send } = pingTimes(clock);
    const { sd } = make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: usec }, send, clock);
    const period = Number(usec) / 1000;
    const stop = sd.startWatchdog(() => true);
    for (let i = 0; i < 40; i++) {
      clock.advance(period / 10);
      await sd.flush();
    }
    stop();
    const gaps = times.slice(1).map((at, i) => at - times[i]!);
    t.true(Math.max(...gaps) <= period / 2, `gaps ${JSON.stringify(gaps)} against a period of ${period} ms`);
    t.true(gaps.length >= 14, `pings: ${times.length}`);
  });
}

test('a direct ping between ticks never makes the next tick be dropped (the gap stays under half the period)', async (t) => {
  const clock = new EarlyTimerClock(0.3);
  const { times, send } = pingTimes(clock);
  const { sd } = make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }, send, clock);
  const stop = sd.startWatchdog(() => true);
  for (let i = 0; i < 20; i++) {
    clock.advance(370);
    void sd.watchdog(); // e.g. a caller that pings on its own at odd moments
    await sd.flush();
  }
  stop();
  const gaps = times.slice(1).map((at, i) => at - times[i]!);
  t.true(Math.max(...gaps) <= 1000, `gaps ${JSON.stringify(gaps)}`);
  t.true(Math.min(...gaps) >= 250, 'pings closer than an eighth of the period are still dropped');
});

test('the drop gap is minWatchdogGapMs, capped at an eighth of the period while the watchdog is on', (t) => {
  t.is(make({ NOTIFY_SOCKET: SOCKET }).sd.watchdogDropGapMs(), 1000);
  t.is(make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '2000000' }).sd.watchdogDropGapMs(), 250);
  t.is(make({ NOTIFY_SOCKET: SOCKET, WATCHDOG_USEC: '30000000' }).sd.watchdogDropGapMs(), 1000);
});
