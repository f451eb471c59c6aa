/**
 * `GET /metrics` in Prometheus text exposition format 0.0.4: a HELP and a
 * TYPE line per family, then its samples. Pure: takes a snapshot, returns text.
 */

/** Content-Type of the exposition format. */
export const METRICS_CONTENT_TYPE = 'text/plain; version=0.0.4; charset=utf-8';

export interface MetricsSnapshot {
  phonesHomed: number;
  keepalivesTotal: number;
  keepalivesPerSecond: number;
  keepalivesInvalidTotal: number;
  /** Pushes on `P/phone/{id}/pointers`, by reason. */
  pointerPushes: ReadonlyMap<string, number>;
  rebalanceMovesTotal: number;
  servicesRequestsTotal: number;
  brokerConnected: boolean;
  /** Acks not written: broker disconnected, or its socket backlog over the cap (ack-frames.ts). */
  acksDroppedTotal: number;
  /** Peers' state messages refused: unsigned, forged, empty, replayed, stale (peer-liveness.ts). */
  peerStatesRefusedTotal?: number;
  /** Times this call manager published its online again over another state on its own topic (run-state.ts). */
  stateRepublishedTotal?: number;
  /** Completed rehomes to this call manager by reason, from phones' events (only with the console on: it is what subscribes to them). */
  rehomesHere?: ReadonlyMap<string, number>;
  /** Phones' `rehomed` events not believed: over that phone's rate limit (console-model.ts; only with the console on). */
  rehomeEventsLimitedTotal?: number;
  /**
   * Versions phones reported in keep-alives that did not move the version clock
   * (responder.ts): beyond the wall clock's bound for phones (`implausible`), or a
   * phone's second advancing report within its gap (`rate-limited`, report-limiter.ts).
   * A steady rise is a phone, or an identity, trying to drag the group's versions.
   */
  versionReportsIgnored?: { implausible: number; rateLimited: number };
  /** Peers' liveness challenges (challenge-queue.ts): answered, or dropped (queue full, waited too long). */
  livenessChallenges?: { answered: number; dropped: number };
  /** Group floors peers announced for our group beyond the version clock's bound for peers: not taken (cm-peers.ts). */
  peerFloorsRefusedTotal?: number;
}

/** Reasons always listed (at 0) so dashboards see the series before the first push. */
const PUSH_REASONS = ['failover', 'rebalance', 'admin'];

/** Escape a label value (backslash, double quote, newline). */
export function escapeLabel(v: string): string {
  return v.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}

function num(n: number): string {
  if (Number.isNaN(n)) return 'NaN';
  if (n === Infinity) return '+Inf';
  if (n === -Infinity) return '-Inf';
  return String(n);
}

function family(name: string, type: 'gauge' | 'counter', help: string, samples: Array<[string, number]>): string {
  let out = `# HELP ${name} ${help}\n# TYPE ${name} ${type}\n`;
  for (const [labels, value] of samples) out += `${name}${labels} ${num(value)}\n`;
  return out;
}

/** Render a snapshot as exposition text. */
export function renderMetrics(s: MetricsSnapshot): string {
  const reasons = new Set([...PUSH_REASONS, ...s.pointerPushes.keys()]);
  const pushes: Array<[string, number]> = [...reasons].map((r) => [`{reason="${escapeLabel(r)}"}`, s.pointerPushes.get(r) ?? 0]);
  return (
    family('ipphone_cm_phones_homed', 'gauge', 'Phones currently homed to this call manager.', [['', s.phonesHomed]]) +
    family('ipphone_cm_keepalives_total', 'counter', 'Valid keep-alives answered.', [['', s.keepalivesTotal]]) +
    family('ipphone_cm_keepalives_per_second', 'gauge', 'Keep-alives per second over the last 10 s.', [['', s.keepalivesPerSecond]]) +
    family('ipphone_cm_keepalives_invalid_total', 'counter', 'Keep-alives refused as invalid.', [['', s.keepalivesInvalidTotal]]) +
    family('ipphone_cm_pointer_pushes_total', 'counter', 'Pointer lists pushed to phones, by reason.', pushes) +
    family('ipphone_cm_rebalance_moves_total', 'counter', 'Phones sent a rebalance list.', [['', s.rebalanceMovesTotal]]) +
    family('ipphone_cm_services_requests_total', 'counter', 'Services page requests served.', [['', s.servicesRequestsTotal]]) +
    family('ipphone_cm_broker_connected', 'gauge', '1 while connected to the broker, else 0.', [['', s.brokerConnected ? 1 : 0]]) +
    family('ipphone_cm_acks_dropped_total', 'counter', 'Keep-alive acks not sent: broker disconnected or its socket backlog full.', [['', s.acksDroppedTotal]]) +
    (s.peerStatesRefusedTotal === undefined ? '' : family('ipphone_cm_peer_states_refused_total', 'counter', 'Peer state messages refused (unsigned, forged, empty, replayed or stale).', [['', s.peerStatesRefusedTotal]])) +
    (s.stateRepublishedTotal === undefined ? '' : family('ipphone_cm_state_republished_total', 'counter', 'Own online published again over another state on its own topic.', [['', s.stateRepublishedTotal]])) +
    (s.rehomesHere === undefined
      ? ''
      : family('ipphone_cm_rehomes_total', 'counter', 'Phones that completed a rehome to this call manager, by reason (from their rehomed events, at most a few per phone per minute).', [...s.rehomesHere].map(([r, n]) => [`{reason="${escapeLabel(r)}"}`, n]))) +
    (s.rehomeEventsLimitedTotal === undefined
      ? ''
      : family('ipphone_cm_rehome_events_limited_total', 'counter', 'Phones\' rehomed events not counted or shown: over that phone\'s rate limit.', [['', s.rehomeEventsLimitedTotal]])) +
    (s.versionReportsIgnored === undefined
      ? ''
      : family('ipphone_cm_version_reports_ignored_total', 'counter', 'Versions reported in keep-alives that did not move the version clock, by why (implausible: beyond the wall clock bound; rate-limited: over the phone\'s report rate).', [
          ['{why="implausible"}', s.versionReportsIgnored.implausible],
          ['{why="rate-limited"}', s.versionReportsIgnored.rateLimited],
        ])) +
    (s.livenessChallenges === undefined
      ? ''
      : family('ipphone_cm_liveness_challenges_total', 'counter', 'Peers\' liveness challenges of our state, by outcome (dropped: queue full or waited too long).', [
          ['{outcome="answered"}', s.livenessChallenges.answered],
          ['{outcome="dropped"}', s.livenessChallenges.dropped],
        ])) +
    (s.peerFloorsRefusedTotal === undefined ? '' : family('ipphone_cm_peer_floors_refused_total', 'counter', 'Group floors peers announced for our group beyond the version clock bound for peers: not taken.', [['', s.peerFloorsRefusedTotal]]))
  );
}
