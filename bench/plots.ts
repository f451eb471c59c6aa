/**
 * Plots of the benchmark figures (issue #12, "Benchmarks you can look at").
 * Each builder is a pure function from the raw samples a bench part returns
 * to a Vega-Lite spec; {@link renderSvg} turns a spec into an SVG string with
 * Vega's headless renderer (`renderer: 'none'`, no browser, no canvas). The
 * builders compute nothing that is not in the samples: every mark is one
 * measured run, phone, period sample or one-second bin of measured connects.
 */
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';

/** One named set of samples (a series, a transport, a run). */
export interface Samples {
  label: string;
  /** ms, one per run (failover) or per phone (fleet). */
  ms: readonly number[];
}

/** One sample of phones per member during a rebalance. */
export interface HomesAt {
  /** ms since the idle members were started. */
  ms: number;
  byHome: Readonly<Record<string, number>>;
}

const WIDTH = 640;
/** Tick values of the symlog ms axis. */
const MS_TICKS = [0, 1, 2, 5, 10, 20, 50, 100, 200, 500, 1000, 2000, 5000, 10_000];
const base = { $schema: 'https://vega.github.io/schema/vega-lite/v6.json', width: WIDTH, background: 'white', config: { font: 'sans-serif', legend: { labelLimit: 400 } } } as const;

/**
 * Failover times, one row per series: a point per run and a tick at the
 * series' median, on a symlog ms axis (the series span ~1 ms to ~3 s and the
 * agent's own ms-resolution times can be 0).
 */
export function failoverSpec(series: readonly Samples[]): TopLevelSpec {
  const labels = series.map((s) => s.label);
  const runs = series.flatMap((s) => s.ms.map((ms, run) => ({ series: s.label, run: run + 1, ms })));
  const medians = series.filter((s) => s.ms.length > 0).map((s) => ({ series: s.label, ms: median(s.ms) }));
  const y = { field: 'series', type: 'nominal', sort: labels, title: null, axis: { labelLimit: 600 } } as const;
  // The axis ends at the first tick past the slowest run, so no dot sits on the frame.
  const slowest = Math.max(0, ...runs.map((r) => r.ms));
  const end = MS_TICKS.find((t) => t > slowest) ?? slowest * 1.1;
  const x = { field: 'ms', type: 'quantitative', title: 'ms (symlog scale)', scale: { type: 'symlog', domain: [0, end] as number[] }, axis: { values: MS_TICKS.filter((t) => t <= end) } } as const;
  const color = { field: 'series', type: 'nominal', sort: labels, legend: null } as const;
  return {
    ...base,
    height: { step: 36 },
    title: { text: 'Failover times per series', subtitle: 'one dot per run (spread vertically in run order); tick: median' },
    layer: [
      { data: { values: runs }, mark: { type: 'point', filled: true, opacity: 0.6 }, encoding: { x, y, color, yOffset: { field: 'run', type: 'quantitative', scale: { range: [-10, 10] } } } },
      { data: { values: medians }, mark: { type: 'tick', color: 'black', thickness: 2, size: 18 }, encoding: { x, y } },
    ],
  } as TopLevelSpec;
}

/**
 * Homing curve after a crash: phones homed on the backup against ms since
 * the kill, one step line per transport, from each phone's first-seen time.
 */
export function homingSpec(curves: readonly Samples[], count: number): TopLevelSpec {
  // Each curve starts at the kill: 0 phones homed at 0 ms.
  const values = curves.flatMap((c) => [{ transport: c.label, ms: 0, homed: 0 }, ...[...c.ms].sort((a, b) => a - b).map((ms, i) => ({ transport: c.label, ms, homed: i + 1 }))]);
  return {
    ...base,
    title: { text: `${count} phones: homed on the backup after kill -9 of their call manager`, subtitle: "each phone's first-seen time (polled every 20 ms: an upper bound)" },
    data: { values },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'ms', type: 'quantitative', title: 'ms since the kill -9' },
      y: { field: 'homed', type: 'quantitative', title: 'phones homed on the backup', scale: { domain: [0, count] } },
      color: { field: 'transport', type: 'nominal', title: 'transport', sort: curves.map((c) => c.label) },
    },
  } as TopLevelSpec;
}

/**
 * A backup absorbing a failed peer (bench/absorb.ts): share of the phones acked
 * with their demoting list against ms since the will, one step line per run
 * (size × call manager build), each point a phone (thinned to at most 2,000 per
 * run: every k-th phone, the last one always).
 */
export function absorbSpec(runs: readonly (Samples & { phones: number })[]): TopLevelSpec {
  const values = runs.flatMap((r) => {
    const s = [...r.ms].sort((a, b) => a - b);
    const step = Math.max(1, Math.ceil(s.length / 2000));
    const pts = [{ run: r.label, ms: 0, share: 0 }];
    for (let i = 0; i < s.length; i++) if (i % step === step - 1 || i === s.length - 1) pts.push({ run: r.label, ms: s[i]!, share: (i + 1) / r.phones });
    return pts;
  });
  return {
    ...base,
    title: { text: 'A backup call manager absorbing a failed peer: phones acked with their demoting list', subtitle: "ms since cm-a's will (first seen); a phone counts once it has cm-b's ack and a list with cm-a last" },
    data: { values },
    mark: { type: 'line', interpolate: 'step-after' },
    encoding: {
      x: { field: 'ms', type: 'quantitative', title: "ms since cm-a's will" },
      y: { field: 'share', type: 'quantitative', title: 'share of the phones done', axis: { format: '%' }, scale: { domain: [0, 1] } },
      color: { field: 'run', type: 'nominal', title: 'phones, call manager', sort: runs.map((r) => r.label) },
    },
  } as TopLevelSpec;
}

/** Rebalance convergence: phones per member against rebalance periods since the idle members started. */
export function rebalanceSpec(timeline: readonly HomesAt[], members: readonly string[], periodMs: number): TopLevelSpec {
  const values = timeline.flatMap((t) => members.map((m) => ({ member: m, period: t.ms / periodMs, phones: t.byHome[m] ?? 0 })));
  return {
    ...base,
    title: { text: 'Rebalance convergence', subtitle: `phones per member; period ${periodMs} ms` },
    data: { values },
    mark: { type: 'line', point: false },
    encoding: {
      x: { field: 'period', type: 'quantitative', title: 'rebalance periods since the idle members started' },
      y: { field: 'phones', type: 'quantitative', title: 'phones homed on the member' },
      color: { field: 'member', type: 'nominal', title: 'member', sort: [...members] },
    },
  } as TopLevelSpec;
}

/** Connects per whole second since `ms` 0, every second up to the last connect (zeros included). */
export function perSecond(ms: readonly number[]): number[] {
  if (ms.length === 0) return [];
  const out = new Array<number>(Math.floor(Math.max(...ms) / 1000) + 1).fill(0);
  for (const t of ms) out[Math.max(0, Math.floor(t / 1000))]!++;
  return out;
}

/** Reconnect storm: connects per second the returning broker logged, one bar per second per run. */
export function stormSpec(runs: readonly Samples[]): TopLevelSpec {
  const values = runs.flatMap((r) => perSecond(r.ms).map((connects, sec) => ({ run: r.label, sec, connects })));
  return {
    ...base,
    title: { text: 'Reconnect storm: connects per second at the returning broker', subtitle: 'from its log, seconds since its restart' },
    data: { values },
    mark: { type: 'bar' },
    encoding: {
      x: { field: 'sec', type: 'ordinal', title: 's since the broker restarted', axis: { labelAngle: 0 } },
      xOffset: { field: 'run', type: 'nominal', sort: runs.map((r) => r.label) },
      y: { field: 'connects', type: 'quantitative', title: 'connects per second' },
      color: { field: 'run', type: 'nominal', title: 'run', sort: runs.map((r) => r.label) },
    },
  } as TopLevelSpec;
}

/** Vega-Lite spec → SVG text, headless. */
export async function renderSvg(spec: TopLevelSpec): Promise<string> {
  const view = new vega.View(vega.parse(compile(spec).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
}
