/**
 * Every services page fails over (issue 11, claims 3, 14, 25), end to end: two
 * real services HTTP servers (the group's `services` URLs), two call managers,
 * a running agent whose keypad is its stdin on a real pty and whose display is
 * a serial LCD on another. Mid-navigation the home's services server hangs,
 * then closes: each deeper page comes from the backup, the LCD says so
 * (`From cm-b`), and the phone stays homed to cm-a (only its services moved).
 */
import { spawn } from 'node:child_process';
import http from 'node:http';
import type { Socket } from 'node:net';
import { closeSync, constants, openSync, writeFileSync, writeSync } from 'node:fs';
import { join } from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { Cluster, procOf } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs, ROOT } from '../helpers/programs.js';
import { PtyLcd, startPtyPair, tempDir } from '../helpers/pty.js';

type Mode = 'ok' | 'hang';

const menu = (title: string, items: Array<[string, string]>) =>
  `<?xml version="1.0"?><CiscoIPPhoneMenu><Title>${title}</Title>${items.map(([n, u]) => `<MenuItem><Name>${n}</Name><URL>${u.replace(/&/g, '&amp;')}</URL></MenuItem>`).join('')}</CiscoIPPhoneMenu>`;

/** The `/svc` layout: top menu → submenu (relative link) → text, each naming `name`. */
function svcLayout(name: string, port: number): { base: string; pages: Record<string, string> } {
  const base = `http://127.0.0.1:${port}/svc`;
  return {
    base,
    pages: {
      '/svc': menu(`Top ${name}`, [['Sub', `${base}/sub`]]),
      '/svc/sub': menu(`Sub ${name}`, [['Leaf', 'sub/leaf?x=1']]),
      '/svc/sub/leaf': `<CiscoIPPhoneText><Title>Leaf ${name}</Title><Text>text of ${name}</Text></CiscoIPPhoneText>`,
    },
  };
}

/**
 * The CUCM layout: the services URL is a page, `/ccmcip/getservicesmenu.jsp`, and its menu
 * links are its siblings, absolute as CUCM writes them (`/ccmcip/xmldirectory.jsp`), one
 * of them relative (`xmldirectorylist.jsp?l=a`).
 */
function cucmLayout(name: string, port: number): { base: string; pages: Record<string, string> } {
  const dir = `http://127.0.0.1:${port}/ccmcip/`;
  return {
    base: `${dir}getservicesmenu.jsp`,
    pages: {
      '/ccmcip/getservicesmenu.jsp': menu(`Services ${name}`, [
        ['Directory', `${dir}xmldirectory.jsp`],
        ['Smith', 'xmldirectorylist.jsp?l=smith&start=1'],
      ]),
      '/ccmcip/xmldirectory.jsp': `<CiscoIPPhoneText><Title>Directory ${name}</Title><Text>directory of ${name}</Text></CiscoIPPhoneText>`,
      '/ccmcip/xmldirectorylist.jsp': `<CiscoIPPhoneText><Title>Smith ${name}</Title><Text>smith at ${name}</Text></CiscoIPPhoneText>`,
    },
  };
}

/**
 * A services server for call manager `name` (the `/svc` layout unless `layout` says
 * otherwise). `state.mode` hang: every request is accepted and never answered;
 * `state.hangOn`: only requests for these paths are.
 */
async function servicesServer(t: { teardown(fn: () => unknown): void }, name: string, port: number, layout = svcLayout) {
  const state = { mode: 'ok' as Mode, hangOn: new Set<string>(), served: [] as string[] };
  const held = new Set<Socket>();
  const { base, pages } = layout(name, port);
  const server = http.createServer((req, res) => {
    const url = new URL(req.url ?? '/', base);
    if (state.mode === 'hang' || state.hangOn.has(url.pathname)) {
      held.add(req.socket);
      return; // accepted, never answered
    }
    state.served.push(`${url.pathname}${url.search}`);
    const page = pages[url.pathname];
    res.writeHead(page === undefined ? 404 : 200, { 'content-type': 'text/xml' });
    res.end(page ?? 'not found');
  });
  await new Promise<void>((done) => server.listen(port, '127.0.0.1', done));
  const close = async () => {
    for (const s of held) s.destroy();
    server.closeAllConnections();
    await new Promise<void>((done) => server.close(() => done()));
  };
  let closed = false;
  t.teardown(() => (closed ? undefined : close()));
  return {
    base,
    state,
    close: async () => {
      closed = true;
      await close();
    },
  };
}

/**
 * Agent `phone` of cluster `c` on ptys: its display a serial LCD on one, its keypad the sim
 * keyboard on its stdin on another.
 */
async function phoneOnPtys(t: ExecutionContext, c: Cluster, phone: string) {
  // The display: a serial LCD on a pty. The keypad: the sim keyboard, the agent's stdin on another pty.
  const lcd = await PtyLcd.forTest(t);
  const tmp = tempDir();
  t.teardown(tmp.remove);
  const keys = await startPtyPair(join(tmp.dir, 'keys-near'), join(tmp.dir, 'keys-far'));
  t.teardown(() => keys.kill());
  const board = join(tmp.dir, 'board.json');
  writeFileSync(
    board,
    JSON.stringify({
      name: 'pty-20x4-keys',
      display: { driver: 'serial-lcd', path: lcd.near, baudRate: 19200, cols: 20, rows: 4, protocol: 'matrix-orbital' },
      keypad: { driver: 'keyboard' },
      hook: null,
    }),
  );
  const stdin = openSync(keys.near, constants.O_RDWR | constants.O_NOCTTY);
  const cfg = c.agentConfig(phone, { board, services: { timeoutMs: 1500 } });
  const agent = procOf(spawn(process.execPath, [...programArgs('ipphone-agent'), '--config', cfg], { cwd: ROOT, stdio: [stdin, 'pipe', 'pipe'] }), phone);
  closeSync(stdin);
  c.agents.set(phone, agent);
  const keyFd = openSync(keys.far, constants.O_WRONLY | constants.O_NOCTTY);
  t.teardown(() => closeSync(keyFd));
  const press = (k: string) => writeSync(keyFd, k);

  const screen = () => lcd.screen().map((l) => l.trimEnd());
  const shows = async (re: RegExp, what: string) => {
    await waitFor(() => re.test(screen().join('\n')), { timeoutMs: 20_000, what: `${what}; LCD ${JSON.stringify(screen())}` }).catch((err: Error) => {
      throw new Error(`${err.message}\n${agent.output().slice(-4000)}`);
    });
  };

  return { press, screen, shows, agent };
}

test.serial('menu → submenu → text: the home services server hangs, then closes, mid-navigation; each page comes from cm-b and the LCD says so', async (t) => {
  t.timeout(120_000);
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const [portA, portB] = [await freePort(), await freePort()];
  const svcA = await servicesServer(t, 'cm-a', portA);
  const svcB = await servicesServer(t, 'cm-b', portB);

  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: mosq.url, services: svcA.base },
    { id: 'cm-b', broker: mosq.url, services: svcB.base },
  ]);
  await c.observe(mosq.url);
  await Promise.all(['cm-a', 'cm-b'].map((id) => c.startCm(id)));

  const { press, screen, shows } = await phoneOnPtys(t, c, 'p-nav');

  await c.waitHome('p-nav', 'cm-a');
  await shows(/Top cm-a/, 'the home top page');
  t.is(screen()[0], 'CM cm-a');

  // Depth 1 from the home.
  press('1');
  await shows(/Sub cm-a/, 'the home submenu');

  // The home's services server hangs: the text (a relative link under the home's base) comes from cm-b.
  svcA.state.mode = 'hang';
  press('1');
  await shows(/From cm-b/, 'a notice naming the backup');
  await shows(/text of cm-b/, 'the text from cm-b');
  await shows(/Leaf cm-b/, 'the title from cm-b once the notice is gone');
  t.true(svcB.state.served.includes('/svc/sub/leaf?x=1&phone=p-nav'), JSON.stringify(svcB.state.served));
  t.is(screen()[0], 'CM cm-a', 'homed to cm-a still: only the services page moved');

  // Back to the top (the home's page), then the home's server closes: the submenu comes from cm-b,
  // and its relative link resolves against cm-b.
  press('*');
  await shows(/Sub cm-a/, 'back to the submenu');
  press('*');
  await shows(/Top cm-a/, 'back to the top page');
  await svcA.close();
  press('1');
  await shows(/Sub cm-b/, 'the submenu from cm-b');
  const before = svcB.state.served.length;
  press('1');
  await shows(/text of cm-b/, "the text from cm-b via the cm-b page's relative link");
  t.deepEqual(svcB.state.served.slice(before), ['/svc/sub/leaf?x=1&phone=p-nav']);
  t.is(c.status('p-nav')?.home, 'cm-a');
});

test.serial('CUCM layout: the services URL is a page; its sibling pages fail over to the same siblings beside the backup’s services page, and the LCD says so', async (t) => {
  t.timeout(120_000);
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const [portA, portB] = [await freePort(), await freePort()];
  const svcA = await servicesServer(t, 'cm-a', portA, cucmLayout);
  const svcB = await servicesServer(t, 'cm-b', portB, cucmLayout);
  t.regex(svcA.base, /\/ccmcip\/getservicesmenu\.jsp$/);

  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: mosq.url, services: svcA.base },
    { id: 'cm-b', broker: mosq.url, services: svcB.base },
  ]);
  await c.observe(mosq.url);
  await Promise.all(['cm-a', 'cm-b'].map((id) => c.startCm(id)));
  const { press, screen, shows } = await phoneOnPtys(t, c, 'p-cucm');

  await c.waitHome('p-cucm', 'cm-a');
  await shows(/Services cm-a/, 'the home services page');

  // The home's server hangs on the sibling page only: the directory (an absolute sibling link) comes from cm-b.
  svcA.state.hangOn.add('/ccmcip/xmldirectory.jsp');
  press('1');
  await shows(/From cm-b/, 'a notice naming the backup');
  await shows(/directory of cm-b/, 'the directory page from cm-b');
  t.true(
    svcB.state.served.some((u) => u.startsWith('/ccmcip/xmldirectory.jsp')),
    `cm-b served the sibling beside its own services page: ${JSON.stringify(svcB.state.served)}`,
  );
  t.is(screen()[0], 'CM cm-a', 'homed to cm-a still: only the services page moved');

  // Back to the home's page; then the home's server closes: a relative sibling link on it comes from cm-b.
  press('*');
  await shows(/Services cm-a/, 'back to the home services page');
  await svcA.close();
  const before = svcB.state.served.length;
  press('2');
  await shows(/smith at cm-b/, 'the relative sibling from cm-b');
  t.true(
    svcB.state.served.slice(before).some((u) => u.startsWith('/ccmcip/xmldirectorylist.jsp?l=smith&start=1')),
    JSON.stringify(svcB.state.served.slice(before)),
  );
  t.is(c.status('p-cucm')?.home, 'cm-a');
});
