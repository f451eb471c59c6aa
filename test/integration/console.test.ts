/**
 * The operator console (issue 12) in a real headless Chromium: a group of two
 * call managers and two phones on a real mosquitto, cm-b's `GET /` opened in
 * the browser — its login form first (issue 15 §4): the operator types the
 * token from `console.tokenFile` and submits — then a kill -9 of cm-a: the
 * page, live and without a reload, shows cm-a offline and the phones'
 * rehomes with reason `cm-offline`. Screenshots go to test-results/console/
 * (named in any failure).
 */
import test, { type ExecutionContext } from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { Chromium, type CdpPage } from '../helpers/chromium.js';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { ROOT } from '../helpers/programs.js';

const SHOTS = join(ROOT, 'test-results', 'console');

const TOKEN = 'operators-console-token-0123456789';

let mosq: Mosquitto;
let chromium: Chromium;
let tokenDir: string;
/** The console block every call manager here runs with. */
let withToken: { console: { enabled: true; tokenFile: string } };
test.before(async () => {
  mosq = await startMosquitto();
  chromium = await Chromium.start();
  tokenDir = mkdtempSync(join(tmpdir(), 'ipphone-console-'));
  const tokenFile = join(tokenDir, 'console.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  withToken = { console: { enabled: true, tokenFile } };
});
test.after.always(async () => {
  await chromium?.close();
  await mosq?.stop();
  if (tokenDir !== undefined) rmSync(tokenDir, { recursive: true, force: true });
});

/** Open the console as an operator does: the login form (no group data), the token typed in. */
async function loginForm(page: CdpPage, url: string): Promise<void> {
  await page.goto(url);
  await page.until(`document.querySelector('form[action="/console/login"] input[name="token"]') !== null`, 'the login form');
  await page.until(`document.getElementById('members') === null`, 'no group data before login');
  await page.type('#token', TOKEN);
}

/** Submit the login form (Enter in the token field); then the live page. */
async function submitLogin(page: CdpPage): Promise<void> {
  await page.press('Enter');
  await page.until(`document.getElementById('members') !== null && document.getElementById('live')?.textContent === 'live'`, 'the console after login');
}

async function logIn(page: CdpPage, url: string): Promise<void> {
  await loginForm(page, url);
  await submitLogin(page);
}

/** cm's HTTP base URL (its services URL without `/services`). */
const base = (c: Cluster, id: string): string => c.group.find((g) => g.id === id)!.services.replace(/\/services$/, '');

/**
 * Run `step`, then write a screenshot of the page (named in the test's log); when the step
 * throws, the error names the screenshot and carries the page's log and the programs' output.
 */
async function shot(t: ExecutionContext, c: Cluster, page: CdpPage, name: string, step: () => Promise<void>): Promise<void> {
  let failure: Error | undefined;
  try {
    await step();
  } catch (err) {
    failure = err as Error;
  }
  const path = await page.screenshot(SHOTS, name).catch((e: Error) => `(no screenshot: ${e.message})`);
  t.log(`screenshot: ${path}`);
  if (failure !== undefined) {
    const procs = [...c.cms.values(), ...c.agents.values()].map((p) => p.output().slice(-3000)).join('\n');
    throw new Error(`${failure.message}\nscreenshot: ${path}\npage log:\n${page.logs.join('\n')}\n${procs}`);
  }
}

const row = (member: string): string => `document.querySelector('#members tr[data-member="${member}"]')`;
const cell = (member: string, i: number): string => `${row(member)}?.children[${i}]?.textContent`;

test.serial('the page of cm-b shows the group live; after kill -9 of cm-a, cm-a offline and the rehomes (cm-offline)', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a', 'cm-b'], withToken);
  c.startAgent('p-1');
  c.startAgent('p-2');
  await c.waitHome('p-1', 'cm-a', 30_000);
  await c.waitHome('p-2', 'cm-a', 30_000);
  const page = await chromium.newPage();
  t.teardown(() => page.close());

  await shot(t, c, page, '0-login', async () => {
    await loginForm(page, `${base(c, 'cm-b')}/`);
  });
  await shot(t, c, page, '1-group', async () => {
    await submitLogin(page);
    await page.until(`${row('cm-a')}?.dataset.online === 'true' && ${row('cm-b')}?.dataset.online === 'true'`, 'both members online');
    await page.until(`${cell('cm-a', 2)} === '2'`, 'cm-a with its 2 phones (from its load)');
    t.is(await page.eval(cell('cm-b', 2)), '0');
    t.is(await page.eval(cell('cm-a', 3)), '1000');
    await page.until(`document.querySelector('#totals tr')?.children[2]?.textContent === '2'`, 'the group total: 2 phones');
    t.is(await page.eval(`document.getElementById('live').textContent`), 'live');
    // The lookup box: what cm-b heard of p-1 (its retained status says it is homed on cm-a).
    await page.eval(`(document.getElementById('phone').value = 'p-1', document.getElementById('go').click(), true)`);
    await page.until(`document.getElementById('phoneout').textContent.includes('"home": "cm-a"')`, 'p-1 looked up');
    const found = JSON.parse(await page.eval<string>(`document.getElementById('phoneout').textContent`)) as Record<string, any>;
    t.like(found, { id: 'p-1', homedHere: false, status: { online: true, home: 'cm-a', state: 'homed' } });
    t.deepEqual(found.pointers.list, ['cm-a', 'cm-b']);
    t.true(found.pointers.version >= 1);
  });
  // Marks this document: a reload would lose it.
  await page.eval('window.__sameDocument = 42');

  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-1', 'cm-b', 30_000);
  await c.waitHome('p-2', 'cm-b', 30_000);
  await shot(t, c, page, '2-after-kill', async () => {
    await page.until(`${row('cm-a')}?.dataset.online === 'false'`, 'cm-a shown offline');
    t.is(await page.eval(cell('cm-a', 1)), 'offline');
    await page.until(
      `[...document.querySelectorAll('#rehomes tr')].filter((r) => r.dataset.reason === 'cm-offline').map((r) => r.children[1].textContent).sort().join() === 'p-1,p-2'`,
      'the rehomes of p-1 and p-2 with reason cm-offline',
    );
    const r = await page.eval<string[]>(`[...document.querySelector('#rehomes tr[data-reason="cm-offline"]').children].map((td) => td.textContent)`);
    t.is(r[2], 'cm-a');
    t.is(r[3], 'cm-b');
    t.regex(r[5]!, /^\d+$/, 'detect ms');
    t.regex(r[6]!, /^\d+$/, 'rehome ms');
    await page.until(`${cell('cm-b', 2)} === '2'`, 'cm-b with the 2 phones');
    // offline-member-counts-no-phones: dead cm-a's last load (2) is shown stale, not as phones it has;
    // the group total is the 2 phones on cm-b, not 4.
    t.is(await page.eval(cell('cm-a', 2)), '- (had 2, stale)');
    t.is(await page.eval(`${row('cm-a')}.children[2].querySelector('.stale') !== null`), true);
    await page.until(`document.querySelector('#totals tr')?.children[2]?.textContent === '2'`, 'the group total: 2 phones');
    t.regex(await page.eval<string>(`document.querySelector('#totals tr').children[0].textContent`), /1 of 2 online/);
    // rehome-summary-by-reason: the failover summed up by reason above the list.
    await page.until(`document.querySelector('#summary span[data-reason="cm-offline"]')?.dataset.count === '2'`, 'the summary: 2 cm-offline');
    t.regex(await page.eval<string>(`document.getElementById('summary').textContent`), /Last 10 min: 2 rehomes:.*2 cm-offline/);
    // detect ms is defined where it is shown: the header's tooltip and the legend.
    t.regex(await page.eval<string>(`document.getElementById('detect-ms').title`), /last keep-alive ack/);
    t.regex(await page.eval<string>(`document.querySelector('.legend').textContent`), /detect ms: ms from the old home's last sign of life/);
    t.is(await page.eval('window.__sameDocument'), 42, 'live: no reload');
  });
  t.deepEqual(page.logs.filter((l) => /Content Security Policy|exception/i.test(l)), [], 'no CSP violation, no exception');
});

test.serial('a 50-phone failover: one summary line by reason (50 cm-offline), the dead member stale and out of the totals', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a', 'cm-b'], withToken);
  const ids = Array.from({ length: 50 }, (_, i) => `sim-${i + 1}`);
  const fleet = c.startFleet('fleet-50', ['--config', c.agentConfig('ignored', { log: { level: 'warn' } }), '--count', '50', '--state-dir', join(c.dir, 'fleet')]);
  await waitFor(() => ids.every((id) => c.status(id)?.home === 'cm-a'), { timeoutMs: 60_000, what: `50 phones homed on cm-a\n${fleet.output().slice(-2000)}` });
  const page = await chromium.newPage();
  t.teardown(() => page.close());
  await logIn(page, `${base(c, 'cm-b')}/`);
  await page.until(`${cell('cm-a', 2)} === '50'`, 'cm-a with its 50 phones');
  c.cms.get('cm-a')!.signal('SIGKILL');
  await waitFor(() => ids.every((id) => c.status(id)?.home === 'cm-b'), { timeoutMs: 60_000, what: '50 phones on cm-b' });
  await shot(t, c, page, '5-fleet-failover', async () => {
    await page.until(`document.querySelector('#summary span[data-reason="cm-offline"]')?.dataset.count === '50'`, 'the summary: 50 cm-offline');
    // One line, a count per reason, summing to the total. Besides the 50 failovers a phone may also have
    // moved its services for cm-a's dead web server (services-timeout, a CI run saw one): counted apart.
    const summary = await page.eval<string>(`document.getElementById('summary').textContent`);
    const total = Number(/^Last 10 min: (\d+) rehomes:/.exec(summary)?.[1]);
    const byReason = await page.eval<Record<string, number>>(`Object.fromEntries([...document.querySelectorAll('#summary span[data-reason]')].map((s) => [s.dataset.reason, Number(s.dataset.count)]))`);
    t.is(byReason['cm-offline'], 50, summary);
    t.is(Object.values(byReason).reduce((a, b) => a + b, 0), total, `the reasons sum to the total: ${summary}`);
    t.deepEqual(Object.keys(byReason).filter((r) => r !== 'cm-offline' && r !== 'services-timeout'), [], `no other reason: ${summary}`);
    await page.until(`${cell('cm-b', 2)} === '50'`, 'cm-b with the 50 phones');
    t.is(await page.eval(cell('cm-a', 2)), '- (had 50, stale)');
    await page.until(`document.querySelector('#totals tr')?.children[2]?.textContent === '50'`, 'the group total: 50 phones, not 100');
  });
});

test.serial('what phones send is shown as text: a phone id and a reason with markup run nothing; the stream ends cleanly on stop', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], withToken);
  const page = await chromium.newPage();
  t.teardown(() => page.close());
  await logIn(page, `${base(c, 'cm-a')}/`);
  await page.until(`${row('cm-a')}?.dataset.online === 'true'`, 'cm-a online');

  const evilId = 'x<script>window.__pwned=1<img src=x onerror=window.__pwned=2>';
  const evilReason = '</script><script>window.__pwned=3</script><b>bold</b>';
  const pub = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => pub.end(true));
  await new Promise<void>((done, fail) => {
    pub.once('connect', () => done());
    pub.once('error', fail);
  });
  await pub.publishAsync(`${c.prefix}/phone/${evilId}/event`, JSON.stringify({ type: 'rehomed', from: '<i>a</i>', to: 'cm-a', reason: evilReason, detectMs: 1, rehomeMs: 2 }), { qos: 1 });
  await shot(t, c, page, '3-markup-as-text', async () => {
    await page.until(`document.querySelector('#rehomes tr')?.children[1]?.textContent === ${JSON.stringify(evilId)}`, 'the phone id shown as text');
    t.is(await page.eval(`document.querySelector('#rehomes tr').children[4].textContent`), evilReason);
    t.is(await page.eval(`document.querySelector('#rehomes tr').children[2].textContent`), '<i>a</i>');
    t.is(await page.eval('document.querySelectorAll("#rehomes script, #rehomes img, #rehomes b, #rehomes i").length'), 0, 'no element made from the data');
    // The lookup shows it as text too.
    await page.eval(`(document.getElementById('phone').value = ${JSON.stringify(evilId)}, document.getElementById('go').click(), true)`);
    await page.until(`document.getElementById('phoneout').textContent.includes('"type": "rehomed"')`, 'the evil phone looked up');
    t.is(await page.eval('document.querySelectorAll("#phoneout *").length'), 0);
    t.is(await page.eval('typeof window.__pwned'), 'undefined', 'nothing ran');
  });
  // Log out: the session ends, the page is the login form again, and a reload shows no data.
  await shot(t, c, page, '4-logged-out', async () => {
    await page.eval(`(document.getElementById('logout').click(), true)`);
    await page.until(`document.querySelector('form[action="/console/login"]') !== null && document.getElementById('members') === null`, 'the login form after log out');
    await page.goto(`${base(c, 'cm-a')}/`);
    t.is(await page.eval(`document.getElementById('members')`), null, 'no data after log out');
  });

  // The stream from Node: a snapshot, then it ends cleanly (no reset) when the call manager stops.
  t.is((await fetch(`${base(c, 'cm-a')}/console/events`)).status, 401, 'not without the token');
  const res = await fetch(`${base(c, 'cm-a')}/console/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
  t.is(res.status, 200);
  t.regex(res.headers.get('content-type') ?? '', /^text\/event-stream/);
  t.regex(res.headers.get('content-security-policy') ?? '', /default-src 'none'/);
  const reader = res.body!.getReader();
  let text = '';
  await waitFor(async () => {
    const { value } = await reader.read();
    text += Buffer.from(value ?? new Uint8Array()).toString();
    return text.includes('event: snapshot');
  }, { timeoutMs: 20_000, what: 'the snapshot' });
  const cm = c.cms.get('cm-a')!;
  cm.signal('SIGTERM');
  let ended = false;
  for (let i = 0; i < 1000 && !ended; i++) ended = (await reader.read()).done;
  t.true(ended, 'the stream ended');
  t.is(await cm.exited, 0);
});

test.serial('console.enabled false: no page, no stream; the services still answer', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a'], { console: { enabled: false } });
  for (const path of ['/', '/console/events', '/console/phone?id=p-1']) t.is((await fetch(`${base(c, 'cm-a')}${path}`)).status, 404, path);
  t.is((await fetch(`${base(c, 'cm-a')}/services?phone=p-1`)).status, 200);
});
