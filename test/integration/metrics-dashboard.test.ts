/**
 * Issue 12, "/metrics stays clean" and the Grafana dashboard: a running group
 * after a kill -9 failover; the survivor's `/metrics` passes `promtool check
 * metrics` (Debian `prometheus`) with no complaint, counts the rehomes to it by
 * reason, and every expression of deploy/grafana/ipphone-group.json names only
 * metrics `/metrics` exports. The scrape example passes `promtool check config`.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { ROOT } from '../helpers/programs.js';

const PROMTOOL = '/usr/bin/promtool';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

async function metrics(c: Cluster, id: string): Promise<string> {
  const url = c.group.find((g) => g.id === id)!.services.replace(/\/services$/, '/metrics');
  const res = await fetch(url);
  return res.text();
}

/** Sample value of `name{labels}` exactly as written, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** Every metric name an expression uses (ours all start with `ipphone_`). */
function metricNames(expr: string): string[] {
  return [...expr.matchAll(/\bipphone_[a-z0-9_]+\b/g)].map((m) => m[0]);
}

test('after a kill -9 failover the survivor\'s /metrics is promtool-clean, counts rehomes by reason, and feeds every dashboard expression', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a', 'cm-b']);
  for (const p of ['p-m1', 'p-m2']) c.startAgent(p);
  for (const p of ['p-m1', 'p-m2']) await c.waitHome(p, 'cm-a');
  c.cms.get('cm-a')!.signal('SIGKILL');
  for (const p of ['p-m1', 'p-m2']) await c.waitHome(p, 'cm-b');
  let text = '';
  await waitFor(
    async () => {
      text = await metrics(c, 'cm-b');
      return (sample(text, 'ipphone_cm_rehomes_total{reason="cm-offline"}') ?? 0) >= 2;
    },
    { timeoutMs: 10_000, what: 'two cm-offline rehomes counted by cm-b' },
  ).catch((e: Error) => {
    throw new Error(`${e.message}\n${text}`);
  });
  const check = spawnSync(PROMTOOL, ['check', 'metrics'], { input: text, encoding: 'utf8' });
  t.is(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);
  t.is(`${check.stdout}${check.stderr}`.trim(), '', 'no lint findings');
  t.is(sample(text, 'ipphone_cm_phones_homed'), 2);

  const exported = new Set([...text.matchAll(/^# TYPE (\S+) /gm)].map((m) => m[1]!));
  const dash = JSON.parse(readFileSync(join(ROOT, 'deploy/grafana/ipphone-group.json'), 'utf8')) as { panels: { title: string; targets: { expr: string }[] }[] };
  t.true(dash.panels.length >= 5);
  const used = new Set<string>();
  for (const p of dash.panels) {
    t.true(p.targets.length > 0, `${p.title} has a query`);
    for (const q of p.targets) {
      const names = metricNames(q.expr);
      t.true(names.length > 0, `${p.title}: ${q.expr} names a metric`);
      for (const n of names) {
        used.add(n);
        t.true(exported.has(n), `${p.title}: ${n} is exported by /metrics`);
      }
    }
  }
  for (const want of ['ipphone_cm_phones_homed', 'ipphone_cm_keepalives_total', 'ipphone_cm_rehomes_total', 'ipphone_cm_rebalance_moves_total', 'ipphone_cm_services_requests_total']) {
    t.true(used.has(want), `the dashboard shows ${want}`);
  }
});

test('the Prometheus scrape example is a valid config', (t) => {
  const r = spawnSync(PROMTOOL, ['check', 'config', join(ROOT, 'deploy/prometheus/prometheus.yml')], { encoding: 'utf8' });
  t.is(r.status, 0, r.stdout + r.stderr);
});
