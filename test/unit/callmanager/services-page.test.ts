import test from 'ava';
import { directoryPage, servicesMenu, statusPage, xmlEscape } from '../../../src/callmanager/services-page.js';

const ctx = { cmId: 'cm-a', phone: 'p1', servicesUrl: 'http://127.0.0.1:8081/services' };

test('xmlEscape escapes the five XML characters', (t) => {
  t.is(xmlEscape(`<a href="x">&'</a>`), '&lt;a href=&quot;x&quot;&gt;&amp;&apos;&lt;/a&gt;');
});

test('menu: title names the CM, items link to sub-pages with the phone', (t) => {
  const xml = servicesMenu(ctx);
  t.true(xml.startsWith('<?xml version="1.0" encoding="UTF-8"?>\n<CiscoIPPhoneMenu>'));
  t.regex(xml, /<Title>Services — cm-a<\/Title>/);
  t.regex(xml, /<Prompt>[^<]+<\/Prompt>/);
  t.true(xml.includes('<MenuItem><Name>Directory</Name><URL>http://127.0.0.1:8081/services/directory?phone=p1</URL></MenuItem>'));
  t.true(xml.includes('<MenuItem><Name>Status</Name><URL>http://127.0.0.1:8081/services/status?phone=p1</URL></MenuItem>'));
  t.true(xml.trimEnd().endsWith('</CiscoIPPhoneMenu>'));
});

test('everything is escaped', (t) => {
  const xml = servicesMenu({ cmId: 'a<b>&', phone: 'p1', servicesUrl: 'http://h/services?x=1&y=2' });
  t.true(xml.includes('<Title>Services — a&lt;b&gt;&amp;</Title>'));
  t.false(/&(?!amp;|lt;|gt;|quot;|apos;)/.test(xml));
  const dir = directoryPage(ctx, [{ name: 'Bob & "Al"', telephone: '<1>' }]);
  t.true(dir.includes('<DirectoryEntry><Name>Bob &amp; &quot;Al&quot;</Name><Telephone>&lt;1&gt;</Telephone></DirectoryEntry>'));
});

test('directory and status pages', (t) => {
  const dir = directoryPage(ctx, []);
  t.regex(dir, /^<\?xml[^>]*>\n<CiscoIPPhoneDirectory>\n<Title>Directory — cm-a<\/Title>/);
  const st = statusPage(ctx, 12);
  t.regex(st, /<CiscoIPPhoneText>\n<Title>Status — cm-a<\/Title>/);
  t.regex(st, /<Text>Call manager cm-a\nPhones homed: 12\nThis phone: p1<\/Text>/);
});
