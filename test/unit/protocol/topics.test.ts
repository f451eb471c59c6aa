import test from 'ava';
import { topics } from '../../../src/protocol/topics.js';

test('keep-alive topics: the contract one, the per-phone one and its filter', (t) => {
  const tp = topics('ipphone/v1');
  t.is(tp.cmKeepalive('cm-a'), 'ipphone/v1/cm/cm-a/keepalive');
  t.is(tp.cmPhoneKeepalive('cm-a', 'p-0001'), 'ipphone/v1/cm/cm-a/keepalive/p-0001');
  t.is(tp.cmPhoneKeepaliveFilter('cm-a'), 'ipphone/v1/cm/cm-a/keepalive/+');
  // The per-phone topic is the contract's with one more level: what the call manager strips.
  t.is(tp.cmPhoneKeepalive('cm-a', 'p1').slice(tp.cmKeepalive('cm-a').length + 1), 'p1');
  t.is(topics('site/x/').cmPhoneKeepalive('cm-b', 'p2'), 'site/x/cm/cm-b/keepalive/p2');
  t.is(tp.idOf(tp.cmPhoneKeepalive('cm-a', 'p1'), 'cm'), 'cm-a');
});

test('per-phone keep-alive topic refuses ids that are not one safe topic level', (t) => {
  const tp = topics();
  for (const bad of ['', 'a/b', '+', '#', 'p#1', 'x'.repeat(65)]) {
    t.throws(() => tp.cmPhoneKeepalive('cm-a', bad), { instanceOf: TypeError }, `phone ${JSON.stringify(bad)}`);
    t.throws(() => tp.cmPhoneKeepalive(bad, 'p1'), { instanceOf: TypeError }, `cm ${JSON.stringify(bad)}`);
  }
});
