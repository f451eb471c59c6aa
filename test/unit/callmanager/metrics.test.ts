import test from 'ava';
import { escapeLabel, renderMetrics, type MetricsSnapshot } from '../../../src/callmanager/metrics.js';

const snap: MetricsSnapshot = {
  phonesHomed: 12,
  keepalivesTotal: 3456,
  keepalivesPerSecond: 12.5,
  keepalivesInvalidTotal: 2,
  pointerPushes: new Map([['failover', 4]]),
  rebalanceMovesTotal: 0,
  servicesRequestsTotal: 9,
  brokerConnected: true,
  acksDroppedTotal: 7,
};

test('every family has HELP and TYPE before its samples; values as given', (t) => {
  const text = renderMetrics(snap);
  t.true(text.endsWith('\n'));
  const lines = text.trimEnd().split('\n');
  const want: Record<string, [string, string[]]> = {
    ipphone_cm_phones_homed: ['gauge', ['ipphone_cm_phones_homed 12']],
    ipphone_cm_keepalives_total: ['counter', ['ipphone_cm_keepalives_total 3456']],
    ipphone_cm_keepalives_per_second: ['gauge', ['ipphone_cm_keepalives_per_second 12.5']],
    ipphone_cm_keepalives_invalid_total: ['counter', ['ipphone_cm_keepalives_invalid_total 2']],
    ipphone_cm_pointer_pushes_total: [
      'counter',
      ['ipphone_cm_pointer_pushes_total{reason="failover"} 4', 'ipphone_cm_pointer_pushes_total{reason="rebalance"} 0', 'ipphone_cm_pointer_pushes_total{reason="admin"} 0'],
    ],
    ipphone_cm_rebalance_moves_total: ['counter', ['ipphone_cm_rebalance_moves_total 0']],
    ipphone_cm_services_requests_total: ['counter', ['ipphone_cm_services_requests_total 9']],
    ipphone_cm_broker_connected: ['gauge', ['ipphone_cm_broker_connected 1']],
    ipphone_cm_acks_dropped_total: ['counter', ['ipphone_cm_acks_dropped_total 7']],
  };
  for (const [name, [type, samples]] of Object.entries(want)) {
    const help = lines.indexOf(lines.find((l) => l.startsWith(`# HELP ${name} `)) ?? '');
    t.true(help >= 0, name);
    t.is(lines[help + 1], `# TYPE ${name} ${type}`);
    t.deepEqual(lines.slice(help + 2, help + 2 + samples.length), samples);
  }
  // every non-comment line is `name{labels}? value`
  for (const l of lines.filter((x) => !x.startsWith('#'))) t.regex(l, /^[a-z_]+(\{[a-z_]+="[^"]*"\})? -?[0-9.e+]+$/);
});

test('broker down renders 0; label values are escaped', (t) => {
  const text = renderMetrics({ ...snap, brokerConnected: false, pointerPushes: new Map([['we"ird\\', 1]]) });
  t.true(text.includes('ipphone_cm_broker_connected 0\n'));
  t.true(text.includes('ipphone_cm_pointer_pushes_total{reason="we\\"ird\\\\"} 1\n'));
  t.is(escapeLabel('a\nb'), 'a\\nb');
});

test('with the console on: rehomes by reason and the rehomed events over their phone\'s limit', (t) => {
  const text = renderMetrics({ ...snap, rehomesHere: new Map([['cm-offline', 2]]), rehomeEventsLimitedTotal: 58 });
  t.true(text.includes('# TYPE ipphone_cm_rehomes_total counter\nipphone_cm_rehomes_total{reason="cm-offline"} 2\n'));
  t.true(text.includes('# TYPE ipphone_cm_rehome_events_limited_total counter\nipphone_cm_rehome_events_limited_total 58\n'));
  t.false(renderMetrics(snap).includes('ipphone_cm_rehome_events_limited_total'), 'absent with the console off');
});

test('version reports that moved nothing and peers\' liveness challenges are counted by why and outcome', (t) => {
  const text = renderMetrics({ ...snap, versionReportsIgnored: { implausible: 3, rateLimited: 41 }, livenessChallenges: { answered: 5, dropped: 1 } });
  t.true(text.includes('# TYPE ipphone_cm_version_reports_ignored_total counter\nipphone_cm_version_reports_ignored_total{why="implausible"} 3\nipphone_cm_version_reports_ignored_total{why="rate-limited"} 41\n'));
  t.true(text.includes('# TYPE ipphone_cm_liveness_challenges_total counter\nipphone_cm_liveness_challenges_total{outcome="answered"} 5\nipphone_cm_liveness_challenges_total{outcome="dropped"} 1\n'));
  t.true(renderMetrics({ ...snap, peerFloorsRefusedTotal: 2 }).includes('# TYPE ipphone_cm_peer_floors_refused_total counter\nipphone_cm_peer_floors_refused_total 2\n'));
  t.false(renderMetrics(snap).includes('ipphone_cm_peer_floors_refused_total'), 'absent without peers');
});
