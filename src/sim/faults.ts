/**
 * The fault schedule of a run, drawn from its seed: faults by the contract's
 * names (shared/CONTRACT.md "Simulation"), each with a start, a duration and
 * a target. The schedule is data, so a failing run can be shrunk by dropping
 * faults and replayed from `--seed S --faults i,j,…`.
 */
import type { Rng } from './rng.js';
import type { Topology } from './group.js';

export const FAULT_KINDS = ['crash', 'pause', 'broker-down', 'partition', 'clock-step', 'state-loss', 'power-cut', 'registrar-down', 'hostile-phone'] as const;
export type FaultKind = (typeof FAULT_KINDS)[number];

export interface Fault {
  kind: FaultKind;
  /** Start, simulated ms. */
  at: number;
  /** How long until it is undone (a restart, a resume, a heal; for clock-step the NTP correction). */
  durationMs: number;
  /** A call manager, a phone or a broker id. */
  target: string;
  /** partition: which broker, and which way: `h2b`, `b2h` or `both`. clock-step: the step in ms. */
  broker?: string;
  way?: 'h2b' | 'b2h' | 'both';
  stepMs?: number;
  /** power-cut: wait for the phone's next flash write and cut in the middle of it. */
  midWrite?: boolean;
}

/** Faults start in [FAULTS_FROM, FAULTS_UNTIL) and are all undone by FAULTS_UNTIL + 60 s at most. */
export const FAULTS_FROM = 5_000;
export const FAULTS_UNTIL = 120_000;

export function drawFaults(rng: Rng, t: Topology): Fault[] {
  const n = rng.int(1, 6);
  const cms = [...t.group, ...t.remote].map((c) => c.id);
  const out: Fault[] = [];
  for (let i = 0; i < n; i++) {
    const kind = rng.pick(FAULT_KINDS);
    const at = rng.int(FAULTS_FROM, FAULTS_UNTIL - 1);
    switch (kind) {
      case 'crash':
      case 'state-loss':
        out.push({ kind, at, durationMs: rng.int(500, 40_000), target: rng.pick(cms) });
        break;
      case 'pause':
        out.push({ kind, at, durationMs: rng.int(300, 60_000), target: rng.pick(cms) });
        break;
      case 'broker-down':
        out.push({ kind, at, durationMs: rng.int(500, 30_000), target: rng.pick(t.brokers).id });
        break;
      case 'partition': {
        const host = rng.chance(0.5) ? rng.pick(cms) : rng.pick(t.phones);
        out.push({ kind, at, durationMs: rng.int(500, 60_000), target: host, broker: rng.pick(t.brokers).id, way: rng.pick(['h2b', 'b2h', 'both'] as const) });
        break;
      }
      case 'clock-step': {
        const host = rng.chance(0.6) ? rng.pick(cms) : rng.pick(t.phones);
        const mag = rng.pick([1_000, 60_000, 3_600_000, 6 * 3_600_000, 48 * 3_600_000]);
        out.push({ kind, at, durationMs: rng.int(1_000, 60_000), target: host, stepMs: (rng.chance(0.5) ? -1 : 1) * rng.int(mag / 2, mag) });
        break;
      }
      case 'registrar-down':
        out.push({ kind, at, durationMs: rng.int(300, 40_000), target: rng.pick(cms) });
        break;
      case 'power-cut':
        // Half of them wait (up to 60 s) for the phone's next flash write and cut it in the middle.
        out.push({ kind, at, durationMs: rng.int(100, 20_000), target: rng.pick(t.phones), ...(rng.chance(0.5) ? { midWrite: true } : {}) });
        break;
      case 'hostile-phone':
        out.push({ kind, at, durationMs: rng.int(5_000, 60_000), target: 'p-6666' });
        break;
    }
  }
  return out.sort((a, b) => a.at - b.at);
}

export function describeFault(f: Fault): string {
  const extra = f.kind === 'partition' ? ` ${f.target}~${f.broker} ${f.way}` : f.kind === 'clock-step' ? ` ${f.target} ${f.stepMs! > 0 ? '+' : ''}${f.stepMs}ms` : f.midWrite === true ? ` ${f.target} mid-write` : ` ${f.target}`;
  return `${f.kind}${extra} at ${f.at} for ${f.durationMs}ms`;
}
