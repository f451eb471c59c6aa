import test from 'ava';
import { CmRun, REPUBLISH_GAP_MS } from '../../../src/callmanager/run-state.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { LivenessVerifier } from '../../../src/protocol/cm-liveness.js';
import { generateKeyPair, parsePrivateKey, signEnvelope, trustedKeys } from '../../../src/protocol/envelope.js';
import { capturingLogger } from '../../helpers/log-capture.js';

const pair = generateKeyPair();
const key = parsePrivateKey(pair.privatePem);
const keys = trustedKeys({ 'ops-1': pair.publicPem });

function setup(bdSeq = 5) {
  const clock = new FakeClock();
  const published: string[] = [];
  let n = 0;
  const { log, lines } = capturingLogger();
  const run = new CmRun({
    cmId: 'cm-a',
    bdSeq,
    sign: (b) => signEnvelope(b, key, 'ops-1'),
    clock,
    publish: (p) => published.push(p),
    // Deterministic nonces: 16 bytes of the attempt number.
    randomBytes: (len) => Buffer.alloc(len, ++n),
    log,
  });
  return { clock, run, published, lines };
}

const body = (payload: string): Record<string, unknown> => JSON.parse(Buffer.from((JSON.parse(payload) as { body: string }).body, 'base64').toString()) as Record<string, unknown>;

test('run-will-is-the-signed-offline-of-its-connection', (t) => {
  const { run } = setup();
  const will = run.connect();
  t.is(will, run.offline);
  t.deepEqual(body(will), { cm: 'cm-a', online: false, bdSeq: 5, conn: 1, nonce: Buffer.alloc(16, 1).toString('base64url'), seq: 1, will: true });
  const { will: _, ...rest } = body(will);
  t.deepEqual(body(run.online), { ...rest, online: true, seq: 2 });
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', Buffer.from(run.online)).ok);
  const off = v.check('cm-a', Buffer.from(will));
  t.true(off.ok && !off.online, 'a phone that saw this online accepts this will');
});

test('run-reconnect-is-a-newer-connection-with-a-fresh-nonce', (t) => {
  const { run } = setup();
  const w1 = run.connect();
  const w2 = run.connect();
  t.is(run.conn, 2);
  t.not(body(w1).nonce, body(w2).nonce);
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', Buffer.from(run.online)).ok);
  const old = v.check('cm-a', Buffer.from(w1));
  t.false(old.ok, 'the will of the first connection no longer counts');
});

test('run-republishes-over-a-foreign-state-on-its-own-topic', (t) => {
  const { run, published, clock } = setup();
  run.connect();
  t.false(run.onOwnState(Buffer.from(run.online)), 'its own online echoed back is left alone');
  t.true(run.onOwnState(Buffer.from('{"online":false}')));
  t.deepEqual(published, [run.online]);
  t.true(run.onOwnState(Buffer.alloc(0)), 'an empty retained message clears it: answered too');
  t.true(run.onOwnState(Buffer.from(run.offline)), 'its own will arriving late: answered too');
  t.is(published.length, 1, 'at most one republish per gap');
  clock.advance(REPUBLISH_GAP_MS);
  t.deepEqual(published, [run.online, run.online], 'the last one is always sent');
  clock.advance(REPUBLISH_GAP_MS * 5);
  t.is(published.length, 2, 'one trailing republish for the whole burst');
  t.is(run.republished, 2);
});

test('run-logs-own-topic-refusals-rate-limited', (t) => {
  const { run, lines, clock } = setup();
  run.connect();
  for (let i = 0; i < 50; i++) run.onOwnState(Buffer.from('{"online":false}'));
  t.is(lines.length, 1);
  clock.advance(10_000);
  run.onOwnState(Buffer.from('{"online":false}'));
  t.is(lines.length, 2);
  t.is(lines[1]?.unlogged, 49);
});

test('run-stopping: no republish once the offline is ours to publish', (t) => {
  const { run, published, clock } = setup();
  run.connect();
  run.onOwnState(Buffer.from('x'));
  run.onOwnState(Buffer.from('y'));
  run.stopping();
  clock.advance(REPUBLISH_GAP_MS * 2);
  t.is(published.length, 1, 'the scheduled one was dropped');
  t.false(run.onOwnState(Buffer.from(run.offline)));
  t.is(run.current, run.offline);
});

test('run-disconnected drops a scheduled republish (the next connection publishes its online)', (t) => {
  const { run, published, clock } = setup();
  run.connect();
  run.onOwnState(Buffer.from('x'));
  run.onOwnState(Buffer.from('y'));
  run.disconnected();
  clock.advance(REPUBLISH_GAP_MS * 2);
  t.is(published.length, 1);
});

for (const [name, step] of [
  ['back 1 h', -3_600_000],
  ['forward 1 h', 3_600_000],
] as const) {
  test(`run-republish-gap-is-monotonic: wall ${name} → still one republish per gap, and the refusal log still one line per gap`, (t) => {
    const { run, published, lines, clock } = setup();
    run.connect();
    run.onOwnState(Buffer.from('{"online":false}'));
    t.is(published.length, 1);
    clock.stepWall(step);
    run.onOwnState(Buffer.from('{"online":false}'));
    t.is(published.length, 1, 'inside the gap: scheduled, not sent');
    clock.advance(REPUBLISH_GAP_MS);
    t.is(published.length, 2, 'sent one gap later, not an hour later');
    clock.advance(10_000);
    run.onOwnState(Buffer.from('{"online":false}'));
    t.is(lines.length, 2, 'the log gap passed in real time');
  });
}

test('run-unavailable-publishes-its-own-newer-offline-and-back: phones and peers accept both while the process lives; the will is never published', (t) => {
  const { run, published, clock } = setup();
  const will = run.connect();
  const v = new LivenessVerifier(keys);
  t.true(v.check('cm-a', Buffer.from(run.online)).ok);
  t.true(run.setAvailable(false));
  t.false(run.setAvailable(false), 'no change, no publish');
  t.is(published.length, 1);
  const offline = published[0]!;
  t.not(offline, will, 'not the will');
  t.like(body(offline), { online: false, seq: 3 });
  t.false('will' in body(offline));
  t.is(run.current, offline);
  t.like(v.check('cm-a', Buffer.from(offline)), { ok: true, online: false, run: { bdSeq: 5, conn: 1, seq: 3 } });
  // Our own offline on our topic is what we mean; our online there (a replay) is answered with the offline.
  t.false(run.onOwnState(Buffer.from(offline)));
  t.true(run.onOwnState(Buffer.from(run.online)));
  t.is(published.at(-1), offline);
  clock.advance(REPUBLISH_GAP_MS);
  t.true(run.setAvailable(true));
  const back = published.at(-1)!;
  t.like(body(back), { online: true, seq: 4 });
  t.is(run.online, back);
  t.like(v.check('cm-a', Buffer.from(back)), { ok: true, online: true });
  t.false(published.includes(will), 'the will\'s bytes were never published while the process lives');
  // The recorded offline replayed now: refused (strictly newer only).
  t.like(v.check('cm-a', Buffer.from(offline)), { ok: false, code: 'STATE_STALE', quiet: false });
});

test('run-seq-rises-on-every-state-it-signs: wills, onlines, its own offlines, across connections', (t) => {
  const { run } = setup();
  const seqs: number[] = [];
  seqs.push(body(run.connect()).seq as number, body(run.current).seq as number);
  run.setAvailable(false);
  seqs.push(body(run.current).seq as number);
  seqs.push(body(run.connect()).seq as number, body(run.current).seq as number);
  t.like(body(run.current), { online: false, conn: 2 }, 'a reconnect while unavailable starts offline');
  run.setAvailable(true);
  seqs.push(body(run.current).seq as number);
  t.deepEqual(seqs, [1, 2, 3, 4, 5, 6]);
  t.is(run.seq, 6);
});

test('run-answer-signs-the-current-state-with-the-challenge: same seq, fresh signature; none once stopping', (t) => {
  const { run } = setup();
  t.is(run.answer('C'.repeat(22)), undefined, 'not connected yet');
  run.connect();
  const a = run.answer('C'.repeat(22))!;
  t.deepEqual(body(a), { ...body(run.current), challenge: 'C'.repeat(22) });
  run.setAvailable(false);
  t.like(body(run.answer('D'.repeat(22))!), { online: false, seq: 3, challenge: 'D'.repeat(22) });
  run.stopping();
  t.is(run.answer('E'.repeat(22)), undefined);
  t.is(run.current, run.offline, 'stopping: the will is ours to publish');
});
