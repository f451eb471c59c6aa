import test from 'ava';
import { PeerTracker } from '../../../src/callmanager/peers.js';

const b = (s: string): Buffer => Buffer.from(s);

test('unknown peers count as online; offline and back', (t) => {
  const p = new PeerTracker('cm-a', ['cm-a', 'cm-b', 'cm-c']);
  t.is(p.offline.size, 0);
  t.is(p.update('cm-b', b('{"online":true}')), 'same');
  t.is(p.update('cm-b', b('{"online":false}')), 'changed');
  t.deepEqual([...p.offline], ['cm-b']);
  t.true(p.isOffline('cm-b'));
  t.is(p.update('cm-b', b('{"online":false}')), 'same');
  t.is(p.update('cm-b', b('{"online":true}')), 'changed');
  t.is(p.offline.size, 0);
});

test('self and strangers are ignored; junk is invalid and changes nothing', (t) => {
  const p = new PeerTracker('cm-a', ['cm-a', 'cm-b']);
  t.is(p.update('cm-a', b('{"online":false}')), 'ignored');
  t.is(p.update('cm-z', b('{"online":false}')), 'ignored');
  t.is(p.update('cm-b', b('nope')), 'invalid');
  t.is(p.update('cm-b', b('{"online":"no"}')), 'invalid');
  t.is(p.update('cm-b', b('[]')), 'invalid');
  t.is(p.offline.size, 0);
});

test('a cleared retained state (empty payload) counts as online', (t) => {
  const p = new PeerTracker('cm-a', ['cm-a', 'cm-b']);
  p.update('cm-b', b('{"online":false}'));
  t.is(p.update('cm-b', Buffer.alloc(0)), 'changed');
  t.false(p.isOffline('cm-b'));
});
