/**
 * The simulated services servers (src/sim/services.ts): their site is one the
 * product's failover can map between call managers, and their answers follow
 * the world's truth (a dead process refuses, a paused one or an outage hangs
 * until the phone's deadline).
 */
import test from 'ava';
import { ownerOf, placeOn } from '../../src/agent/services-url.js';
import { parseCiscoXml } from '../../src/ui/cisco-xml.js';
import { resolveHref } from '../../src/ui/screen-controller.js';
import { Net } from '../../src/sim/broker.js';
import { Host, ProcessClock } from '../../src/sim/clock.js';
import { allCms, defaultTopology } from '../../src/sim/group.js';
import { CmHost } from '../../src/sim/hosts.js';
import { Rng } from '../../src/sim/rng.js';
import { servicesPage, ServicesWorld } from '../../src/sim/services.js';
import { World } from '../../src/sim/world.js';

const topo = defaultTopology(1);
const [a, b] = topo.group;
const pointers = allCms(topo).map((c) => ({ id: c.id, broker: c.broker, services: c.services }));

test('every menu link but the retired one is a page on its own server and, placed as services-url.ts places it, on every other', (t) => {
  const top = parseCiscoXml(servicesPage(a!, a!.services)!);
  if (top.kind !== 'menu') return t.fail('top page is not a menu');
  const links = top.items.map((i) => resolveHref(i.url, a!.services)!);
  t.is(links.length, 4);
  for (const url of links) {
    const owner = ownerOf(url, pointers);
    t.is(owner?.pointer.id, 'cm-a', url);
    const here = servicesPage(a!, url);
    if (url.endsWith('retired.jsp')) {
      t.is(here, null);
      continue;
    }
    t.not(here, null, url);
    const there = placeOn(owner!, b!.services);
    t.regex(parseCiscoXml(servicesPage(b!, there)!).title, /^cm-b /, there);
  }
});

function world() {
  const w = new World();
  const net = new Net(w, new Rng(1), 30);
  const cms = new Map(allCms(topo).map((s) => [s.id, new CmHost(w, net, s, topo, new Rng(2).fork(s.id))]));
  const services = new ServicesWorld(w, cms, topo, new Rng(3), 30);
  const clock = new ProcessClock(new Host(w, 'p-0001'));
  const fetch = (url: string) => {
    const at = w.now;
    const out: { at?: number; page?: string; code?: string } = {};
    services.fetch(clock, 'p-0001', url, 2000).then(
      (page) => Object.assign(out, { at: w.now - at, page }),
      (err: { code?: string }) => Object.assign(out, { at: w.now - at, code: err.code }),
    );
    return out;
  };
  return { w, cms, services, fetch, run: (ms: number) => w.runUntil(w.now + ms, () => undefined) };
}

test('a services server answers only while the truth says so: dead refuses at once, paused and in an outage time out', async (t) => {
  const s = world();
  const cmA = s.cms.get('cm-a')!;
  // Not started: no process, the host's kernel refuses.
  const refused = s.fetch(a!.services);
  await s.run(3000);
  t.is(refused.code, 'TRANSPORT');
  t.true(refused.at! < 100);
  t.false(s.services.answers('cm-a'));
  // A running process (the real call manager; no broker in this world, it keeps reconnecting) answers within the link and work delays.
  cmA.start();
  const ok = s.fetch(a!.services);
  await s.run(3000);
  t.true(s.services.answers('cm-a'));
  t.regex(ok.page ?? '', /cm-a services/);
  t.true(ok.at! <= 100);
  // Paused: held, the phone's deadline ends it.
  cmA.host.pause();
  const paused = s.fetch(a!.services);
  await s.run(3000);
  t.is(paused.code, 'TIMEOUT');
  t.false(s.services.answers('cm-a'));
  cmA.host.resume();
  // An outage hangs too, while the process runs.
  s.services.outage.add('cm-a');
  const hung = s.fetch(a!.services);
  await s.run(3000);
  t.is(hung.code, 'TIMEOUT');
  t.false(s.services.answers('cm-a'));
  // A 404 page is a TRANSPORT error with its status.
  s.services.outage.delete('cm-a');
  const missing = s.fetch(a!.services.replace('menu.jsp', 'retired.jsp'));
  await s.run(3000);
  t.is(missing.code, 'TRANSPORT');
  cmA.crash();
});

test('a cut phone ↔ services path hangs that phone\'s fetches there until its deadline while the server answers others; healed, it answers again', async (t) => {
  const s = world();
  const cmA = s.cms.get('cm-a')!;
  cmA.start();
  s.services.cut.add('p-0001 cm-a');
  t.is(s.services.wholeSince('p-0001', 'cm-a'), Infinity);
  const hung = s.fetch(a!.services);
  await s.run(3000);
  t.is(hung.code, 'TIMEOUT');
  t.true(s.services.answers('cm-a'), 'the server itself answers: only the path is cut');
  s.services.cut.delete('p-0001 cm-a');
  const ok = s.fetch(a!.services);
  await s.run(3000);
  t.regex(ok.page ?? '', /cm-a services/);
  cmA.crash();
});

test('scheduled cuts are traced, healed, and say since when the path is whole', async (t) => {
  const s = world();
  s.services.scheduleCuts(new Rng(2), ['p-0001']);
  await s.run(150_000);
  t.is(s.services.cut.size, 0, 'every cut healed');
  const healed = allCms(topo).map((c) => s.services.wholeSince('p-0001', c.id)).filter((x) => Number.isFinite(x));
  t.true(healed.length >= 1, 'this seed draws at least one cut');
  t.true(healed.every((x) => x >= 7_000 && x <= 140_000), JSON.stringify(healed));
});
