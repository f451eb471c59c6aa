import test from 'ava';
import { FakeClock } from '../../../src/lib/clock.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../../src/protocol/envelope.js';
import type { Pointer } from '../../../src/protocol/types.js';
import { ListBook } from '../../../src/callmanager/list-book.js';
import { PhoneTable } from '../../../src/callmanager/phone-table.js';
import { Responder, shouldPush } from '../../../src/callmanager/responder.js';

/** Issue #10 "the arrival push undoes rebalance moves": who is pushed the demoted list on arrival. */

const group: Pointer[] = ['cm-a', 'cm-b', 'cm-c'].map((id, i) => ({ id, broker: 'mqtt://127.0.0.1:1883', services: `http://127.0.0.1:${8081 + i}/services` }));
const priv = parsePrivateKey(generateKeyPair().privatePem);

function setup() {
  const clock = new FakeClock(10_000);
  const book = new ListBook({ group, baseVersion: 3, clock, lazyRestore: true, sign: (b) => signEnvelope(b, priv, 'ops-1') });
  const r = new Responder({ cmId: 'cm-c', book, table: new PhoneTable(1000), clock });
  book.setOffline(['cm-a']);
  const ka = (o: Record<string, unknown>) => {
    const res = r.handle(Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 3, busy: false, ...o })));
    if (typeof res === 'string') throw new Error(res);
    return res;
  };
  return { clock, book, r, ka };
}

test('a phone moved here by a live peer (prev names it) is not pushed the group list, although another peer is down', (t) => {
  const { ka } = setup();
  // cm-b rebalanced p1 here: its list (cm-b's version, below ours) puts cm-c first.
  t.is(ka({ prev: 'cm-b', pointersVersion: 4 }).push, undefined);
});

test('a phone arriving from the failed peer (prev) is pushed the demoted list', (t) => {
  const { ka } = setup();
  const res = ka({ prev: 'cm-a' });
  t.deepEqual(res.push?.list.map((p) => p.id), ['cm-b', 'cm-c', 'cm-a']);
});

test('a booting phone (prev null) is not taken for a failover arrival; one that does not say (no prev) is, as before', (t) => {
  t.is(setup().ka({ prev: null }).push, undefined);
  t.truthy(setup().ka({}).push);
});

test('a busy phone arriving from the failed peer is pushed only once it is idle (a failover push moves a phone at once)', (t) => {
  const { ka } = setup();
  t.is(ka({ prev: 'cm-a', busy: true }).push, undefined);
  t.is(ka({ prev: 'cm-a', busy: true, seq: 2 }).push, undefined);
  const idle = ka({ prev: 'cm-a', busy: false, seq: 3 });
  t.truthy(idle.push, 'owed push sent when idle');
  t.is(ka({ prev: 'cm-a', busy: false, seq: 4 }).push, undefined, 'once');
});

test('push decision table: prev and busy', (t) => {
  const base = { probe: false, newArrival: true, peersOffline: 1, phoneVersion: 1, listVersion: 5 };
  t.true(shouldPush({ ...base, fromFailed: true }));
  t.false(shouldPush({ ...base, fromFailed: false }));
  t.true(shouldPush({ ...base }), 'unknown origin: the old guess');
  t.false(shouldPush({ ...base, fromFailed: true, busy: true }));
});
