/**
 * Issue #10, "signed lists carry no phone binding or expiry": a call manager's
 * list is signed for one phone, expires, and is renewed well before it does.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { openPointers } from '../../../src/protocol/codec.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Pointer, PointersBody } from '../../../src/protocol/types.js';
import { LIST_LIFETIME_MS, ListBook } from '../../../src/callmanager/list-book.js';
import { mergeGroupList } from '../../../src/protocol/list-merge.js';

const group: Pointer[] = ['cm-a', 'cm-b'].map((id, i) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1:${8081 + i}/services` }));
const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);
const T0 = 1_764_000_000_000;

function make() {
  const clock = new FakeClock(T0);
  let signs = 0;
  const book = new ListBook({ group, baseVersion: 1, clock, bind: true, sign: (b) => (signs++, signEnvelope(b, priv, 'ops-1')) });
  return { clock, book, signs: () => signs };
}
const body = (env: Parameters<typeof openEnvelope>[0]): PointersBody => JSON.parse(openEnvelope(env, trusted).toString('utf8')) as PointersBody;

test('list-bound-to-phone: the body names the phone and expires a lifetime from now', (t) => {
  const { book } = make();
  book.setOffline(['cm-b']);
  const b = body(book.forPhone('p1').envelope);
  t.is(b.phone, 'p1');
  t.is(b.expires, T0 + LIST_LIFETIME_MS);
  t.is(body(book.setPhoneList('p2', group, 'rebalance').envelope).phone, 'p2', 'rebalance overrides too');
});

test('list-refused-by-another-phone: WRONG_PHONE; accepted by its own phone', (t) => {
  const { book } = make();
  book.setOffline(['cm-b']);
  const env = book.forPhone('p1').envelope;
  const err = t.throws(() => openPointers(env, trusted, { phoneId: 'p2', heldVersion: 0, now: T0 }));
  t.true(isIpphoneError(err, 'WRONG_PHONE'));
  t.is(openPointers(env, trusted, { phoneId: 'p1', heldVersion: 0, now: T0 }).phone, 'p1');
});

test('expiry-judged-by-a-wrong-phone-clock: a phone in 1970 accepts; a captured list is refused after it expires', (t) => {
  const { book } = make();
  book.setOffline(['cm-b']);
  const env = book.forPhone('p1').envelope;
  t.notThrows(() => openPointers(env, trusted, { phoneId: 'p1', heldVersion: 0, now: 0 }), 'a phone booting in 1970 takes it');
  t.notThrows(() => openPointers(env, trusted, { phoneId: 'p1', heldVersion: 0, now: T0 + 11 * 3600_000 }), 'a phone 11 h ahead takes it');
  const err = t.throws(() => openPointers(env, trusted, { phoneId: 'p1', heldVersion: 0, now: T0 + LIST_LIFETIME_MS }));
  t.true(isIpphoneError(err, 'EXPIRED'), 'a freshly wiped phone refuses the captured list once expired');
});

test('renewal-before-expiry: re-signed with the same version when less than half the lifetime is left; cached before', (t) => {
  const { book, clock, signs } = make();
  book.setOffline(['cm-b']);
  const v = book.version;
  const first = book.forPhone('p1').envelopeJson;
  clock.advance(LIST_LIFETIME_MS / 2 - 1000);
  t.is(book.forPhone('p1').envelopeJson, first, 'cached while more than half is left');
  const n = signs();
  clock.advance(2000);
  const renewed = book.forPhone('p1');
  t.not(renewed.envelopeJson, first);
  t.is(signs(), n + 1);
  t.is(renewed.version, v, 'same version: phones holding it do not rewrite their flash');
  t.true(body(renewed.envelope).expires! - clock.now() >= LIST_LIFETIME_MS / 2, 'a handed-out list always has at least half its lifetime left');
});

test('binding-costs-no-signature-for-phones-that-hold-the-list: the short ack tail signs nothing', (t) => {
  const { book, signs } = make();
  book.setOffline(['cm-b']);
  for (let i = 0; i < 1000; i++) void book.forPhone(`p${i}`).ackTailShort;
  t.is(signs(), 0);
});

test('bound-lists-keep-remote-pointers: every bound body (group list, override, re-issue above) names the group in owns, so an ack keeps a phone\'s remote site', (t) => {
  const { book } = make();
  book.setOffline(['cm-b']);
  const owns = ['cm-a', 'cm-b'];
  t.deepEqual(body(book.forPhone('p1').envelope).owns, owns, 'the group list bound to p1 (was: no owns, the phone dropped cm-r)');
  t.deepEqual(body(book.setPhoneList('p2', group, 'rebalance').envelope).owns, owns, 'a rebalance override');
  t.deepEqual(body(book.above('p3', book.version + 10).envelope).owns, owns, 'a list re-issued above a held version');
  // What the phone makes of it (protocol/list-merge.ts): cm-r stays.
  const held = [...group, { id: 'cm-r', broker: 'mqtt://r.example:1883', services: 'http://r.example/services' }];
  const b = body(book.forPhone('p1').envelope);
  t.deepEqual(mergeGroupList(held, b.list, b.owns).map((p) => p.id), ['cm-a', 'cm-b', 'cm-r']);
});
