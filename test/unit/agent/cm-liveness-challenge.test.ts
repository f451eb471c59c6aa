/**
 * The agent's side of liveness challenges (src/protocol/cm-liveness.ts,
 * src/agent/agent-messages.ts) on one FakeClock over the in-memory transport:
 * an online it cannot order is challenged on the broker it came from, on the
 * topic that names the phone; only the signed answer carrying that challenge
 * brings the call manager back; a dead run's replayed online is asked about a
 * bounded number of times and never believed.
 */
import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { CHALLENGE_TRIES } from '../../../src/protocol/cm-liveness.js';
import { encodeCmState, type CmStateBody } from '../../../src/protocol/cm-state.js';
import { generateKeyPair, parsePrivateKey, signEnvelope, trustedKeys } from '../../../src/protocol/envelope.js';
import { agentOn, BA } from '../../helpers/agent-loop.js';

const pair = generateKeyPair();
const key = parsePrivateKey(pair.privatePem);
const STATE = 'ipphone/cm/cm-a/state';
const CHALLENGE = 'ipphone/cm/cm-a/challenge/p1';
const HIGH = { cm: 'cm-a', bdSeq: 9_000, conn: 1, nonce: 'nonce-of-the-high-run' };
const LOW = { cm: 'cm-a', bdSeq: 5_000, conn: 1, nonce: 'nonce-of-reinstalled' };
const st = (b: Omit<CmStateBody, 'online' | 'seq'>, online: boolean, seq: number, extra: Partial<CmStateBody> = {}): string =>
  encodeCmState({ ...b, online, seq, ...extra }, (x) => signEnvelope(x, key, 'ops-1'));

async function homedOnBackupAfterTheWill() {
  const clock = new FakeClock();
  const { agent, net, run } = await agentOn(clock, {
    config: { trust: { requireSigned: true, keys: { 'ops-1': pair.publicPem } }, fallback: { holdMs: 2000 } },
    deps: { keys: trustedKeys({ 'ops-1': pair.publicPem }) },
  });
  await run(3000);
  net.deliver(BA, STATE, st(HIGH, true, 2));
  await run(100);
  // cm-a's run dies: its will; the phone leaves for cm-b.
  net.alive.delete('cm-a');
  net.deliver(BA, STATE, st(HIGH, false, 1, { will: true }));
  await run(3000);
  return { clock, agent, net, run };
}

const challenges = (net: { published: { topic: string; payload: string; broker: string }[] }) =>
  net.published.filter((m) => m.topic === CHALLENGE).map((m) => ({ broker: m.broker, challenge: (JSON.parse(m.payload) as { challenge: string }).challenge }));

test('liveness-unordered-online-challenged (agent): a reinstalled call manager\'s lower online is challenged on its broker and taken back by its answer', async (t) => {
  const { agent, net, run } = await homedOnBackupAfterTheWill();
  t.teardown(() => agent.stop());
  t.is(agent.home, 'cm-b');
  net.alive.add('cm-a');
  net.deliver(BA, STATE, st(LOW, true, 2));
  const asked = challenges(net);
  t.is(asked.length, 1);
  t.is(asked[0]!.broker, BA);
  await run(5000);
  t.is(agent.home, 'cm-b', 'not taken back on the trigger alone');
  net.deliver(BA, `${CHALLENGE}/answer`, st(LOW, true, 2, { challenge: challenges(net).at(-1)!.challenge }));
  await run(5000);
  t.is(agent.home, 'cm-a', 'back home after the hold');
});

test('liveness-answer-binds-challenge (agent): a replayed online of the dead run is asked about at most CHALLENGE_TRIES times and never believed', async (t) => {
  const { agent, net, run } = await homedOnBackupAfterTheWill();
  t.teardown(() => agent.stop());
  net.alive.add('cm-a'); // even with its keep-alives answered, the phone may not go back to a call manager it holds offline
  net.deliver(BA, STATE, st({ ...HIGH, bdSeq: 8_000, nonce: 'nonce-of-an-older-run' }, true, 2));
  // A forged answer: a genuine state of the dead run with someone else's challenge in it.
  net.deliver(BA, `${CHALLENGE}/answer`, st(HIGH, true, 2, { challenge: 'someone-elses-challenge-00' }));
  await run(40_000);
  t.is(challenges(net).length, CHALLENGE_TRIES);
  t.is(agent.home, 'cm-b');
});
