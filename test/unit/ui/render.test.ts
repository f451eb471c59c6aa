import test from 'ava';
import { directoryPage, servicesMenu, statusPage, type PageContext } from '../../../src/callmanager/services-page.js';
import { parseCiscoXml } from '../../../src/ui/cisco-xml.js';
import { displayText, renderScreen, wrapText } from '../../../src/ui/render.js';

/** Pages as the project's call managers serve them. */
const ctx: PageContext = { cmId: 'cm-a', phone: 'p-0001', servicesUrl: 'http://127.0.0.1:8081/services' };
const menu = parseCiscoXml(servicesMenu(ctx));
const text = parseCiscoXml(statusPage(ctx, 3));
const dir = parseCiscoXml(
  directoryPage(ctx, [
    { name: 'Alice Example', telephone: '1001' },
    { name: 'Bob', telephone: '1002' },
    { name: 'Carol With A Very Long Name', telephone: '1003' },
  ]),
);

const at = (obj: ReturnType<typeof parseCiscoXml> | null, cols: number, rows: number, page = 0, status = 'CM cm-a') =>
  renderScreen(obj, { cols, rows, status, page });

test('menu on 20x4: status, title, numbered items', (t) => {
  t.deepEqual(at(menu, 20, 4), { lines: ['CM cm-a', 'Services - cm-a', '1 Directory', '2 Status'], page: 0, pages: 1 });
});

test('menu on 16x2: the title is the first body line, pages marked on the status row', (t) => {
  t.deepEqual(at(menu, 16, 2, 0).lines, ['CM cm-a      1/3', 'Services - cm-a']);
  t.deepEqual(at(menu, 16, 2, 1).lines, ['CM cm-a      2/3', '1 Directory']);
  t.deepEqual(at(menu, 16, 2, 2).lines, ['CM cm-a      3/3', '2 Status']);
  t.is(at(menu, 16, 2, 9).page, 2, 'page is clamped');
});

test('text on 20x4: word-wrapped, paged with the indicator on the title row', (t) => {
  t.deepEqual(at(text, 20, 4, 0), { lines: ['CM cm-a', 'Status - cm-a    1/2', 'Call manager cm-a', 'Phones homed: 3'], page: 0, pages: 2 });
  t.deepEqual(at(text, 20, 4, 1).lines, ['CM cm-a', 'Status - cm-a    2/2', 'This phone: p-0001', '']);
});

test('text on 16x2: wrapped at 16', (t) => {
  const pages = [0, 1, 2, 3, 4, 5].map((p) => at(text, 16, 2, p).lines);
  t.deepEqual(pages, [
    ['CM cm-a      1/6', 'Status - cm-a'],
    ['CM cm-a      2/6', 'Call manager'],
    ['CM cm-a      3/6', 'cm-a'],
    ['CM cm-a      4/6', 'Phones homed: 3'],
    ['CM cm-a      5/6', 'This phone:'],
    ['CM cm-a      6/6', 'p-0001'],
  ]);
});

test('directory on 20x4: numbers right-aligned, long names cut', (t) => {
  t.deepEqual(at(dir, 20, 4, 0).lines, ['CM cm-a', 'Directory - cm-a 1/2', 'Alice Example   1001', 'Bob             1002']);
  t.deepEqual(at(dir, 20, 4, 1).lines, ['CM cm-a', 'Directory - cm-a 2/2', 'Carol With A Ve 1003', '']);
});

test('directory on 16x2', (t) => {
  t.deepEqual(
    [0, 1, 2, 3].map((p) => at(dir, 16, 2, p).lines[1]),
    ['Directory - cm-a', 'Alice Examp 1001', 'Bob         1002', 'Carol With  1003'],
  );
  t.is(at(dir, 16, 2).pages, 4);
});

test('an empty directory shows its prompt', (t) => {
  const empty = parseCiscoXml(directoryPage(ctx, []));
  t.deepEqual(at(empty, 20, 4).lines, ['CM cm-a', 'Directory - cm-a', 'No entries', '']);
  t.deepEqual(at(empty, 16, 2, 1).lines, ['CM cm-a      2/2', 'No entries']);
});

test('row 0 is always the status; no page yet shows only it', (t) => {
  t.deepEqual(at(null, 20, 4, 0, 'No service'), { lines: ['No service', '', '', ''], page: 0, pages: 1 });
  t.deepEqual(at(null, 16, 2, 0, 'A status row longer than the screen').lines, ['A status row lon', '']);
  t.deepEqual(at(menu, 20, 1).lines, ['CM cm-a']);
});

test('long titles and items are cut to the width', (t) => {
  const obj = parseCiscoXml(
    '<CiscoIPPhoneMenu><Title>A very long title for the screen</Title><MenuItem><Name>An item with a long name</Name><URL>http://h/</URL></MenuItem></CiscoIPPhoneMenu>',
  );
  t.deepEqual(at(obj, 20, 4).lines, ['CM cm-a', 'A very long title fo', '1 An item with a lon', '']);
});

test('menus of 10+ items number with two digits', (t) => {
  const items = Array.from({ length: 12 }, (_, i) => `<MenuItem><Name>n${i + 1}</Name><URL>http://h/${i}</URL></MenuItem>`).join('');
  const obj = parseCiscoXml(`<CiscoIPPhoneMenu><Title>T</Title>${items}</CiscoIPPhoneMenu>`);
  t.deepEqual(at(obj, 20, 4, 5).lines, ['CM cm-a', 'T                6/6', '11 n11', '12 n12']);
});

test('non-ASCII becomes ? on LCDs; dashes, quotes and … are spelled out; unicode keeps them', (t) => {
  const obj = parseCiscoXml('<CiscoIPPhoneText><Title>Zoë’s “Café” ☎</Title><Text>Wait…\tnow</Text></CiscoIPPhoneText>');
  t.deepEqual(at(obj, 20, 4).lines, ['CM cm-a', 'Zo?\'s "Caf?" ?', 'Wait... now', '']);
  t.deepEqual(renderScreen(obj, { cols: 20, rows: 4, status: 'CM é', charset: 'unicode' }).lines, ['CM é', 'Zoë’s “Café” ☎', 'Wait… now', '']);
  t.is(displayText('a\u0007b\u0085c'), 'a b c', 'control characters become spaces');
});

test('a notice replaces row 1 while shown', (t) => {
  t.deepEqual(renderScreen(menu, { cols: 20, rows: 4, status: 'CM cm-b', notice: 'Moved to cm-b' }).lines, [
    'CM cm-b',
    'Moved to cm-b',
    '1 Directory',
    '2 Status',
  ]);
  t.deepEqual(renderScreen(menu, { cols: 16, rows: 2, status: 'CM cm-b', notice: 'Moved from cm-a to cm-b' }).lines, ['CM cm-b      1/3', 'Moved from cm-a']);
});

test('wrapText splits words longer than the width and keeps blank lines', (t) => {
  t.deepEqual(wrapText('abcdefghij kl\n\nmn  op', 4), ['abcd', 'efgh', 'ij', 'kl', '', 'mn', 'op']);
  t.deepEqual(wrapText('a bb ccc', 4), ['a bb', 'ccc']);
});
