import test from 'ava';
import { onBase, ownerOf, underBase } from '../../../src/agent/services-url.js';
import { resolveHref } from '../../../src/ui/screen-controller.js';

// [link, base, what follows the base or null when the link is not under it]
const UNDER: Array<[string, string, string | null]> = [
  ['http://h:8081/services', 'http://h:8081/services', ''],
  ['http://h:8081/services?phone=p1', 'http://h:8081/services', '?phone=p1'],
  ['http://h:8081/services/status?phone=p1', 'http://h:8081/services', '/status?phone=p1'],
  ['http://h:8081/services/a/b/c?x=1&y=2', 'http://h:8081/services/', '/a/b/c?x=1&y=2'],
  ['http://h:8081/services/', 'http://h:8081/services', '/'],
  ['http://h:8081/servicesX', 'http://h:8081/services', null], // /a is not under /ab, nor /ab under /a
  ['http://h:8081/ab', 'http://h:8081/a', null],
  ['http://h:8081/a', 'http://h:8081/ab', null],
  ['http://h:8081/Services/x', 'http://h:8081/services', null], // paths are case-sensitive
  ['http://h:8081/services%2Fx', 'http://h:8081/services', null], // an encoded slash is no segment break
  ['http://h:8081/services/../admin', 'http://h:8081/services', null], // dot segments resolved first
  ['http://h:8081/services/./x', 'http://h:8081/services', '/x'],
  ['https://h:8081/services/x', 'http://h:8081/services', null], // scheme
  ['http://g:8081/services/x', 'http://h:8081/services', null], // host
  ['http://h:8082/services/x', 'http://h:8081/services', null], // port
  ['http://H:80/services/x', 'http://h/services', '/x'], // host case and the default port do not matter
  ['http://h/services/x#frag', 'http://h/services', '/x'], // a fragment is dropped
  ['http://h/services/x', 'http://h/services?lang=fr', '/x'], // the base's query plays no part
  ['http://h/anything?q', 'http://h/', '/anything?q'], // a root base holds the whole origin
  ['http://h/anything', 'http://h', '/anything'],
  ['Dial:1001', 'http://h/services', null],
  ['not a url', 'http://h/services', null],
  ['ftp://h/services/x', 'ftp://h/services', null],
];

for (const [link, base, rest] of UNDER) {
  test(`underBase(${link}, ${base}) → ${String(rest)}`, (t) => {
    t.is(underBase(link, base), rest);
  });
}

// [what follows the base, other base, the same page there]
const ON: Array<[string, string, string]> = [
  ['/status?phone=p1', 'http://127.0.0.1:8082/services', 'http://127.0.0.1:8082/services/status?phone=p1'],
  ['/status?phone=p1', 'http://127.0.0.1:8082/services/', 'http://127.0.0.1:8082/services/status?phone=p1'],
  ['', 'http://b/other/base', 'http://b/other/base'],
  ['?phone=p1', 'https://b:9443/s', 'https://b:9443/s?phone=p1'],
  ['/x', 'http://b/', 'http://b/x'],
  ['/x', 'http://b/s?lang=fr', 'http://b/s/x'], // the link's query carries over, not the base's
];

for (const [rest, base, url] of ON) {
  test(`onBase(${rest}, ${base}) → ${url}`, (t) => {
    t.is(onBase(rest, base), url);
  });
}

test('ownerOf: the pointer whose base holds the link; the longest base wins; external links have none', (t) => {
  const list = [
    { id: 'cm-a', broker: 'mqtt://h', services: 'http://h:1/services' },
    { id: 'cm-b', broker: 'mqtt://h', services: 'http://h:2/services' },
    { id: 'cm-c', broker: 'mqtt://h', services: 'http://h:1/services/deep' },
  ];
  t.deepEqual(ownerOf('http://h:1/services/x?q=1', list), { pointer: list[0], rest: '/x?q=1' });
  t.deepEqual(ownerOf('http://h:2/services', list), { pointer: list[1], rest: '' });
  t.deepEqual(ownerOf('http://h:1/services/deep/y', list), { pointer: list[2], rest: '/y' });
  t.is(ownerOf('http://h:1/servicesdeep', list), null);
  t.is(ownerOf('http://elsewhere/services/x', list), null);
});

// [href as written, URL of the page it came from, resolved]
const RESOLVE: Array<[string, string | null, string | null]> = [
  ['about?phone=p1', 'http://b:2/services/more?phone=p1', 'http://b:2/services/about?phone=p1'],
  ['sub/page', 'http://b:2/services/', 'http://b:2/services/sub/page'],
  ['/services/x', 'http://b:2/services/more', 'http://b:2/services/x'],
  ['//c:3/y', 'http://b:2/services', 'http://c:3/y'],
  ['?phone=p2', 'http://b:2/services/more?phone=p1', 'http://b:2/services/more?phone=p2'],
  ['http://a:1/abs', 'http://b:2/services', 'http://a:1/abs'],
  ['Dial:1001', 'http://b:2/services', 'dial:1001'],
  ['relative', null, null],
];

for (const [href, page, url] of RESOLVE) {
  test(`resolveHref(${href}, ${String(page)}) → ${String(url)}`, (t) => {
    t.is(resolveHref(href, page), url);
  });
}
