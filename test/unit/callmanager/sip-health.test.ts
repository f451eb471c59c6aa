import test from 'ava';
import { nextSipHealth, SIP_HEALTH_START, type SipHealthState, type SipProbeResult } from '../../../src/callmanager/sip-health.js';

const rows: { from: SipHealthState; input: SipProbeResult; limit: number; to: SipHealthState; changed?: 'online' | 'offline' }[] = [
  { from: SIP_HEALTH_START, input: 'answered', limit: 3, to: { online: true, misses: 0 } },
  { from: SIP_HEALTH_START, input: 'missed', limit: 3, to: { online: true, misses: 1 } },
  { from: { online: true, misses: 1 }, input: 'missed', limit: 3, to: { online: true, misses: 2 } },
  { from: { online: true, misses: 2 }, input: 'missed', limit: 3, to: { online: false, misses: 3 }, changed: 'offline' },
  { from: { online: true, misses: 2 }, input: 'answered', limit: 3, to: { online: true, misses: 0 } },
  { from: { online: false, misses: 3 }, input: 'missed', limit: 3, to: { online: false, misses: 4 } },
  { from: { online: false, misses: 9 }, input: 'answered', limit: 3, to: { online: true, misses: 0 }, changed: 'online' },
  { from: SIP_HEALTH_START, input: 'missed', limit: 1, to: { online: false, misses: 1 }, changed: 'offline' },
];

for (const r of rows) {
  test(`${JSON.stringify(r.from)} + ${r.input} (limit ${r.limit}) → ${JSON.stringify(r.to)} ${r.changed ?? ''}`, (t) => {
    const step = nextSipHealth(r.from, r.input, r.limit);
    t.deepEqual(step.state, r.to);
    t.is(step.changed, r.changed);
  });
}

test('an answer between misses starts the count again: offline only after missLimit in a row', (t) => {
  let s = SIP_HEALTH_START;
  const changes: string[] = [];
  for (const input of ['missed', 'missed', 'answered', 'missed', 'missed', 'missed', 'missed', 'answered'] as const) {
    const step = nextSipHealth(s, input, 3);
    s = step.state;
    if (step.changed) changes.push(step.changed);
  }
  t.deepEqual(changes, ['offline', 'online']);
});
