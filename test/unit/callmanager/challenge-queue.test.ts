/**
 * The call manager's queue of liveness challenges (src/callmanager/challenge-queue.ts):
 * bounded signing, one place per challenger, first asked first answered.
 */
import test from 'ava';
import { ChallengeQueue } from '../../../src/callmanager/challenge-queue.js';
import { CHALLENGE_TTL_MS } from '../../../src/protocol/cm-liveness.js';

const ch = (i: number): string => `challenge-${String(i).padStart(12, '0')}`;

test('challenge-one-place-per-challenger: a flood from one challenger is one answer, with its newest challenge', (t) => {
  const q = new ChallengeQueue({ perSecond: 10 });
  for (let i = 0; i < 1000; i++) q.offer('hostile', ch(i), 0);
  t.is(q.pending, 1);
  t.deepEqual(q.take(0), [{ from: 'hostile', challenge: ch(999) }]);
  t.is(q.answered, 1);
});

test('challenge-per-challenger-gap: a challenger is answered at most once per gap', (t) => {
  const q = new ChallengeQueue({ perSecond: 100, gapMs: 1000 });
  q.offer('p1', ch(1), 0);
  t.is(q.take(0).length, 1);
  q.offer('p1', ch(2), 10);
  t.deepEqual(q.take(10), [], 'inside its gap');
  t.is(q.nextIn(10), 990);
  t.deepEqual(q.take(1000), [{ from: 'p1', challenge: ch(2) }]);
});

test('challenge-bounded-signing-fair: at most perSecond answers a second for all; a hostile challenger does not crowd out the others', (t) => {
  const q = new ChallengeQueue({ perSecond: 5, gapMs: 1000 });
  let answered = 0;
  const others = new Map<string, number>();
  // The hostile one asks every 10 ms; 20 honest phones ask once each at t=0..19.
  for (let now = 0; now <= 10_000; now += 10) {
    q.offer('hostile', ch(now), now);
    if (now < 200 && now % 10 === 0) q.offer(`p${now / 10}`, ch(now), now);
    for (const a of q.take(now)) {
      answered++;
      if (a.from !== 'hostile') others.set(a.from, now);
    }
  }
  t.true(answered <= 5 * 11, `${answered} answers in 10 s at 5/s (+ one second's burst)`);
  t.is(others.size, 20, 'every honest challenger was answered');
  t.true(Math.max(...others.values()) <= 6000, `the last honest answer at ${Math.max(...others.values())} ms: the hostile one took at most one place per second`);
});

test('challenge-queue-bounded: beyond maxPending new challengers are dropped; expired challenges are dropped unanswered', (t) => {
  const q = new ChallengeQueue({ perSecond: 1, maxPending: 3 });
  t.true(q.offer('a', ch(1), 0));
  t.true(q.offer('b', ch(2), 0));
  t.true(q.offer('c', ch(3), 0));
  t.false(q.offer('d', ch(4), 0));
  t.true(q.offer('a', ch(5), 0), 'a challenger already waiting may renew');
  t.is(q.dropped, 1);
  t.is(q.take(0).length, 1);
  t.deepEqual(q.take(CHALLENGE_TTL_MS + 1), [], 'the two left expired');
  t.is(q.pending, 0);
  t.is(q.dropped, 3);
  t.is(q.nextIn(CHALLENGE_TTL_MS + 1), undefined);
});
