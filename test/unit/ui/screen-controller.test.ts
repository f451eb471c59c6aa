import test from 'ava';
import { directoryPage, servicesMenu, statusPage, type PageContext } from '../../../src/callmanager/services-page.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { ScreenController } from '../../../src/ui/screen-controller.js';

const ctxA: PageContext = { cmId: 'cm-a', phone: 'p1', servicesUrl: 'http://127.0.0.1:8081/services' };
const ctxB: PageContext = { cmId: 'cm-b', phone: 'p1', servicesUrl: 'http://127.0.0.1:8082/services' };

function setup(cols = 20, rows = 4) {
  const clock = new FakeClock();
  let changes = 0;
  const sc = new ScreenController({ cols, rows, clock, onChange: () => changes++ });
  sc.setStatus('CM cm-a');
  sc.setPage(servicesMenu(ctxA), 'cm-a');
  return { clock, sc, changes: () => changes };
}

test('a digit chooses a menu item; its page comes back as a child; * goes back', (t) => {
  const { sc } = setup();
  t.deepEqual(sc.lines(), ['CM cm-a', 'Services - cm-a', '1 Directory', '2 Status']);
  t.deepEqual(sc.key('2'), { fetch: 'http://127.0.0.1:8081/services/status?phone=p1', source: 'cm-a' });
  sc.setPage(statusPage(ctxA, 7), 'cm-a');
  t.deepEqual(sc.lines(), ['CM cm-a', 'Status - cm-a    1/2', 'Call manager cm-a', 'Phones homed: 7']);
  t.is(sc.current?.depth, 1);
  t.is(sc.key('*'), null);
  t.deepEqual(sc.lines(), ['CM cm-a', 'Services - cm-a', '1 Directory', '2 Status']);
  t.is(sc.current?.depth, 0);
});

test('out-of-range digits and keys on non-menu pages are ignored', (t) => {
  const { sc } = setup();
  const before = sc.lines();
  for (const k of ['0', '3', '9', 'x', 'F1']) t.is(sc.key(k), null, k);
  t.deepEqual(sc.lines(), before);
  t.truthy(sc.key('1'));
  sc.setPage(directoryPage(ctxA, [{ name: 'Alice', telephone: '1001' }]), 'cm-a');
  t.is(sc.key('1'), null, 'a directory has nothing to choose');
});

test('# scrolls to the next page and wraps to the first; * on the top page returns to page 1', (t) => {
  const { sc } = setup(16, 2);
  t.deepEqual(sc.lines(), ['CM cm-a      1/3', 'Services - cm-a']);
  sc.key('#');
  t.deepEqual(sc.lines(), ['CM cm-a      2/3', '1 Directory']);
  sc.key('#');
  t.deepEqual(sc.lines(), ['CM cm-a      3/3', '2 Status']);
  sc.key('#');
  t.deepEqual(sc.lines(), ['CM cm-a      1/3', 'Services - cm-a']);
  sc.key('#');
  sc.key('*');
  t.is(sc.current?.page, 0);
  t.is(sc.current?.depth, 0);
});

test('back restores the scroll position of the previous page', (t) => {
  const { sc } = setup(16, 2);
  sc.key('#');
  sc.key('#');
  t.truthy(sc.key('1'));
  sc.setPage(directoryPage(ctxA, []), 'cm-a');
  t.deepEqual(sc.lines(), ['CM cm-a      1/2', 'Directory - cm-a']);
  sc.key('*');
  t.deepEqual(sc.lines(), ['CM cm-a      3/3', '2 Status']);
});

test('a page that is not the answer to a navigation replaces the stack (e.g. after a rehome)', (t) => {
  const { sc } = setup();
  t.truthy(sc.key('1'));
  sc.setPage(directoryPage(ctxA, []), 'cm-a');
  t.is(sc.current?.depth, 1);
  sc.setStatus('CM cm-b');
  sc.setPage(servicesMenu(ctxB), 'cm-b');
  t.is(sc.current?.depth, 0);
  t.is(sc.current?.source, 'cm-b');
  sc.key('*');
  t.deepEqual(sc.lines(), ['CM cm-b', 'Services - cm-b', '1 Directory', '2 Status']);
  // An outstanding request from cm-b answered by a cm-a page: a new top page, not a child.
  t.truthy(sc.key('2'));
  sc.setPage(servicesMenu(ctxA), 'cm-a');
  t.is(sc.current?.depth, 0);
});

test('cancelNavigation makes the next page a top page', (t) => {
  const { sc } = setup();
  t.truthy(sc.key('1'));
  sc.cancelNavigation();
  sc.setPage(servicesMenu(ctxA), 'cm-a');
  t.is(sc.current?.depth, 0);
});

test('a bad page throws, keeps the screen and drops the outstanding navigation', (t) => {
  const { sc } = setup();
  const before = sc.lines();
  t.truthy(sc.key('1'));
  const err = t.throws(() => sc.setPage('<CiscoIPPhoneText><Title>', 'cm-a'));
  t.true(isIpphoneError(err, 'PAYLOAD_INVALID'));
  t.true(isIpphoneError(t.throws(() => sc.setPage(`<CiscoIPPhoneText><Text>${'x'.repeat(70_000)}</Text></CiscoIPPhoneText>`, 'cm-a')), 'PAYLOAD_TOO_LARGE'));
  t.deepEqual(sc.lines(), before);
  sc.setPage(statusPage(ctxA, 1), 'cm-a');
  t.is(sc.current?.depth, 0, 'the failed navigation no longer counts');
});

test('a rehome notice shows on row 1 and disappears after its time', (t) => {
  const { sc, clock, changes } = setup();
  sc.setStatus('CM cm-b');
  sc.notice('Moved to cm-b', 3000);
  t.deepEqual(sc.lines(), ['CM cm-b', 'Moved to cm-b', '1 Directory', '2 Status']);
  clock.advance(2999);
  t.is(sc.lines()[1], 'Moved to cm-b');
  t.is(changes(), 0);
  clock.advance(1);
  t.deepEqual(sc.lines(), ['CM cm-b', 'Services - cm-a', '1 Directory', '2 Status']);
  t.is(changes(), 1, 'the owner is told to redraw');
});

test('a newer notice replaces the older one and keeps its own time', (t) => {
  const { sc, clock, changes } = setup();
  sc.notice('Moved to cm-b', 3000);
  clock.advance(2000);
  sc.notice('Moved to cm-c', 3000);
  clock.advance(1500);
  t.is(sc.lines()[1], 'Moved to cm-c', 'the first notice’s timer does not clear the second');
  clock.advance(1500);
  t.is(sc.lines()[1], 'Services - cm-a');
  t.is(changes(), 1);
  sc.close();
  t.is(clock.pending, 0);
});

function bigMenu(n: number): string {
  const items = Array.from({ length: n }, (_, i) => `<MenuItem><Name>n${i + 1}</Name><URL>http://h/${i + 1}</URL></MenuItem>`).join('');
  return `<CiscoIPPhoneMenu><Title>Big</Title>${items}</CiscoIPPhoneMenu>`;
}

test('menus of 10+ items take two digits; * or a pause drops a half-typed number', (t) => {
  const { sc, clock } = setup();
  sc.setPage(bigMenu(12), 'cm-a');
  t.is(sc.key('1'), null);
  t.deepEqual(sc.key('2'), { fetch: 'http://h/12', source: 'cm-a' });
  sc.cancelNavigation();
  t.is(sc.key('0'), null);
  t.deepEqual(sc.key('3'), { fetch: 'http://h/3', source: 'cm-a' });
  sc.cancelNavigation();
  t.is(sc.key('1'), null);
  t.is(sc.key('3'), null, '13 is out of range');
  t.is(sc.key('0'), null);
  sc.key('*');
  t.is(sc.key('1'), null, '* dropped the 0: this 1 starts a new number');
  clock.advance(3000);
  t.is(sc.key('1'), null, 'the pause dropped the first 1');
  t.is(clock.pending, 1);
  t.deepEqual(sc.key('1'), { fetch: 'http://h/11', source: 'cm-a' });
  t.is(clock.pending, 0);
});

test('an item whose URL is not http(s) is not fetched and says so', (t) => {
  const { sc, clock } = setup();
  sc.setPage('<CiscoIPPhoneMenu><Title>T</Title><MenuItem><Name>Call</Name><URL>Dial:1001</URL></MenuItem></CiscoIPPhoneMenu>', 'cm-a');
  t.is(sc.key('1'), null);
  t.is(sc.lines()[1], 'Not supported');
  clock.advance(3000);
  t.is(sc.lines()[1], 'T');
});

test('before any page: the status row only', (t) => {
  const sc = new ScreenController({ cols: 16, rows: 2, clock: new FakeClock() });
  sc.setStatus('No service');
  t.deepEqual(sc.lines(), ['No service', '']);
  for (const k of ['1', '#', '*']) t.is(sc.key(k), null);
});
