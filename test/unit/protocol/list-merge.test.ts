import test from 'ava';
import { mergeGroupList } from '../../../src/protocol/list-merge.js';
import { MAX_POINTERS, validatePointerList } from '../../../src/protocol/pointers.js';
import type { Pointer } from '../../../src/protocol/types.js';

const ptr = (id: string): Pointer => ({ id, broker: `mqtt://${id}.example:1883`, services: `http://${id}.example/services` });
const ids = (l: readonly Pointer[]): string[] => l.map((p) => p.id);

test('a group list keeps the remote site the group does not own (issue #10: acks erase pointers outside the group)', (t) => {
  const held = [ptr('cm-a'), ptr('cm-b'), ptr('cm-r')];
  t.deepEqual(ids(mergeGroupList(held, [ptr('cm-a'), ptr('cm-b')], ['cm-a', 'cm-b'])), ['cm-a', 'cm-b', 'cm-r']);
  // a reorder of the group fills the group's slots; the foreign pointer keeps its own
  t.deepEqual(ids(mergeGroupList(held, [ptr('cm-b'), ptr('cm-a')], ['cm-a', 'cm-b'])), ['cm-b', 'cm-a', 'cm-r']);
  t.deepEqual(ids(mergeGroupList([ptr('cm-a'), ptr('cm-r'), ptr('cm-b')], [ptr('cm-b'), ptr('cm-a')], ['cm-a', 'cm-b'])), ['cm-b', 'cm-r', 'cm-a']);
});

test('group members the phone lacked go last; owned members the list leaves out are dropped', (t) => {
  const held = [ptr('cm-a'), ptr('cm-r'), ptr('cm-old')];
  const out = mergeGroupList(held, [ptr('cm-a'), ptr('cm-c')], ['cm-a', 'cm-c', 'cm-old']);
  t.deepEqual(ids(out), ['cm-a', 'cm-r', 'cm-c']);
});

test('without owns the list replaces the held one (operator lists, older call managers)', (t) => {
  t.deepEqual(ids(mergeGroupList([ptr('cm-a'), ptr('cm-r')], [ptr('cm-b')], undefined)), ['cm-b']);
});

test('idempotent: merging the same list again changes nothing', (t) => {
  const held = [ptr('cm-r'), ptr('cm-a'), ptr('cm-b'), ptr('cm-s')];
  const incoming = [ptr('cm-b'), ptr('cm-a'), ptr('cm-c')];
  const once = mergeGroupList(held, incoming, ['cm-a', 'cm-b', 'cm-c']);
  t.deepEqual(mergeGroupList(once, incoming, ['cm-a', 'cm-b', 'cm-c']), once);
});

test('bounded at 16: the group gives way first, at least one of its members stays', (t) => {
  const foreign = Array.from({ length: 6 }, (_, i) => ptr(`r${i}`));
  const group = Array.from({ length: 16 }, (_, i) => ptr(`g${i}`));
  const out = mergeGroupList([...foreign, group[0]!], group, ids(group));
  t.is(out.length, MAX_POINTERS);
  t.deepEqual(validatePointerList(out), []);
  t.deepEqual(ids(out).slice(0, 6), ids(foreign));
  t.deepEqual(ids(out).slice(6), ids(group).slice(0, 10));
  const allForeign = Array.from({ length: 16 }, (_, i) => ptr(`r${i}`));
  const out2 = mergeGroupList(allForeign, [ptr('g0')], ['g0']);
  t.is(out2.length, MAX_POINTERS);
  t.true(ids(out2).includes('g0'));
});
