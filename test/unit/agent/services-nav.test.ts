import test from 'ava';
import { PhoneUi } from '../../../src/agent/phone-ui.js';
import { ServicesNavigator, candidateOrder, failsOver } from '../../../src/agent/services-nav.js';
import { HeadlessDisplay } from '../../../src/hw/headless.js';
import { KeyboardKeypad } from '../../../src/hw/keyboard.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { IpphoneError, isIpphoneError } from '../../../src/lib/errors.js';
import { silentLogger } from '../../../src/lib/log.js';

const A = 'http://127.0.0.1:8081/services';
const B = 'http://127.0.0.1:8082/services';
const C = 'http://127.0.0.1:8083/services';
const LIST = [
  { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: A },
  { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: B },
  { id: 'cm-c', broker: 'mqtt://127.0.0.1:1883', services: C },
];

const menu = (title: string, items: Array<[string, string]>) =>
  `<CiscoIPPhoneMenu><Title>${title}</Title>${items.map(([n, u]) => `<MenuItem><Name>${n}</Name><URL>${u.replace(/&/g, '&amp;')}</URL></MenuItem>`).join('')}</CiscoIPPhoneMenu>`;
const text = (title: string, body: string) => `<CiscoIPPhoneText><Title>${title}</Title><Text>${body}</Text></CiscoIPPhoneText>`;

/** The same three-deep fixture on every server: top (absolute links to the home's base) → sub (relative link) → text. */
function fixture(base: string, name: string): Record<string, string> {
  return {
    [base]: menu(`Top ${name}`, [['Sub', `${A}/sub?phone=p1`], ['Ext', 'http://example.invalid/x']]),
    [`${base}/sub?phone=p1`]: menu(`Sub ${name}`, [['Leaf', 'leaf?phone=p1&x=1'], ['Abs', `${A}/leaf?phone=p1&x=1`]]),
    [`${base}/leaf?phone=p1&x=1`]: text(`Leaf ${name}`, `from ${name}`),
  };
}

type Fault = 'timeout' | 'refused' | 500 | 503 | 404 | 'bad-xml' | 'html';

/** A fake fetch over fixtures, with per-server faults; records every URL asked for. */
function servers() {
  const pages: Record<string, string> = { ...fixture(A, 'cm-a'), ...fixture(B, 'cm-b'), ...fixture(C, 'cm-c'), 'http://example.invalid/x': text('Ext', 'outside') };
  const faults = new Map<string, Fault>();
  const asked: string[] = [];
  const fetch = async (url: string): Promise<string> => {
    asked.push(url);
    const server = [A, B, C].find((b) => url.startsWith(b));
    const f = server === undefined ? undefined : faults.get(server);
    if (f === 'timeout') throw new IpphoneError('services request got no complete answer within 1000 ms', 'TIMEOUT', { url });
    if (f === 'refused') throw new IpphoneError('services request failed: connect ECONNREFUSED', 'TRANSPORT', { url });
    if (typeof f === 'number') throw new IpphoneError(`services request answered HTTP ${f}`, 'TRANSPORT', { url, status: f });
    if (f === 'bad-xml') return '<CiscoIPPhoneText><Title>';
    if (f === 'html') return '<html><body>502 Bad Gateway</body></html>';
    const page = pages[url];
    if (page === undefined) throw new IpphoneError('services request answered HTTP 404', 'TRANSPORT', { url, status: 404 });
    return page;
  };
  return { faults, asked, fetch };
}

const flush = async () => {
  for (let i = 0; i < 10; i++) await new Promise((r) => setImmediate(r));
};

function phone(home: string | null = 'cm-a') {
  const s = servers();
  const clock = new FakeClock(0);
  const display = new HeadlessDisplay(20, 4);
  const keypad = new KeyboardKeypad({ input: { isTTY: false } as NodeJS.ReadStream });
  const state = { list: LIST, home };
  const ui = new PhoneUi({ display, keypad, clock, log: silentLogger(), phoneId: 'p1', timeoutMs: 1000, fetch: s.fetch, pointers: () => state });
  ui.start();
  ui.status(home, 'homed');
  const press = async (k: string) => {
    s.asked.length = 0;
    keypad.type(k);
    await flush();
  };
  const screen = () => display.lines.join('\n');
  /** The screen once any notice has gone (a notice sits over the title row). */
  const settled = () => {
    clock.advance(4001);
    return screen();
  };
  return { ...s, clock, display, ui, state, press, screen, settled };
}

test('failsOver: time-outs, network errors, 5xx/408/429 and unusable pages fail over; other 4xx and bad URLs do not', (t) => {
  const tr = (status?: number) => new IpphoneError('x', 'TRANSPORT', status === undefined ? {} : { status });
  const rows: Array<[unknown, boolean]> = [
    [new IpphoneError('x', 'TIMEOUT'), true],
    [tr(), true],
    [tr(500), true],
    [tr(502), true],
    [tr(503), true],
    [tr(408), true],
    [tr(429), true],
    [tr(404), false],
    [tr(403), false],
    [tr(400), false],
    [new IpphoneError('x', 'PAYLOAD_INVALID'), true],
    [new IpphoneError('x', 'PAYLOAD_TOO_LARGE'), true],
    [new IpphoneError('x', 'CONFIG_INVALID'), false],
    [new Error('socket hang up'), true],
  ];
  for (const [err, want] of rows) t.is(failsOver(err), want, String((err as Error).message) + JSON.stringify((err as IpphoneError).context));
});

test('candidateOrder: the owner first, then the home and the pointers after it, wrapping', (t) => {
  const ids = (l: typeof LIST) => l.map((p) => p.id);
  t.deepEqual(ids(candidateOrder(LIST, 'cm-a', 'cm-a')), ['cm-a', 'cm-b', 'cm-c']);
  t.deepEqual(ids(candidateOrder(LIST, 'cm-b', 'cm-b')), ['cm-b', 'cm-c', 'cm-a']);
  t.deepEqual(ids(candidateOrder(LIST, 'cm-a', 'cm-b')), ['cm-b', 'cm-a', 'cm-c']);
  t.deepEqual(ids(candidateOrder(LIST, 'cm-c', 'cm-a')), ['cm-a', 'cm-c', 'cm-b']);
  t.deepEqual(ids(candidateOrder(LIST, null, 'cm-b')), ['cm-b', 'cm-a', 'cm-c']);
});

test('the navigator maps a link to the same path and query under each next base; an external link is fetched once', async (t) => {
  const s = servers();
  const nav = new ServicesNavigator({ phoneId: 'p1', fetch: s.fetch, clock: new FakeClock(0), log: silentLogger(), timeoutMs: 1000, pointers: () => ({ list: LIST, home: 'cm-a' }) });
  t.deepEqual(
    nav.plan(`${A}/leaf?phone=p1&x=1`)!.map((c) => c.url),
    [`${A}/leaf?phone=p1&x=1`, `${B}/leaf?phone=p1&x=1`, `${C}/leaf?phone=p1&x=1`],
  );
  // Beside /services (its directory is /): on cm-a's server, the same place beside the others'.
  t.deepEqual(
    nav.plan('http://127.0.0.1:8081/servicesX/leaf')!.map((c) => c.url),
    ['http://127.0.0.1:8081/servicesX/leaf', 'http://127.0.0.1:8082/servicesX/leaf', 'http://127.0.0.1:8083/servicesX/leaf'],
  );
  t.is(nav.plan('http://127.0.0.1:9999/services/leaf'), null);
  s.faults.set(A, 'refused');
  s.faults.set(B, 503);
  const got = await nav.fetch(`${A}/leaf?phone=p1&x=1`);
  t.deepEqual({ source: got.source, url: got.url, failed: got.failed }, { source: 'cm-c', url: `${C}/leaf?phone=p1&x=1`, failed: ['cm-a', 'cm-b'] });
  t.deepEqual(s.asked, [`${A}/leaf?phone=p1&x=1`, `${B}/leaf?phone=p1&x=1`, `${C}/leaf?phone=p1&x=1`]);
  s.asked.length = 0;
  s.faults.set(C, 'timeout');
  // External: no failover even though every group server is down.
  t.is((await nav.fetch('http://example.invalid/x')).source, null);
  t.deepEqual(s.asked, ['http://example.invalid/x']);
  // Everyone down: the last error comes back; the servers that just failed are tried last (C, then A, B).
  s.asked.length = 0;
  const err = await t.throwsAsync(nav.fetch(`${A}/sub?phone=p1`));
  t.deepEqual(s.asked, [`${C}/sub?phone=p1`, `${A}/sub?phone=p1`, `${B}/sub?phone=p1`]);
  t.true(isIpphoneError(err, 'TRANSPORT'));
  t.is((err as IpphoneError).context?.status, 503);
});

test('menu → submenu → text: each depth fails over to the backup, says so, and the backup page resolves its relative links against the backup', async (t) => {
  const p = phone();
  p.ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A);
  t.regex(p.settled(), /Top cm-a/);
  t.notRegex(p.screen(), /From/);

  // Depth 1: the home stops answering before the submenu.
  p.faults.set(A, 'timeout');
  await p.press('1');
  t.deepEqual(p.asked, [`${A}/sub?phone=p1`, `${B}/sub?phone=p1`]);
  t.regex(p.screen(), /From cm-b/);
  t.regex(p.settled(), /Sub cm-b/);
  t.is(p.ui.lines()[0], 'CM cm-a');

  // Depth 2: the relative link on cm-b's page goes to cm-b, not back to the dead home.
  await p.press('1');
  t.deepEqual(p.asked, [`${B}/leaf?phone=p1&x=1`]);
  t.regex(p.screen(), /From cm-b/);
  t.regex(p.settled(), /Leaf cm-b/);

  // Back twice: the top page (the home's) again.
  await p.press('*');
  t.regex(p.settled(), /Sub cm-b/);
  await p.press('*');
  t.regex(p.settled(), /Top cm-a/);
});

test('a home that dies between depths: top and submenu from the home, the text from the backup (bad XML, 5xx, refused all fail over)', async (t) => {
  for (const fault of ['bad-xml', 'html', 500, 'refused', 'timeout'] as const) {
    const p = phone();
    p.ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A);
    await p.press('1');
    t.deepEqual(p.asked, [`${A}/sub?phone=p1`], String(fault));
    t.regex(p.settled(), /Sub cm-a/);
    t.notRegex(p.screen(), /From/);
    p.faults.set(A, fault);
    await p.press('1'); // relative link, resolved against the home's page: under the home's base
    t.deepEqual(p.asked, [`${A}/leaf?phone=p1&x=1`, `${B}/leaf?phone=p1&x=1`], String(fault));
    t.regex(p.screen(), /From cm-b/, String(fault));
    t.regex(p.settled(), /Leaf cm-b/, String(fault));
  }
});

test('CUCM layout: a sibling of the services page fails over to the sibling beside the backup services page', async (t) => {
  const home = 'http://127.0.0.1:8081/ccmcip/getservicesmenu.jsp';
  const backup = 'http://127.0.0.1:8082/ccmcip/getservicesmenu.jsp';
  const list = [
    { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: home },
    { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: backup },
  ];
  const asked: string[] = [];
  const fetch = async (url: string): Promise<string> => {
    asked.push(url);
    if (url.startsWith('http://127.0.0.1:8081/')) throw new IpphoneError('services request got no complete answer within 1000 ms', 'TIMEOUT', { url });
    return text('Directory', `from ${url}`);
  };
  const nav = new ServicesNavigator({ phoneId: 'p1', fetch, clock: new FakeClock(0), log: silentLogger(), timeoutMs: 1000, pointers: () => ({ list, home: 'cm-a' }) });
  const got = await nav.fetch('http://127.0.0.1:8081/ccmcip/xmldirectory.jsp?name=p1');
  t.deepEqual({ source: got.source, url: got.url, failed: got.failed }, { source: 'cm-b', url: 'http://127.0.0.1:8082/ccmcip/xmldirectory.jsp?name=p1', failed: ['cm-a'] });
  t.deepEqual(asked, ['http://127.0.0.1:8081/ccmcip/xmldirectory.jsp?name=p1', 'http://127.0.0.1:8082/ccmcip/xmldirectory.jsp?name=p1']);
});

test('a home answering 404 is believed: no failover, "Not available", the page stays', async (t) => {
  const p = phone();
  p.ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A);
  p.faults.set(A, 404);
  await p.press('1');
  t.deepEqual(p.asked, [`${A}/sub?phone=p1`]);
  t.regex(p.screen(), /Not available/);
  t.regex(p.settled(), /Top cm-a/);
});

test('a failed home is tried last for a while: an absolute link to the home on a backup page costs no second time-out; later the home is tried first again', async (t) => {
  const p = phone();
  p.ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A);
  p.faults.set(A, 'timeout');
  await p.press('1');
  t.deepEqual(p.asked, [`${A}/sub?phone=p1`, `${B}/sub?phone=p1`]);
  await p.press('2'); // "Abs": an absolute link into the home's base on cm-b's page
  t.deepEqual(p.asked, [`${B}/leaf?phone=p1&x=1`]);
  t.regex(p.settled(), /Leaf cm-b/);
  await p.press('*');
  p.clock.advance(10_000);
  p.faults.delete(A);
  await p.press('2');
  t.deepEqual(p.asked, [`${A}/leaf?phone=p1&x=1`]);
  t.regex(p.settled(), /Leaf cm-a/);
  t.notRegex(p.screen(), /From/);
});

test('every server down: "Not available", the page stays; an external link is fetched as is, without failover', async (t) => {
  const p = phone();
  p.ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A);
  for (const b of [A, B, C]) p.faults.set(b, 'refused');
  await p.press('1');
  t.deepEqual(p.asked, [`${A}/sub?phone=p1`, `${B}/sub?phone=p1`, `${C}/sub?phone=p1`]);
  t.regex(p.screen(), /Not available/);
  t.regex(p.settled(), /Top cm-a/);
  await p.press('2');
  t.deepEqual(p.asked, ['http://example.invalid/x']);
  t.regex(p.settled(), /Ext/);
});

test('a top page from a backup says which server answered; a refresh that changed nothing keeps the user deep in the menus', async (t) => {
  const p = phone();
  p.ui.page(fixture(B, 'cm-b')[B]!, 'cm-b', B);
  t.regex(p.screen(), /From cm-b/);
  await p.press('1'); // an absolute link into the home's base: the live home answers
  t.deepEqual(p.asked, [`${A}/sub?phone=p1`]);
  t.regex(p.settled(), /Sub cm-a/);
  p.ui.page(fixture(B, 'cm-b')[B]!, 'cm-b', B); // the services controller's retry landed on cm-b again
  t.regex(p.settled(), /Sub cm-a/);
  p.ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A); // the home is back: a new top page
  t.regex(p.settled(), /Top cm-a/);
});

test('an answer to an older choice does not replace a newer one', async (t) => {
  const p = phone();
  let release: (() => void) | undefined;
  const slow = p.fetch;
  p.ui.close();
  const clock = new FakeClock(0);
  const display = new HeadlessDisplay(20, 4);
  const keypad = new KeyboardKeypad({ input: { isTTY: false } as NodeJS.ReadStream });
  const ui = new PhoneUi({
    display,
    keypad,
    clock,
    log: silentLogger(),
    phoneId: 'p1',
    timeoutMs: 1000,
    pointers: () => ({ list: LIST, home: 'cm-a' }),
    fetch: async (url) => {
      if (url.endsWith('/sub?phone=p1')) await new Promise<void>((r) => (release = r));
      return slow(url);
    },
  });
  ui.start();
  ui.page(fixture(A, 'cm-a')[A]!, 'cm-a', A);
  keypad.type('1');
  await flush();
  keypad.type('2');
  await flush();
  t.regex(display.lines.join('\n'), /Ext/);
  release!();
  await flush();
  t.regex(display.lines.join('\n'), /Ext/);
  t.is(ui.lines().join('\n').includes('Sub'), false);
});
