import test from 'ava';
import { besideBase, besideOn, onBase, ownerOf, placeOn, underBase } from '../../../src/agent/services-url.js';
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
  t.deepEqual(ownerOf('http://h:1/services/x?q=1', list), { pointer: list[0], how: 'under', rest: '/x?q=1' });
  t.deepEqual(ownerOf('http://h:2/services', list), { pointer: list[1], how: 'under', rest: '' });
  t.deepEqual(ownerOf('http://h:1/services/deep/y', list), { pointer: list[2], how: 'under', rest: '/y' });
  // Not under /services, but beside it: its directory is /.
  t.deepEqual(ownerOf('http://h:1/servicesdeep', list), { pointer: list[0], how: 'beside', rest: 'servicesdeep' });
  t.is(ownerOf('http://elsewhere/services/x', list), null);
});

// RFC 3986 §5.2.3: a base's directory is its path up to its last '/'.
// [rule, link, base, what follows the base's directory or null when the link is not beside it]
const BESIDE: Array<[string, string, string, string | null]> = [
  ['a sibling page of a page base (CUCM layout)', 'http://cm1:8080/ccmcip/xmldirectory.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', 'xmldirectory.jsp'],
  ['the base page itself is beside too', 'http://cm1:8080/ccmcip/getservicesmenu.jsp?name=x', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', 'getservicesmenu.jsp?name=x'],
  ["the link's query carries over", 'http://cm1:8080/ccmcip/xmldirectorylist.jsp?l=smith&start=1', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', 'xmldirectorylist.jsp?l=smith&start=1'],
  ["the base's query plays no part", 'http://cm1:8080/ccmcip/x.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp?lang=fr', 'x.jsp'],
  ['a page in a subdirectory of the directory', 'http://cm1:8080/ccmcip/sub/page.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', 'sub/page.jsp'],
  ['the directory itself', 'http://cm1:8080/ccmcip/', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', ''],
  ['the directory without its slash is outside it', 'http://cm1:8080/ccmcip', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', null],
  ['a parent directory is outside it', 'http://cm1:8080/other.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', null],
  ['a name sharing a prefix is another directory', 'http://cm1:8080/ccmcipx/a.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', null],
  ['dot segments are resolved before matching', 'http://cm1:8080/ccmcip/../admin/a.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', null],
  ['a base without an extension: its directory is its parent', 'http://h/x', 'http://h/services', 'x'],
  ['a base without an extension: below it is beside it too', 'http://h/services/x', 'http://h/services', 'services/x'],
  ['a base ending in / is its own directory', 'http://h/services/x', 'http://h/services/', 'x'],
  ['a base ending in /: its siblings are not beside it', 'http://h/y', 'http://h/services/', null],
  ['another port is another server', 'http://cm1:8081/ccmcip/x.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', null],
  ['another scheme is another server', 'https://cm1:8080/ccmcip/x.jsp', 'http://cm1:8080/ccmcip/getservicesmenu.jsp', null],
  ['host case and the default port do not matter', 'http://CM1:80/ccmcip/x.jsp', 'http://cm1/ccmcip/getservicesmenu.jsp', 'x.jsp'],
  ['paths are case-sensitive', 'http://cm1/CCMCIP/x.jsp', 'http://cm1/ccmcip/getservicesmenu.jsp', null],
  ['a fragment is dropped', 'http://cm1/ccmcip/x.jsp#top', 'http://cm1/ccmcip/getservicesmenu.jsp', 'x.jsp'],
  ['not a URL', 'Dial:1001', 'http://cm1/ccmcip/getservicesmenu.jsp', null],
];

for (const [rule, link, base, rest] of BESIDE) {
  test(`besideBase: ${rule}: ${link} beside ${base} → ${String(rest)}`, (t) => {
    t.is(besideBase(link, base), rest);
  });
}

// [rule, what follows a directory, other base, the same sibling there]
const BESIDE_ON: Array<[string, string, string, string]> = [
  ['beside a page base, in its directory', 'xmldirectory.jsp', 'http://cm2:8080/ccmcip/getservicesmenu.jsp', 'http://cm2:8080/ccmcip/xmldirectory.jsp'],
  ['the query carries over', 'x.jsp?a=1&b=2', 'https://cm2:8443/ccmcip/getservicesmenu.jsp?lang=fr', 'https://cm2:8443/ccmcip/x.jsp?a=1&b=2'],
  ['beside a base without an extension: in its parent', 'x.jsp', 'http://cm2/services', 'http://cm2/x.jsp'],
  ['beside a base ending in /: in it', 'x.jsp', 'http://cm2/services/', 'http://cm2/services/x.jsp'],
  ['the directory itself', '', 'http://cm2/a/b.jsp', 'http://cm2/a/'],
];

for (const [rule, rest, base, url] of BESIDE_ON) {
  test(`besideOn: ${rule}: ${rest} beside ${base} → ${url}`, (t) => {
    t.is(besideOn(rest, base), url);
  });
}

const CUCM_A = 'http://cm1:8080/ccmcip/getservicesmenu.jsp';
const CUCM_B = 'http://cm2:8080/ccmcip/getservicesmenu.jsp';
// [rule, link, list of services URLs, owner index and the same page on each other pointer, or null]
const OWNER: Array<[string, string, string[], [number, string[]] | null]> = [
  ['a sibling page fails over to the sibling beside the next services URL', 'http://cm1:8080/ccmcip/xmldirectory.jsp', [CUCM_A, CUCM_B], [0, ['http://cm2:8080/ccmcip/xmldirectory.jsp']]],
  ['a sibling on the backup maps back beside the home', 'http://cm2:8080/ccmcip/xmldirectory.jsp?l=a', [CUCM_A, CUCM_B], [1, ['http://cm1:8080/ccmcip/xmldirectory.jsp?l=a']]],
  ['a page-style home and a directory-style backup', 'http://cm1:8080/ccmcip/x.jsp', [CUCM_A, 'http://cm2/svc/'], [0, ['http://cm2/svc/x.jsp']]],
  ['below a base (today\'s rule) keeps its mapping', 'http://h:1/services/x?q', ['http://h:1/services', 'http://h:2/svc'], [0, ['http://h:2/svc/x?q']]],
  ['both below and beside one base: mapped as below', 'http://h:1/services/x', ['http://h:1/services', 'http://h:2/other'], [0, ['http://h:2/other/x']]],
  ['below one base beats beside another (and maps below the others)', 'http://h:1/a/b/c', ['http://h:1/a/x.jsp', 'http://h:1/a/b'], [1, ['http://h:1/a/x.jsp/c']]],
  ['beside: the longest directory wins', 'http://h:1/a/b/c.jsp', ['http://h:1/a/x.jsp', 'http://h:1/a/b/y.jsp'], [1, ['http://h:1/a/c.jsp']]],
  ['beside a base without an extension: a root-level link', 'http://h:1/x', ['http://h:1/services', 'http://h:2/services'], [0, ['http://h:2/x']]],
  ['another server is external', 'http://elsewhere:8080/ccmcip/xmldirectory.jsp', [CUCM_A, CUCM_B], null],
  ['outside the directory is external', 'http://cm1:8080/admin/x.jsp', [CUCM_A, CUCM_B], null],
];

for (const [rule, link, bases, want] of OWNER) {
  test(`ownerOf + placeOn: ${rule}`, (t) => {
    const list = bases.map((services, i) => ({ id: `cm-${i}`, broker: 'mqtt://h', services }));
    const owner = ownerOf(link, list);
    if (want === null) {
      t.is(owner, null);
      return;
    }
    t.is(owner?.pointer.id, `cm-${want[0]}`);
    t.deepEqual(
      list.filter((_, i) => i !== want[0]).map((p) => placeOn(owner!, p.services)),
      want[1],
    );
    t.is(placeOn(owner!, list[want[0]]!.services), new URL(link).href.replace(/#.*$/, ''), 'on its own server, the link itself');
  });
}

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
