import test from 'ava';
import { KeepaliveTopics, keepaliveTopicKind, type KeepaliveTopicKind } from '../../../src/agent/keepalive-topic.js';
import { topics, type Topics } from '../../../src/protocol/topics.js';

const none = { username: null, cert: null };

test('keepalive.topic: auto picks per-phone exactly when the connection carries an identity', (t) => {
  const rows: Array<[string, { username: string | null; cert: string | null }, 'auto' | 'shared' | 'per-phone', KeepaliveTopicKind]> = [
    ['no credentials', none, 'auto', 'shared'],
    ['client certificate', { username: null, cert: '/etc/p.crt' }, 'auto', 'per-phone'],
    ['user name', { username: 'p-1', cert: null }, 'auto', 'per-phone'],
    ['empty user name is none', { username: '', cert: null }, 'auto', 'shared'],
    ['explicit shared beats a certificate', { username: null, cert: '/etc/p.crt' }, 'shared', 'shared'],
    ['explicit per-phone without identity', none, 'per-phone', 'per-phone'],
  ];
  for (const [what, mqtt, topic, want] of rows) t.is(keepaliveTopicKind({ keepalive: { topic }, mqtt }), want, what);
});

test('KeepaliveTopics builds each call manager topic once', (t) => {
  const base = topics('ipphone/v1');
  let built = 0;
  const counting: Topics = {
    ...base,
    cmKeepalive: (id) => (built++, base.cmKeepalive(id)),
    cmPhoneKeepalive: (id, phone) => (built++, base.cmPhoneKeepalive(id, phone)),
  };
  const per = new KeepaliveTopics(counting, 'p1', 'per-phone');
  for (let i = 0; i < 100; i++) t.is(per.for(i % 2 === 0 ? 'cm-a' : 'cm-b'), `ipphone/v1/cm/${i % 2 === 0 ? 'cm-a' : 'cm-b'}/keepalive/p1`);
  t.is(built, 2);
  const shared = new KeepaliveTopics(counting, 'p1', 'shared');
  t.is(shared.for('cm-a'), 'ipphone/v1/cm/cm-a/keepalive');
  t.is(shared.for('cm-a'), 'ipphone/v1/cm/cm-a/keepalive');
  t.is(built, 3);
  t.throws(() => per.for('a/b'), { instanceOf: TypeError });
});
