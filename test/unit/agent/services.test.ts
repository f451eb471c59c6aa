import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { IpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';
import { ServicesController } from '../../../src/agent/services.js';
import type { Pointer } from '../../../src/protocol/types.js';

const list: Pointer[] = ['A', 'B', 'C'].map((id) => ({ id, broker: 'mqtt://127.0.0.1', services: `http://127.0.0.1/${id}` }));

/** A fetcher whose answers the test controls: per URL, a page or a failure. */
function setup(answers: Record<string, string | Error>) {
  const clock = new FakeClock(0);
  const calls: string[] = [];
  const changes: { from: string | null; to: string | null; reason: string }[] = [];
  const pages: string[] = [];
  const fetch = async (url: string): Promise<string> => {
    calls.push(url);
    const a = answers[url];
    if (a === undefined || a instanceof Error) throw a ?? new IpphoneError('timed out', 'TIMEOUT');
    return a;
  };
  const svc = new ServicesController({
    phoneId: 'p', fetch, clock, log: silentLogger(), timeoutMs: 100, refreshMs: 60_000, retryMs: 10_000,
    onChange: (c) => changes.push(c),
    onPage: (p) => pages.push(p),
  });
  return { clock, calls, changes, pages, svc, answers };
}

const flush = () => new Promise((r) => setImmediate(r));

test('home answers → its page is shown', async (t) => {
  const s = setup({ 'http://127.0.0.1/A': '<A/>' });
  s.svc.update(list, 'A');
  await flush();
  t.is(s.svc.shown, 'A');
  t.deepEqual(s.pages, ['<A/>']);
  t.deepEqual(s.changes.map((c) => c.reason), ['home']);
});

test('home times out → next pointer, services-timeout; later the home is retried and taken back', async (t) => {
  const s = setup({ 'http://127.0.0.1/A': new IpphoneError('timed out', 'TIMEOUT'), 'http://127.0.0.1/B': '<B/>' });
  s.svc.update(list, 'A');
  await flush();
  await flush();
  t.is(s.svc.shown, 'B');
  t.like(s.changes[0], { from: null, to: 'B', reason: 'services-timeout' });
  s.answers['http://127.0.0.1/A'] = '<A/>';
  s.clock.advance(9_999);
  await flush();
  t.is(s.svc.shown, 'B', 'not retried before retryMs');
  s.clock.advance(1);
  await flush();
  await flush();
  t.is(s.svc.shown, 'A');
});

test('nobody answers → the last good page stays, retried later', async (t) => {
  const s = setup({ 'http://127.0.0.1/A': '<A/>' });
  s.svc.update(list, 'A');
  await flush();
  s.answers['http://127.0.0.1/A'] = new Error('down');
  s.clock.advance(60_000);
  for (let i = 0; i < 5; i++) await flush();
  t.is(s.svc.shown, 'A');
  t.is(s.svc.page, '<A/>');
  const n = s.calls.length;
  s.clock.advance(10_000);
  for (let i = 0; i < 5; i++) await flush();
  t.true(s.calls.length > n);
});

test('a home change fetches the new home once; close stops timers', async (t) => {
  const s = setup({ 'http://127.0.0.1/A': '<A/>', 'http://127.0.0.1/C': '<C/>' });
  s.svc.update(list, 'A');
  await flush();
  s.svc.update(list, 'C');
  await flush();
  t.is(s.svc.shown, 'C');
  s.svc.close();
  t.is(s.clock.pending, 0);
});

test('with jitter, the fetch after a home change waits a random part of the window', async (t) => {
  const clock = new FakeClock(0);
  const calls: number[] = [];
  const svc = new ServicesController({
    phoneId: 'p', clock, log: silentLogger(), timeoutMs: 100, refreshMs: 60_000, retryMs: 10_000, jitterMs: 1000, random: () => 0.5,
    fetch: async () => {
      calls.push(clock.now());
      return '<A/>';
    },
    onChange: () => {},
    onPage: () => {},
  });
  svc.update(list, 'A');
  await flush();
  t.deepEqual(calls, []);
  clock.advance(499);
  await flush();
  t.deepEqual(calls, []);
  clock.advance(1);
  await flush();
  t.deepEqual(calls, [500]);
  svc.close();
});

for (const [name, step] of [
  ['back 1 h', -3_600_000],
  ['forward 1 h', 3_600_000],
] as const) {
  test(`wall ${name} during a services failover: detectMs and rehomeMs are the real durations`, async (t) => {
    const clock = new FakeClock();
    const changes: { reason: string; detectMs: number; rehomeMs: number }[] = [];
    const settle: Array<(fail: boolean) => void> = [];
    const fetch = (url: string): Promise<string> =>
      new Promise((resolve, reject) => settle.push((fail) => (fail ? reject(new IpphoneError(`${url} timed out`, 'TIMEOUT')) : resolve('<B/>'))));
    const svc = new ServicesController({
      phoneId: 'p', fetch, clock, log: silentLogger(), timeoutMs: 100, refreshMs: 60_000, retryMs: 10_000,
      onChange: (c) => changes.push(c),
      onPage: () => {},
    });
    t.teardown(() => svc.close());
    svc.update(list, 'A');
    await flush();
    clock.advance(60);
    clock.stepWall(step);
    clock.advance(40);
    settle.shift()!(true); // A timed out after 100 ms
    await flush();
    clock.advance(30);
    settle.shift()!(false); // B answered in 30 ms
    await flush();
    t.deepEqual(changes, [{ from: null, to: 'B', reason: 'services-timeout', detectMs: 100, rehomeMs: 30 }]);
  });
}

test('a top page the phone cannot show (validate throws) counts as that server failing: the next pointer serves, with its URL', async (t) => {
  const clock = new FakeClock(0);
  const got: Array<[string, string, string]> = [];
  const changes: string[] = [];
  const svc = new ServicesController({
    phoneId: 'p', clock, log: silentLogger(), timeoutMs: 100, refreshMs: 60_000, retryMs: 10_000,
    fetch: async (url) => (url.endsWith('/A') ? '<html>502 Bad Gateway</html>' : '<B/>'),
    validate: (page) => {
      if (page.startsWith('<html')) throw new IpphoneError('not a Cisco object', 'PAYLOAD_INVALID');
    },
    onChange: (c) => changes.push(`${c.to}:${c.reason}`),
    onPage: (page, from, url) => got.push([page, from, url]),
  });
  svc.update(list, 'A');
  await flush();
  await flush();
  t.deepEqual(got, [['<B/>', 'B', 'http://127.0.0.1/B']]);
  t.deepEqual(changes, ['B:services-timeout']);
  t.is(svc.failures, 1);
  svc.close();
});
