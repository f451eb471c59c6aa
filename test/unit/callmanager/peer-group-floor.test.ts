import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { validateCmConfig, type CmConfig } from '../../../src/config/cm-config.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { decodeAck, openPointers } from '../../../src/protocol/codec.js';
import { encodeCmState, parseCmStateBody, type CmStateBody } from '../../../src/protocol/cm-state.js';
import { generateKeyPair, openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { topics } from '../../../src/protocol/topics.js';
import type { Envelope, Pointer, PointersBody } from '../../../src/protocol/types.js';
import { CmPeers } from '../../../src/callmanager/cm-peers.js';
import { groupDigest, groupFloorFor, storeRaisedFloor } from '../../../src/callmanager/group-floor.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder } from '../../../src/callmanager/responder.js';
import { signRetired } from '../../../src/callmanager/retired.js';
import { CmRun } from '../../../src/callmanager/run-state.js';
import { PEER_AHEAD_MS } from '../../../src/callmanager/version-clock.js';

/**
 * Floors raised when a peer's group changes (group-floor.ts; the group simulation's seed 600,012):
 * a member that verifies a peer's state announcing its OWN group with a higher floor takes that
 * floor, so a phone holding a list a member still running the old group signed above our floor
 * is given the new group at its next ack.
 */

const keys = generateKeyPair();
const priv = parsePrivateKey(keys.privatePem);
const trust = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);
const stranger = parsePrivateKey(generateKeyPair().privatePem);
const NOW = 1_780_000_000_000;
const member = (id: string) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://${id}.example/services`, capacity: 100 });
const ptr = (id: string): Pointer => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://${id}.example/services` });
const T = topics('ipphone/v1');

function config(group: string[], retired: string[]): CmConfig {
  const r = validateCmConfig({ cmId: 'cm-a', broker: 'mqtt://127.0.0.1:1883', group: group.map(member), retired, signingKey: 'k.pem', keyId: 'ops-1', topicPrefix: 'ipphone/v1' });
  if (!r.ok) throw new Error(r.problems.join('; '));
  return r.config;
}

const NEW = { group: ['cm-a', 'cm-c'], retired: ['cm-b'] };
const DIGEST = groupDigest(NEW.group.map(ptr), NEW.retired);
const OLD_DIGEST = groupDigest(['cm-a', 'cm-b', 'cm-c'].map(ptr));

/** cm-a restarted with the new group at `floor`, its peers wired as call-manager.ts does. */
function memberA(floor: number, o: { offline?: string[] } = {}) {
  const clock = new FakeClock(NOW);
  const c = config(NEW.group, NEW.retired);
  const sign = (b: PointersBody): Envelope => signEnvelope(b, priv, 'ops-1');
  const book = new ListBook({ group: NEW.group.map(ptr), baseVersion: floor, clock, bind: true, sign: signRetired(sign, NEW.retired) });
  if (o.offline !== undefined) book.setOffline(o.offline);
  const table = new PhoneTable(1000);
  const responder = new Responder({ cmId: 'cm-a', book, table, clock });
  const stored: number[] = [];
  const peers = new CmPeers({
    config: c,
    log: silentLogger(),
    clock,
    topics: T,
    phoneBase: 'ipphone/v1/phone/',
    mqttConnect: () => {
      throw new Error('no broker in this test');
    },
    book,
    table,
    responder,
    trust,
    publish: () => undefined,
    pushList: () => undefined,
    connected: () => true,
    groupDigest: DIGEST,
    floorRaised: (f) => stored.push(f),
  });
  /** The ack a phone holding `version` gets: the list version given, or undefined for a short ack. */
  const ack = (phone: string, version: number): number | undefined => {
    const res = responder.handle(Buffer.from(JSON.stringify({ phone, seq: 1, pointersVersion: version, busy: false })));
    if (typeof res === 'string') throw new Error(res);
    const a = decodeAck(Buffer.from(res.ack));
    if (a.pointers === undefined) return undefined;
    const body = openPointers(a.pointers, trust, { phoneId: phone, heldVersion: version, now: clock.now() });
    t0.deepEqual(body.list.map((p) => p.id), ['cm-a', 'cm-c']);
    t0.true(body.owns?.includes('cm-b') === true);
    return body.version;
  };
  return { book, peers, stored, ack, clock };
}
let t0: { deepEqual(a: unknown, b: unknown): void; true(v: boolean): void };

let seq = 0;
/** A signed state of peer `cm` (a fresh run each call: the verifier takes it as a restart). */
function state(cm: string, announce: { group: string; floor: number } | undefined, key = priv): Buffer {
  seq++;
  const body: CmStateBody = { cm, online: true, bdSeq: seq, conn: 1, nonce: `nonce-${String(seq).padStart(4, '0')}`, seq: 1, ...(announce ?? {}) };
  return Buffer.from(encodeCmState(body, (b) => signEnvelope(b, key, 'ops-1')));
}

test('a peer announcing our group with a higher floor raises ours: a phone holding a version between the two floors gets the group list above it in its next ack', (t) => {
  t0 = t;
  const a = memberA(1000);
  t.is(a.ack('p1', 3000), undefined, 'before: at or above our floor, a short ack (the gap of seed 600,012)');
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', { group: DIGEST, floor: 5000 }));
  t.is(a.book.floor, 5000);
  t.deepEqual(a.stored, [5000], 'stored once (group-floor.ts storeRaisedFloor)');
  t.is(a.ack('p1', 3000), 5000, 'the group list at the peer\'s floor: the version every member of the group gives there');
  t.is(a.ack('p2', 6000), undefined, 'a phone above the raised floor holds a list of the new group: short ack');
  t.true(a.book.lastVersion >= 5000, 'later versions are issued above it');
});

test('a raised floor with a peer offline: the list is issued above the floor', (t) => {
  t0 = t;
  const a = memberA(1000, { offline: ['cm-c'] });
  const floor = a.book.floor + 60_000;
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', { group: DIGEST, floor }));
  t.is(a.book.floor, floor);
  t.true(a.book.version > floor, 'not the number the peer\'s all-online list carries: ours is arranged otherwise');
  t.is(a.ack('p1', floor - 1), a.book.version);
});

test('what changes nothing: another group, a forged state, a floor beyond the bound for a peer\'s versions (wall + 23 h), a lower floor, a stranger, a repeat', (t) => {
  t0 = t;
  const a = memberA(4000);
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', { group: OLD_DIGEST, floor: 9000 }));
  t.is(a.book.floor, 4000, 'a peer still running the old group');
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', { group: DIGEST, floor: 9000 }, stranger));
  t.is(a.book.floor, 4000, 'a state signed by a key we do not trust');
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', { group: DIGEST, floor: NOW + PEER_AHEAD_MS + 1 }));
  t.is(a.book.floor, 4000, 'beyond the version clock\'s bound for peers (version-clock.ts)');
  t.is(a.peers.floorsRefused, 1, 'counted');
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', { group: DIGEST, floor: 3000 }));
  t.is(a.book.floor, 4000, 'a lower floor');
  a.peers.onMessage(T.cmState('cm-z'), state('cm-z', { group: DIGEST, floor: 9000 }));
  t.is(a.book.floor, 4000, 'not a peer of the configured group');
  a.peers.onMessage(T.cmState('cm-c'), state('cm-c', undefined));
  t.is(a.book.floor, 4000, 'a peer from before: no announcement');
  t.deepEqual(a.stored, []);
  t.is(a.ack('p1', 4500), undefined);
  const s = state('cm-c', { group: DIGEST, floor: 9000 });
  a.peers.onMessage(T.cmState('cm-c'), s);
  a.peers.onMessage(T.cmState('cm-c'), s);
  t.is(a.book.floor, 9000);
  t.deepEqual(a.stored, [9000], 'the same state again changes nothing, writes nothing');
});

test('the raised floor survives a restart: the group slot keeps it', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-peer-floor-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const group = NEW.group.map(ptr);
  const first = await groupFloorFor({ dir, cmId: 'cm-a', group, retired: NEW.retired, pointersVersion: 1, now: NOW }, silentLogger());
  t.true(await storeRaisedFloor({ dir, cmId: 'cm-a', group, retired: NEW.retired }, first + 5000));
  t.false(await storeRaisedFloor({ dir, cmId: 'cm-a', group, retired: NEW.retired }, first + 10), 'a lower floor: no write');
  t.is(await groupFloorFor({ dir, cmId: 'cm-a', group, retired: NEW.retired, pointersVersion: 1, now: NOW + 1000 }, silentLogger()), first + 5000, 'the same group at the next start: the raised floor');
});

test('every state a member signs announces its group digest and floor; a body without them still parses (a peer from before)', (t) => {
  const run = new CmRun({ cmId: 'cm-a', bdSeq: 7, sign: (b) => signEnvelope(b, priv, 'ops-1'), clock: new FakeClock(NOW), publish: () => undefined, randomBytes: (n) => Buffer.alloc(n, 1), announce: () => ({ group: DIGEST, floor: 4242 }) });
  const will = run.connect();
  for (const s of [will, run.online]) {
    const body = parseCmStateBody(openEnvelope(JSON.parse(s) as Envelope, trust));
    t.is(body.group, DIGEST);
    t.is(body.floor, 4242);
  }
  const old = parseCmStateBody(Buffer.from(JSON.stringify({ cm: 'cm-b', online: true, bdSeq: 1, conn: 1, nonce: 'abcdefgh', seq: 1 })));
  t.is(old.group, undefined);
  t.throws(() => parseCmStateBody(Buffer.from(JSON.stringify({ cm: 'cm-b', online: true, bdSeq: 1, conn: 1, nonce: 'abcdefgh', seq: 1, group: DIGEST }))), { message: /floor/ }, 'group without floor');
  t.throws(() => parseCmStateBody(Buffer.from(JSON.stringify({ cm: 'cm-b', online: true, bdSeq: 1, conn: 1, nonce: 'abcdefgh', seq: 1, group: 'a b', floor: 3 }))), { message: /group/ });
});
