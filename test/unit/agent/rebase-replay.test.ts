/**
 * A rebase is one-time (codec.ts checkRebase): taken only while the phone holds
 * exactly the version it names. That rule alone assumed a version, once left,
 * is never held again — but a config that sets `pointers` takes them at the
 * held version + 1 (agent.ts), so after `ipphone-admin pointers --rebase
 * --version <held − 1>` the next such config brings the phone back to the very
 * version the rebase named, and the same rebase, replayed within its lifetime
 * (an open broker, a recorded message), took the phone down again and put its
 * old list back (found by the simulator's hostile phone replaying
 * re-provisioning, src/sim/replay.ts; seed 110 after a power cut). The phone
 * now remembers the rebases it took until they expire, in its saved state too,
 * and refuses one again (VERSION_REPLAYED).
 */
import test from 'ava';
import { configBody, rebaseBody } from '../../../src/admin/bodies.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { generateKeyPair, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { checkAgentState } from '../../../src/store/agent-state-store.js';
import type { AgentState, StateStore } from '../../../src/agent/ports.js';
import { agentOn, BA } from '../../helpers/agent-loop.js';

const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);

test('rebase-replayed-after-the-same-version-is-reached-again: a rebase taken, then a config\'s pointers at held + 1 (the version the rebase named again), and the same rebase replayed is refused: the version and list stay', async (t) => {
  const clock = new FakeClock();
  const { agent, net, run } = await agentOn(clock, { config: { trust: { requireSigned: false, keys: { 'ops-1': keys.publicPem } } }, deps: { keys: trusted } });
  t.teardown(() => agent.stop());
  await run(3_000);
  const A = { ...agent.state.list[0]! };
  const B = { ...agent.state.list[1]! };
  // The phone holds version H (a list pushed to it).
  const H = clock.now() + 60_000;
  net.deliver(BA, 'ipphone/phone/p1/pointers', signEnvelope({ version: H, reason: 'admin', list: [A, B], phone: 'p1' }, priv, 'ops-1'));
  await run(500);
  t.is(agent.state.listVersion, H);
  // The operator rebases it to H − 1 (`--rebase --version H-1`).
  const rebase = signEnvelope(rebaseBody([B, A], 'admin', { phone: 'p1', now: clock.now(), held: H, version: H - 1, expiresInMs: 600_000 }), priv, 'ops-1');
  net.deliver(BA, 'ipphone/phone/p1/pointers', rebase);
  await run(500);
  t.is(agent.state.listVersion, H - 1);
  t.deepEqual(agent.state.list.map((p) => p.id), ['cm-b', 'cm-a']);
  // A config that sets pointers: taken at the held version + 1 — H again.
  net.deliver(BA, 'ipphone/phone/p1/config', signEnvelope(configBody({ pointers: [A, B] }, { phone: 'p1', now: clock.now() }), priv, 'ops-1'));
  await run(500);
  t.is(agent.state.listVersion, H);
  t.deepEqual(agent.state.list.map((p) => p.id), ['cm-a', 'cm-b']);
  // The recorded rebase, replayed a minute later (within its 10 minutes): refused.
  await run(60_000);
  const heldList = agent.state.list.map((p) => p.id);
  net.deliver(BA, 'ipphone/phone/p1/pointers', rebase);
  await run(500);
  t.is(agent.state.listVersion, H, 'the replayed rebase did not take the version down again');
  t.deepEqual(agent.state.list.map((p) => p.id), heldList);
  t.true(net.agentEvents.some((e) => e.type === 'rejected' && e.code === 'VERSION_REPLAYED'), JSON.stringify(net.agentEvents.filter((e) => e.type === 'rejected')));
});

/** A store that keeps what is saved, through {@link checkAgentState} as the file store loads it. */
class KeptStore implements StateStore {
  writes = 0;
  saved: AgentState | null = null;
  async load(): Promise<AgentState | null> {
    if (this.saved === null) return null;
    const c = checkAgentState(JSON.parse(JSON.stringify(this.saved)));
    if (!c.ok) throw new Error(c.problems.join('; '));
    return c.state;
  }
  async save(st: AgentState): Promise<boolean> {
    this.writes++;
    this.saved = JSON.parse(JSON.stringify(st)) as AgentState;
    return true;
  }
}

test('rebase-replayed-after-a-restart: the rebases taken are saved with the state, so after a restart the same rebase, replayed once the phone holds the version it named again, is still refused', async (t) => {
  const clock = new FakeClock();
  const store = new KeptStore();
  const config = { trust: { requireSigned: false, keys: { 'ops-1': keys.publicPem } } };
  const first = await agentOn(clock, { config, deps: { keys: trusted, store } });
  await first.run(3_000);
  const [A, B] = [{ ...first.agent.state.list[0]! }, { ...first.agent.state.list[1]! }];
  const H = clock.now() + 60_000;
  first.net.deliver(BA, 'ipphone/phone/p1/pointers', signEnvelope({ version: H, reason: 'admin', list: [A, B], phone: 'p1' }, priv, 'ops-1'));
  await first.run(500);
  const rebase = signEnvelope(rebaseBody([B, A], 'admin', { phone: 'p1', now: clock.now(), held: H, version: H - 1, expiresInMs: 600_000 }), priv, 'ops-1');
  first.net.deliver(BA, 'ipphone/phone/p1/pointers', rebase);
  await first.run(500);
  t.is(first.agent.state.listVersion, H - 1);
  t.deepEqual(store.saved?.rebasesTaken?.map((r) => [r.rebase, r.version]), [[H, H - 1]], 'saved with the lower version');
  await first.agent.stop();
  // Power back: the same state, a new process.
  const second = await agentOn(clock, { config, deps: { keys: trusted, store } });
  t.teardown(() => second.agent.stop());
  await second.run(3_000);
  t.is(second.agent.state.listVersion, H - 1);
  second.net.deliver(BA, 'ipphone/phone/p1/config', signEnvelope(configBody({ pointers: [A, B] }, { phone: 'p1', now: clock.now() }), priv, 'ops-1'));
  await second.run(500);
  t.is(second.agent.state.listVersion, H, 'the config\'s pointers at held + 1: the version the rebase named');
  second.net.deliver(BA, 'ipphone/phone/p1/pointers', rebase);
  await second.run(500);
  t.is(second.agent.state.listVersion, H, 'the replayed rebase is refused after the restart');
  t.true(second.net.agentEvents.some((e) => e.type === 'rejected' && e.code === 'VERSION_REPLAYED'));
});

test('rebases-taken-expire: a rebase past its expires is forgotten (the codec refuses it as EXPIRED anyway), so the saved state stays small', async (t) => {
  const clock = new FakeClock();
  const store = new KeptStore();
  const { agent, net, run } = await agentOn(clock, { config: { trust: { requireSigned: false, keys: { 'ops-1': keys.publicPem } } }, deps: { keys: trusted, store } });
  t.teardown(() => agent.stop());
  await run(3_000);
  const [A, B] = [{ ...agent.state.list[0]! }, { ...agent.state.list[1]! }];
  const H = clock.now() + 60_000;
  net.deliver(BA, 'ipphone/phone/p1/pointers', signEnvelope({ version: H, reason: 'admin', list: [A, B], phone: 'p1' }, priv, 'ops-1'));
  await run(500);
  net.deliver(BA, 'ipphone/phone/p1/pointers', signEnvelope(rebaseBody([B, A], 'admin', { phone: 'p1', now: clock.now(), held: H, version: H - 10, expiresInMs: 60_000 }), priv, 'ops-1'));
  await run(500);
  t.is(store.saved?.rebasesTaken?.length, 1);
  await run(61_000);
  // The next rebase taken prunes the expired one.
  const held = agent.state.listVersion;
  net.deliver(BA, 'ipphone/phone/p1/pointers', signEnvelope(rebaseBody([A, B], 'admin', { phone: 'p1', now: clock.now(), held, version: held - 1, expiresInMs: 60_000 }), priv, 'ops-1'));
  await run(500);
  t.is(agent.state.listVersion, held - 1);
  t.deepEqual(store.saved?.rebasesTaken?.map((r) => r.rebase), [held]);
});
