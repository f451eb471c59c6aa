import test from 'ava';
import { route, type HttpDeps } from '../../../src/callmanager/http-server.js';

function deps(connected = true): HttpDeps & { served: number } {
  const d = {
    served: 0,
    cmId: 'cm-a',
    servicesUrl: 'http://127.0.0.1:8081/services',
    connected: () => connected,
    phonesHomed: () => 3,
    directory: () => [{ name: 'p1', telephone: 'p1' }],
    metricsText: () => '# HELP x y\n',
    onServicesRequest: () => {
      d.served++;
    },
  };
  return d;
}

test('services menu for a valid phone; counted', (t) => {
  const d = deps();
  const a = route('GET', '/services?phone=p1', d);
  t.is(a.status, 200);
  t.regex(a.contentType, /^text\/xml/);
  t.regex(a.body, /<Title>Services — cm-a<\/Title>/);
  t.is(d.served, 1);
  t.regex(route('GET', '/services/directory?phone=p1', d).body, /<CiscoIPPhoneDirectory>/);
  t.regex(route('GET', '/services/status?phone=p1', d).body, /Phones homed: 3/);
  t.is(d.served, 3);
});

test('missing, repeated or invalid phone → 400 text, not counted', (t) => {
  const d = deps();
  for (const u of ['/services', '/services?phone=', '/services?phone=a/b', '/services?phone=p1&phone=p2', '/services/status?phone=%3Cx%3E']) {
    const a = route('GET', u, d);
    t.is(a.status, 400, u);
    t.regex(a.contentType, /^text\/plain/);
  }
  t.is(d.served, 0);
});

test('healthz follows the broker connection', (t) => {
  t.deepEqual([route('GET', '/healthz', deps(true)).status, route('GET', '/healthz', deps(true)).body], [200, 'ok\n']);
  t.is(route('GET', '/healthz', deps(false)).status, 503);
});

test('metrics, 404 and 405', (t) => {
  const m = route('GET', '/metrics', deps());
  t.is(m.status, 200);
  t.is(m.contentType, 'text/plain; version=0.0.4; charset=utf-8');
  t.is(route('GET', '/nope', deps()).status, 404);
  const p = route('POST', '/services?phone=p1', deps());
  t.is(p.status, 405);
  t.is(p.headers?.allow, 'GET, HEAD');
  t.is(route('DELETE', '/healthz', deps()).status, 405);
});

test('healthz says 503 while the paired SIP server is silent, 200 when it answers or none is paired', (t) => {
  t.deepEqual(route('GET', '/healthz', { ...deps(true), sipOnline: () => false }), { status: 503, contentType: 'text/plain; charset=utf-8', body: 'sip registrar not answering\n' });
  t.is(route('GET', '/healthz', { ...deps(true), sipOnline: () => true }).status, 200);
  t.is(route('GET', '/healthz', { ...deps(false), sipOnline: () => true }).body, 'broker not connected\n');
});
