import test from 'ava';
import { PeerTracker } from '../../../src/callmanager/peers.js';

test('unknown peers count as online; offline and back', (t) => {
  const p = new PeerTracker('cm-a', ['cm-a', 'cm-b', 'cm-c']);
  t.is(p.offline.size, 0);
  t.is(p.update('cm-b', true), 'same');
  t.is(p.update('cm-b', false), 'changed');
  t.deepEqual([...p.offline], ['cm-b']);
  t.true(p.isOffline('cm-b'));
  t.is(p.update('cm-b', false), 'same');
  t.is(p.update('cm-b', true), 'changed');
  t.is(p.offline.size, 0);
});

test('self and strangers are ignored', (t) => {
  const p = new PeerTracker('cm-a', ['cm-a', 'cm-b']);
  t.is(p.update('cm-a', false), 'ignored');
  t.is(p.update('cm-z', false), 'ignored');
  t.true(p.has('cm-b'));
  t.false(p.has('cm-a'));
  t.false(p.has('cm-z'));
  t.is(p.offline.size, 0);
});

test('an unreachable broker keeps a peer offline whatever its state says', (t) => {
  const p = new PeerTracker('cm-a', ['cm-a', 'cm-b']);
  t.true(p.setUnreachable(['cm-b'], true));
  t.is(p.update('cm-b', true), 'same');
  t.true(p.isOffline('cm-b'));
  t.true(p.setUnreachable(['cm-b'], false));
  t.false(p.isOffline('cm-b'));
});
