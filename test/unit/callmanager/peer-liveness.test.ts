import test from 'ava';
import { cmTrustedKeys, PeerLiveness, REFUSAL_LOG_GAP_MS } from '../../../src/callmanager/peer-liveness.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { encodeCmState } from '../../../src/protocol/cm-state.js';
import { CHALLENGE_GAP_MS, CHALLENGE_TTL_MS } from '../../../src/protocol/cm-liveness.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { capturingLogger } from '../../helpers/log-capture.js';

const own = generateKeyPair();
const other = generateKeyPair();
const ownKey = parsePrivateKey(own.privatePem);
const otherKey = parsePrivateKey(other.privatePem);
const run = { bdSeq: 3, conn: 1, nonce: 'nonce-of-cm-b-1' };
/** cm-b's online (seq 2), or the will of that connection (seq 1, signed at CONNECT). */
const st = (online: boolean, k = ownKey, kid = 'ops-1') =>
  Buffer.from(encodeCmState(online ? { cm: 'cm-b', online, ...run, seq: 2 } : { cm: 'cm-b', online, ...run, seq: 1, will: true }, (b) => signEnvelope(b, k, kid)));

test('peer-trust-own-key: a group sharing one key needs no trust section', (t) => {
  const keys = cmTrustedKeys({}, 'ops-1', parsePublicKey(own.publicPem));
  const p = new PeerLiveness({ keys, clock: new FakeClock(), log: capturingLogger().log });
  t.true(p.judge('cm-b', st(true)));
  t.false(p.judge('cm-b', st(false)));
  t.is(p.refused, 0);
});

test('peer-trust-configured-keys: trust.keys adds peers with keys of their own', (t) => {
  const keys = cmTrustedKeys({ 'site-2': other.publicPem }, 'ops-1', parsePublicKey(own.publicPem));
  const p = new PeerLiveness({ keys, clock: new FakeClock(), log: capturingLogger().log });
  t.true(p.judge('cm-b', st(true, otherKey, 'site-2')));
  t.is(p.judge('cm-b', st(false, otherKey, 'ops-1')), undefined, 'another key under our own kid is refused');
});

test('peer-refused-logged-rate-limited: a forged flood is one line per gap, and changes nothing', (t) => {
  const clock = new FakeClock();
  const { log, lines } = capturingLogger();
  const p = new PeerLiveness({ keys: cmTrustedKeys({}, 'ops-1', parsePublicKey(own.publicPem)), clock, log });
  t.true(p.judge('cm-b', st(true)));
  for (let i = 0; i < 100; i++) t.is(p.judge('cm-b', Buffer.from('{"online":false}')), undefined);
  t.is(p.refused, 100);
  t.is(lines.length, 1);
  t.like(lines[0], { msg: 'peer state refused', peer: 'cm-b', code: 'UNSIGNED', level: 40 });
  clock.advance(REFUSAL_LOG_GAP_MS);
  p.judge('cm-b', Buffer.alloc(0));
  t.like(lines[1], { code: 'STATE_EMPTY', unlogged: 99 });
  t.false(p.judge('cm-b', st(false)), 'the genuine will still counts');
});

test('peer-offline-before-online-ignored: logged at info, not a warning', (t) => {
  const { log, lines } = capturingLogger();
  const p = new PeerLiveness({ keys: cmTrustedKeys({}, 'ops-1', parsePublicKey(own.publicPem)), clock: new FakeClock(), log });
  t.is(p.judge('cm-b', st(false)), undefined);
  t.like(lines[0], { msg: 'peer state ignored', code: 'STATE_RUN_UNKNOWN', level: 30 });
});

for (const [name, step] of [
  ['back 1 h', -3_600_000],
  ['forward 1 h', 3_600_000],
] as const) {
  test(`peer-refused-log-gap-is-monotonic: wall ${name} → one line per gap of real time`, (t) => {
    const clock = new FakeClock();
    const { log, lines } = capturingLogger();
    const p = new PeerLiveness({ keys: cmTrustedKeys({}, 'ops-1', parsePublicKey(own.publicPem)), clock, log });
    p.judge('cm-b', Buffer.from('{"online":false}'));
    clock.stepWall(step);
    p.judge('cm-b', Buffer.from('{"online":false}'));
    t.is(lines.length, 1, 'a wall step does not open the gap');
    clock.advance(REFUSAL_LOG_GAP_MS);
    p.judge('cm-b', Buffer.from('{"online":false}'));
    t.is(lines.length, 2, 'real time does');
  });
}

test('peer-unordered-online-challenged: a peer\'s online of an older run is challenged on its topic; only its answer is believed', (t) => {
  const clock = new FakeClock();
  const sent: { peer: string; value: string }[] = [];
  let n = 0;
  const p = new PeerLiveness({
    keys: cmTrustedKeys({}, 'ops-1', parsePublicKey(own.publicPem)),
    clock,
    log: capturingLogger().log,
    challenge: (peer, value) => sent.push({ peer, value }),
    randomBytes: (len) => Buffer.alloc(len, ++n),
  });
  t.true(p.judge('cm-b', st(true)));
  t.false(p.judge('cm-b', st(false)), 'the will: cm-b is dead');
  // Reinstalled with a lower boot sequence: its online cannot be ordered.
  const low = { cm: 'cm-b', bdSeq: 2, conn: 1, nonce: 'nonce-of-cm-b-low', seq: 2 };
  t.is(p.judge('cm-b', Buffer.from(encodeCmState({ ...low, online: true }, (b) => signEnvelope(b, ownKey, 'ops-1')))), undefined);
  t.deepEqual(sent, [{ peer: 'cm-b', value: Buffer.alloc(16, 1).toString('base64url') }]);
  const answer = (challenge: string) => Buffer.from(encodeCmState({ ...low, online: true, challenge }, (b) => signEnvelope(b, ownKey, 'ops-1')));
  t.is(p.answer('cm-b', answer(Buffer.alloc(16, 9).toString('base64url'))), undefined, 'an answer to a challenge we did not send');
  clock.advance(CHALLENGE_TTL_MS / 2);
  t.true(p.answer('cm-b', answer(sent[0]!.value)));
  t.is(p.answer('cm-b', answer(sent[0]!.value)), undefined, 'each challenge answers once');
});

test('peer-challenge-asked-again: a lost challenge is asked again after CHALLENGE_GAP_MS; an answer stops it; stop() clears the timer', (t) => {
  const clock = new FakeClock();
  const sent: string[] = [];
  let n = 0;
  const p = new PeerLiveness({
    keys: cmTrustedKeys({}, 'ops-1', parsePublicKey(own.publicPem)),
    clock,
    log: capturingLogger().log,
    challenge: (_peer, value) => sent.push(value),
    randomBytes: (len) => Buffer.alloc(len, ++n),
  });
  t.true(p.judge('cm-b', st(true)));
  const low = { cm: 'cm-b', bdSeq: 2, conn: 1, nonce: 'nonce-of-cm-b-low', seq: 2 };
  const sign = (o: Record<string, unknown>) => Buffer.from(encodeCmState({ ...low, online: true, ...o }, (b) => signEnvelope(b, ownKey, 'ops-1')));
  p.judge('cm-b', sign({}));
  t.is(sent.length, 1);
  clock.advance(CHALLENGE_GAP_MS);
  t.is(sent.length, 2, 'asked again');
  t.true(p.answer('cm-b', sign({ challenge: sent[1]! })));
  clock.advance(60_000);
  t.is(sent.length, 2, 'answered: not asked again');
  p.judge('cm-b', Buffer.from(encodeCmState({ ...low, bdSeq: 3, online: true }, (b) => signEnvelope(b, ownKey, 'ops-1'))));
  const before = sent.length;
  p.stop();
  clock.advance(60_000);
  t.is(sent.length, before, 'stopped: no timer left');
});
