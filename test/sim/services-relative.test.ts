/**
 * The services-relative checker (src/sim/services-relative.ts) on requests fed
 * by hand: a page's failover goes to the same place on a pointer of the phone,
 * and is answered there within the window when a pointer stayed healthy.
 */
import test from 'ava';
import type { PhoneHost } from '../../src/sim/hosts.js';
import { allCms, defaultTopology } from '../../src/sim/group.js';
import { ServicesRelative } from '../../src/sim/services-relative.js';

const topo = defaultTopology(1);
const servers = allCms(topo);
const url = (cm: string, path: string) => `${servers.find((s) => s.id === cm)!.services.replace(/menu\.jsp$/, '')}${path}`;
const WINDOW = 13_000;

function setup(list: string[]) {
  const phone = { bootedAt: 0, agent: { state: { list: list.map((id) => ({ id })) } } } as unknown as PhoneHost;
  const violations: string[] = [];
  const c = new ServicesRelative(servers, new Map([['p-0001', phone]]), WINDOW, () => true, () => -Infinity, (d) => violations.push(d), () => undefined);
  c.tick(0);
  return { c, violations };
}

test('a page that failed over and was answered at the same place on another pointer holds', (t) => {
  const { c, violations } = setup(['cm-a', 'cm-b']);
  c.tick(20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-a', 'xmldirectory.jsp'), outcome: 'failed' }, 20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-b', 'xmldirectory.jsp') }, 20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-b', 'xmldirectory.jsp'), outcome: 'answered' }, 20_060);
  for (let at = 20_000; at <= 40_000; at += 1000) c.tick(at);
  t.deepEqual(violations, []);
});

test('a page that failed over and was fetched elsewhere (another place) is a violation once the window passed while a pointer answered', (t) => {
  const { c, violations } = setup(['cm-a', 'cm-b']);
  c.tick(20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-a', 'xmldirectory.jsp'), outcome: 'failed' }, 20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-b', 'menu.jsp'), outcome: 'answered' }, 20_060);
  c.tick(20_000 + WINDOW);
  t.deepEqual(violations, []);
  c.tick(20_001 + WINDOW);
  t.is(violations.length, 1);
  t.regex(violations[0]!, /beside xmldirectory\.jsp on cm-a/);
});

test('a failover hop to a server that is not a pointer of the phone is a violation', (t) => {
  const { c, violations } = setup(['cm-a', 'cm-b']);
  c.tick(20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-a', 'menu.jsp/news'), outcome: 'failed' }, 20_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-r', 'menu.jsp/news') }, 20_000);
  t.is(violations.length, 1);
  t.regex(violations[0]!, /from cm-r, not a pointer/);
});

test('a failure is not judged when the phone held its list for less than the window (the chain may predate it)', (t) => {
  const { c, violations } = setup(['cm-a', 'cm-b']);
  c.tick(5_000);
  c.onFetch({ phone: 'p-0001', url: url('cm-a', 'xmldirectory.jsp'), outcome: 'failed' }, 5_000);
  c.tick(5_000 + WINDOW + 1);
  t.deepEqual(violations, []);
});
