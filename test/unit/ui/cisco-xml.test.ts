import test from 'ava';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { MAX_DIRECTORY_ENTRIES, MAX_MENU_ITEMS, MAX_PAGE_BYTES, decodeXmlEntities, parseCiscoXml } from '../../../src/ui/cisco-xml.js';

const DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

test('a menu: title, prompt, items with unescaped URLs', (t) => {
  const obj = parseCiscoXml(
    `${DECL}<CiscoIPPhoneMenu>\n<Title>Services — cm-a</Title>\n<Prompt>Choose</Prompt>\n` +
      '<MenuItem><Name>Directory</Name><URL>http://h/services/directory?phone=p1&amp;x=1</URL></MenuItem>\n' +
      '<MenuItem><Name>Status</Name><URL>http://h/services/status?phone=p1</URL></MenuItem>\n</CiscoIPPhoneMenu>\n',
  );
  t.deepEqual(obj, {
    kind: 'menu',
    title: 'Services — cm-a',
    prompt: 'Choose',
    items: [
      { name: 'Directory', url: 'http://h/services/directory?phone=p1&x=1' },
      { name: 'Status', url: 'http://h/services/status?phone=p1' },
    ],
  });
});

test('a text object keeps its line breaks; predefined and numeric entities are decoded once', (t) => {
  const obj = parseCiscoXml('<CiscoIPPhoneText><Title>a &amp;amp; &lt;b&gt; &#233;&#x41;</Title><Text>line 1\nline 2</Text></CiscoIPPhoneText>');
  t.deepEqual(obj, { kind: 'text', title: 'a &amp; <b> éA', text: 'line 1\nline 2' });
});

test('a directory; missing fields read as empty; CDATA is literal', (t) => {
  const obj = parseCiscoXml(
    '<CiscoIPPhoneDirectory><Title><![CDATA[D & <x>]]></Title>' +
      '<DirectoryEntry><Name>Alice</Name><Telephone>1001</Telephone></DirectoryEntry>' +
      '<DirectoryEntry><Name>Bob</Name></DirectoryEntry></CiscoIPPhoneDirectory>',
  );
  t.deepEqual(obj, {
    kind: 'directory',
    title: 'D & <x>',
    entries: [
      { name: 'Alice', telephone: '1001' },
      { name: 'Bob', telephone: '' },
    ],
  });
});

test('an empty menu and a text without Text are fine', (t) => {
  t.deepEqual(parseCiscoXml('<CiscoIPPhoneMenu><Title>T</Title></CiscoIPPhoneMenu>'), { kind: 'menu', title: 'T', items: [] });
  t.deepEqual(parseCiscoXml('<CiscoIPPhoneText/>'), { kind: 'text', title: '', text: '' });
});

test('menus are capped at 100 items and directories at 32 entries, and say how many were dropped', (t) => {
  const items = Array.from({ length: 103 }, (_, i) => `<MenuItem><Name>n${i}</Name><URL>http://h/${i}</URL></MenuItem>`).join('');
  const menu = parseCiscoXml(`<CiscoIPPhoneMenu><Title>T</Title>${items}</CiscoIPPhoneMenu>`);
  t.is(menu.kind, 'menu');
  if (menu.kind !== 'menu') return;
  t.is(menu.items.length, MAX_MENU_ITEMS);
  t.is(menu.items.at(-1)?.name, 'n99');
  t.is(menu.dropped, 3);
  const entries = Array.from({ length: 40 }, (_, i) => `<DirectoryEntry><Name>e${i}</Name><Telephone>${i}</Telephone></DirectoryEntry>`).join('');
  const dir = parseCiscoXml(`<CiscoIPPhoneDirectory>${entries}</CiscoIPPhoneDirectory>`);
  if (dir.kind !== 'directory') return t.fail();
  t.is(dir.entries.length, MAX_DIRECTORY_ENTRIES);
  t.is(dir.dropped, 8);
});

test('malformed XML is PAYLOAD_INVALID with the parser’s message and position', (t) => {
  const err = t.throws(() => parseCiscoXml('<CiscoIPPhoneText><Title>x</CiscoIPPhoneText>'));
  t.true(isIpphoneError(err, 'PAYLOAD_INVALID'));
  t.regex(err!.message, /Expected closing tag 'Title'.*line 1, column \d+/);
  for (const bad of ['', '   ', 'hello', '<a/><b/>']) {
    t.true(isIpphoneError(t.throws(() => parseCiscoXml(bad)), 'PAYLOAD_INVALID'), JSON.stringify(bad));
  }
});

test('an unknown root element is PAYLOAD_INVALID naming it', (t) => {
  const err = t.throws(() => parseCiscoXml('<CiscoIPPhoneImage><Title>x</Title></CiscoIPPhoneImage>'));
  t.true(isIpphoneError(err, 'PAYLOAD_INVALID'));
  t.regex(err!.message, /<CiscoIPPhoneImage>/);
});

test('a menu item without URL is refused', (t) => {
  const err = t.throws(() => parseCiscoXml('<CiscoIPPhoneMenu><MenuItem><Name>x</Name></MenuItem></CiscoIPPhoneMenu>'));
  t.true(isIpphoneError(err, 'PAYLOAD_INVALID'));
  t.regex(err!.message, /MenuItem 1 has no URL/);
});

test('DTDs are refused and undeclared entities are never expanded', (t) => {
  const bomb = '<!DOCTYPE x [<!ENTITY a "AAAA"><!ENTITY b "&a;&a;&a;">]><CiscoIPPhoneText><Title>&b;</Title></CiscoIPPhoneText>';
  const err = t.throws(() => parseCiscoXml(bomb));
  t.true(isIpphoneError(err, 'PAYLOAD_INVALID'));
  t.regex(err!.message, /DTD/);
  const ext = '<!DOCTYPE x SYSTEM "file:///etc/passwd"><CiscoIPPhoneText><Title>x</Title></CiscoIPPhoneText>';
  t.true(isIpphoneError(t.throws(() => parseCiscoXml(ext)), 'PAYLOAD_INVALID'));
  t.deepEqual(parseCiscoXml('<CiscoIPPhoneText><Title>&xxe; &nbsp;</Title></CiscoIPPhoneText>'), { kind: 'text', title: '&xxe; &nbsp;', text: '' });
});

test('over 64 KiB is PAYLOAD_TOO_LARGE; exactly 64 KiB is parsed', (t) => {
  const head = '<CiscoIPPhoneText><Text>';
  const tail = '</Text></CiscoIPPhoneText>';
  const exact = head + 'x'.repeat(MAX_PAGE_BYTES - head.length - tail.length) + tail;
  t.is(Buffer.byteLength(exact), MAX_PAGE_BYTES);
  t.is(parseCiscoXml(exact).kind, 'text');
  // One two-byte character more: counted in UTF-8 bytes, not characters.
  const over = head + 'é' + 'x'.repeat(MAX_PAGE_BYTES - head.length - tail.length - 1) + tail;
  const err = t.throws(() => parseCiscoXml(over));
  t.true(isIpphoneError(err, 'PAYLOAD_TOO_LARGE'));
  t.deepEqual((err as unknown as { context: unknown }).context, { bytes: MAX_PAGE_BYTES + 1, limit: MAX_PAGE_BYTES });
});

test('decodeXmlEntities leaves unknown and out-of-range references alone', (t) => {
  t.is(decodeXmlEntities('&amp;&quot;&apos;&#65;&#x1F600;&#xD800;&#0;&foo;'), '&"\'A😀&#xD800;&#0;&foo;');
});
