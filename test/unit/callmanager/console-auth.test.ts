/**
 * The console's access decisions (console-auth.ts, issue 15 §4): token by
 * digest, sessions that are not the token and expire on the monotonic clock,
 * and a per-address limit on guessing. Injected clock and random source.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { addressKey, ConsoleAuth, cookieValues, SESSION_COOKIE } from '../../../src/callmanager/console-auth.js';

const TOKEN = 'correct-horse-battery-staple-42';

function auth(extra: Partial<ConstructorParameters<typeof ConsoleAuth>[0]> = {}): { a: ConsoleAuth; clock: FakeClock } {
  const clock = new FakeClock();
  let n = 0;
  const randomBytes = (len: number): Buffer => Buffer.alloc(len, ++n);
  return { a: new ConsoleAuth({ token: TOKEN, clock, randomBytes, sessionTtlMs: 60_000, failBurst: 3, failRefillMs: 10_000, ...extra }), clock };
}

const cookieOf = (id: string): string => `other=1; ${SESSION_COOKIE}=${id}`;

test('no-credentials-no-data: a request with neither Bearer nor session cookie is 401', (t) => {
  const { a } = auth();
  t.like(a.authorize({}, '10.0.0.1'), { ok: false, status: 401, why: 'none' });
  t.like(a.authorize({ cookie: `${SESSION_COOKIE}=${TOKEN}` }, '10.0.0.1'), { ok: false, status: 401, why: 'none' }, 'the token as a cookie is not a session');
  t.is(a.failures, 0, 'no credential tried, nothing counted');
});

test('bearer-token: the right token passes (no expiry); wrong, longer, shorter, prefix and malformed ones are 401', (t) => {
  const { a } = auth({ failBurst: 100 });
  t.deepEqual(a.authorize({ authorization: `Bearer ${TOKEN}` }, '10.0.0.1'), { ok: true, via: 'bearer', until: Infinity });
  t.deepEqual(a.authorize({ authorization: `bearer   ${TOKEN} ` }, '10.0.0.1'), { ok: true, via: 'bearer', until: Infinity }, 'scheme is case-insensitive');
  for (const bad of [`Bearer ${TOKEN}x`, `Bearer ${TOKEN.slice(0, -1)}`, 'Bearer c', `Basic ${Buffer.from(`x:${TOKEN}`).toString('base64')}`, `Bearer`, `Bearer ${TOKEN} extra`, TOKEN]) {
    t.like(a.authorize({ authorization: bad }, '10.0.0.1'), { ok: false, status: 401, why: 'wrong' }, bad);
  }
  t.is(a.failures, 7);
});

test('session-cookie-is-not-the-token: login sets a random id; it opens the console until it expires (monotonic)', (t) => {
  const { a, clock } = auth();
  t.like(a.login('wrong', '10.0.0.1'), { ok: false, status: 401 });
  const r = a.login(TOKEN, '10.0.0.1');
  if (!r.ok) return t.fail('login refused');
  t.is(r.cookie, Buffer.alloc(32, 1).toString('base64url'), 'the random source, 32 bytes');
  t.false(r.cookie.includes(TOKEN));
  t.is(r.maxAgeS, 60);
  t.deepEqual(a.authorize({ cookie: cookieOf(r.cookie) }, '10.9.9.9'), { ok: true, via: 'cookie', until: 60_000 }, 'from any address');
  clock.advance(59_999);
  t.true(a.authorize({ cookie: cookieOf(r.cookie) }, '10.0.0.1').ok);
  clock.advance(1);
  t.like(a.authorize({ cookie: cookieOf(r.cookie) }, '10.0.0.1'), { ok: false, status: 401, why: 'expired' });
  t.is(a.sessions, 0, 'an expired session is forgotten');
});

test('logout ends the session its cookie names, and only that one', (t) => {
  const { a } = auth();
  const one = a.login(TOKEN, '10.0.0.1');
  const two = a.login(TOKEN, '10.0.0.2');
  if (!one.ok || !two.ok) return t.fail('login refused');
  t.not(one.cookie, two.cookie);
  a.logout(cookieOf(one.cookie));
  t.false(a.authorize({ cookie: cookieOf(one.cookie) }, '10.0.0.1').ok);
  t.true(a.authorize({ cookie: cookieOf(two.cookie) }, '10.0.0.2').ok);
});

test('login-rate-limited-per-address: after the burst of failures even the right token is 429 until the bucket refills; other addresses and sessions unaffected', (t) => {
  const { a, clock } = auth();
  const early = a.login(TOKEN, '10.0.0.7');
  if (!early.ok) return t.fail('login refused');
  for (let i = 0; i < 3; i++) t.like(a.login(`guess-${i}`, '10.0.0.1'), { ok: false, status: 401 });
  t.deepEqual(a.login(TOKEN, '10.0.0.1'), { ok: false, status: 429, retryAfterS: 10 }, 'the right token too: no compare while limited');
  t.deepEqual(a.authorize({ authorization: `Bearer ${TOKEN}` }, '10.0.0.1'), { ok: false, status: 429, retryAfterS: 10 }, 'Bearer shares the limit');
  t.is(a.failures, 3, 'refused attempts are not compared, so not failures');
  t.is(a.limited, 2);
  t.true(a.login(TOKEN, '10.0.0.2').ok, 'another address logs in');
  t.true(a.authorize({ cookie: cookieOf(early.cookie) }, '10.0.0.1').ok, 'a session opened before still works from the limited address');
  clock.advance(5_000);
  t.like(a.login(TOKEN, '10.0.0.1'), { ok: false, status: 429, retryAfterS: 5 });
  clock.advance(5_000);
  t.true(a.login(TOKEN, '10.0.0.1').ok, 'one attempt refilled after failRefillMs');
  t.like(a.login('guess', '10.0.0.1'), { ok: false, status: 401 });
  t.like(a.login(TOKEN, '10.0.0.1'), { ok: false, status: 429 }, 'and it is spent again by one more failure');
});

test('login-rate-limited-per-address: an IPv6 host is limited by its /64, an IPv4-mapped address as IPv4', (t) => {
  t.is(addressKey('2001:db8:1:2:aaaa::1'), '2001:db8:1:2::/64');
  t.is(addressKey('2001:0db8:0001:0002:ffff:ffff:ffff:ffff'), '2001:db8:1:2::/64');
  t.is(addressKey('2001:db8::1'), '2001:db8:0:0::/64');
  t.is(addressKey('::1'), '0:0:0:0::/64');
  t.is(addressKey('::ffff:192.0.2.5'), '192.0.2.5');
  t.is(addressKey('192.0.2.5'), '192.0.2.5');
  t.is(addressKey(undefined), '?');
  const { a } = auth();
  for (let i = 0; i < 3; i++) a.login('guess', `2001:db8:1:2::${i + 1}`);
  t.like(a.login(TOKEN, '2001:db8:1:2::99'), { ok: false, status: 429 });
  t.true(a.login(TOKEN, '2001:db8:1:3::1').ok);
});

test('bounded memory: sessions beyond maxSessions end the oldest; address buckets beyond maxAddresses forget the least recently seen', (t) => {
  const { a } = auth({ maxSessions: 3, maxAddresses: 2 });
  const ids = [1, 2, 3, 4].map(() => {
    const r = a.login(TOKEN, '10.0.0.1');
    return r.ok ? r.cookie : '';
  });
  t.is(a.sessions, 3);
  t.false(a.authorize({ cookie: cookieOf(ids[0]!) }, 'x').ok, 'the oldest ended');
  t.true(a.authorize({ cookie: cookieOf(ids[3]!) }, 'x').ok);
  for (let i = 0; i < 3; i++) a.login('guess', '10.0.0.1');
  t.like(a.login(TOKEN, '10.0.0.1'), { status: 429 });
  a.login('guess', '10.0.0.2');
  a.login('guess', '10.0.0.3');
  t.true(a.login(TOKEN, '10.0.0.1').ok, 'its bucket was dropped for newer addresses (bounded, at the price of a fresh burst)');
});

test('cookieValues: every value of the name, others ignored', (t) => {
  t.deepEqual(cookieValues(`a=1; ${SESSION_COOKIE}=x; b; ${SESSION_COOKIE}= y `, SESSION_COOKIE), ['x', 'y']);
  t.deepEqual(cookieValues(undefined, SESSION_COOKIE), []);
  t.deepEqual(cookieValues(`${SESSION_COOKIE}x=1`, SESSION_COOKIE), []);
});
