/**
 * Rebalancing in the simulated group, the operator's workloads around it, and
 * the `converge` invariant (docs/simulation.md).
 *
 * The product offers no reload: `ipphone-cm` reads its config at start and
 * stops on SIGTERM (src/callmanager/main.ts). So an operator switches
 * rebalancing on or off, and adds or removes a group member, the only way the
 * contract gives: edit the config and restart (`systemctl restart`), one call
 * manager after another. A changed group reaches phones at their next ack
 * (group-floor.ts: the floor of the group list is raised at the start).
 *
 * Everything here is drawn from its own stream (`rebalance`), so the seeds
 * that draw neither rebalancing nor a membership change run exactly as they
 * did before it existed.
 */
import type { CmHost, PhoneHost } from './hosts.js';
import type { CmSpec, RebalanceSetting, Topology } from './group.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

/** The rebalancing the seeds with it run: capacity 10 and threshold 0.1, so "within threshold" is "within one phone". */
export const REBALANCE: RebalanceSetting = { enabled: true, periodMs: 3000, threshold: 0.1, maxMovesPerSec: 5, cooldownMs: 6000, capacity: 10 };

/** The member a membership change adds: a second call manager at site B. */
export const SPARE: CmSpec = { id: 'cm-d', broker: 'mqtt://10.0.2.1:1883', services: 'http://10.0.2.12:8080/ccmcip/menu.jsp', group: 'g' };

export interface RebalancePlan {
  /** Rebalancing on in every member (absent: off, as before). */
  setting?: RebalanceSetting;
  /** A member restarted with rebalancing off at `offAt`, and on again at `onAt`. */
  toggle?: { cm: string; offAt: number; onAt: number };
  /** A member added (the spare) or removed at `at`; the others restarted with the new group `gapMs` apart. */
  membership?: { kind: 'add' | 'remove'; cm: string; at: number; gapMs: number };
  /** A removal's restarts leave `retired` out of the configs (the `keep-removed` plant: the removed member stays in phones' lists). */
  noRetired?: boolean;
}

/**
 * Half of the seeds run with rebalancing on (and then half of those switch
 * one member off and on again); a fifth of the default world's seeds change
 * the group's membership. `force` turns rebalancing on (the converge plants).
 */
export function drawRebalance(rng: Rng, topo: Topology, o: { force?: boolean; membership?: boolean } = {}): RebalancePlan {
  const on = rng.chance(0.5) || o.force === true;
  const toggle = rng.chance(0.5);
  const change = rng.chance(0.2) && o.membership !== false;
  const plan: RebalancePlan = {};
  const ids = topo.group.map((c) => c.id);
  if (on) {
    plan.setting = REBALANCE;
    const offAt = rng.int(20_000, 90_000);
    if (toggle && o.force !== true) plan.toggle = { cm: rng.pick(ids), offAt, onAt: offAt + rng.int(5_000, 40_000) };
  }
  if (change) {
    const kind = rng.chance(0.5) ? 'add' : 'remove';
    plan.membership = { kind, cm: kind === 'add' ? SPARE.id : rng.pick(ids), at: rng.int(15_000, 100_000), gapMs: rng.int(2_000, 8_000) };
  }
  return plan;
}

/** The topology a plan runs in: the group's rebalancing, and the spare host a membership change installs. */
export function withPlan(topo: Topology, plan: RebalancePlan): Topology {
  return {
    ...topo,
    ...(plan.setting !== undefined ? { rebalance: plan.setting } : {}),
    ...(plan.membership?.kind === 'add' ? { spare: [SPARE] } : {}),
  };
}

/** Time a restart takes in the model: the stop (grace and exit of CmHost.stop) and the start after it. */
const STOP_MS = 60 + 2000;
const START_GAP_MS = 1000;

/** What the workload tells the checkers. */
export interface GroupView {
  /** The group's members now (the last config the operator wrote). */
  members(): string[];
  /** When the last workload restart is over (ms); the quiet window cannot begin before. */
  readonly endMs: number;
}

/**
 * Schedule the plan's operator workloads on the world. `onGroup` hears each
 * member's new group as its restart begins (the checkers' `lists-signed`
 * judges a list by its issuer's group).
 */
export function scheduleRebalance(world: World, plan: RebalancePlan, topo: Topology, cms: Map<string, CmHost>, onGroup: (cm: string, ids: string[], retired: string[]) => void): GroupView {
  let members = topo.group.map((c) => c.id);
  let endMs = 0;
  for (const s of topo.spare ?? []) cms.get(s.id)!.retired = true;
  /** An operator's restart with an edited config: a stopped process just takes the file at its next start. */
  const restart = (h: CmHost, edit: () => void): void => {
    edit();
    if (!h.alive) return;
    h.stop();
    world.after(STOP_MS + START_GAP_MS, () => h.start());
  };
  const t = plan.toggle;
  if (t !== undefined) {
    const h = cms.get(t.cm)!;
    world.at(t.offAt, () => {
      world.trace(`workload ${t.cm} rebalancing off (restart)`);
      restart(h, () => (h.over = { ...h.over, rebalance: false }));
    });
    world.at(t.onAt, () => {
      world.trace(`workload ${t.cm} rebalancing on (restart)`);
      restart(h, () => (h.over = { ...h.over, rebalance: true }));
    });
    endMs = Math.max(endMs, t.onAt + STOP_MS + START_GAP_MS);
  }
  const m = plan.membership;
  if (m !== undefined) {
    const next = m.kind === 'add' ? [...members, m.cm] : members.filter((id) => id !== m.cm);
    const others = next.filter((id) => id !== m.cm);
    world.at(m.at, () => {
      world.trace(`workload group ${m.kind} ${m.cm}: [${next.join(',')}]`);
      members = next;
      const h = cms.get(m.cm)!;
      if (m.kind === 'add') {
        h.retired = false;
        h.over = { ...h.over, group: next };
        onGroup(m.cm, next, []);
        h.start();
      } else {
        h.stop();
        h.retired = true;
      }
    });
    others.forEach((id, i) => {
      world.at(m.at + (i + 1) * m.gapMs, () => {
        world.trace(`workload ${id} restart with group [${next.join(',')}]`);
        const h = cms.get(id)!;
        // A removal retires the member (config `retired`, src/callmanager/retired.ts), as docs/configuration.md tells the operator.
        const retired = m.kind === 'remove' && plan.noRetired !== true ? [m.cm] : [];
        onGroup(id, next, retired);
        restart(h, () => (h.over = { ...h.over, group: next, ...(retired.length > 0 ? { retired } : {}) }));
      });
    });
    endMs = Math.max(endMs, m.at + others.length * m.gapMs + STOP_MS + START_GAP_MS);
  }
  return {
    members: () => members,
    get endMs() {
      return endMs;
    },
  };
}

/** The converge bounds (docs/simulation.md), from the rebalancing config and the phones' timing. */
export interface ConvergeBounds {
  /** From the start of a quiet window to the loads the moves are judged against: hold + the fallback bound. */
  settleMs: number;
  /** From then to loads within the threshold. */
  convergeMs: number;
  /** Rounds the bound allows (each a period and a cool-down). */
  rounds: number;
}

export function convergeBounds(r: RebalanceSetting, topo: Topology, fallbackMs: number): ConvergeBounds {
  const ka = topo.keepalive;
  const round = ka.intervalMs * (ka.missLimit + 1) + ka.ackTimeoutMs;
  const rounds = 3;
  // A member waits a cool-down after its load last grew, plans at most once a period and cools
  // down after each round; a round's moves leave at maxMovesPerSec; a moved phone is homed on
  // its target within a connect time-out and a keep-alive round; 2 s for the loads to be published.
  const moves = Math.ceil(topo.phones.length / r.maxMovesPerSec) * 1000;
  return {
    settleMs: topo.holdMs + fallbackMs,
    convergeMs: r.cooldownMs + rounds * (r.periodMs + r.cooldownMs) + moves + topo.phoneConnectTimeoutMs + round + 2000,
    rounds,
  };
}

/**
 * Fewest phones that must change call manager to bring `loads` within
 * `threshold` (utilisation = phones ÷ capacity), phones staying in the group:
 * every distribution of the same total is tried (a handful of phones).
 */
export function minimumMoves(loads: readonly number[], capacities: readonly number[], threshold: number): number {
  const total = loads.reduce((a, b) => a + b, 0);
  let best = Infinity;
  const t: number[] = [];
  const walk = (i: number, left: number): void => {
    if (i === loads.length - 1) {
      t.push(left);
      const u = t.map((x, k) => x / capacities[k]!);
      if (Math.max(...u) - Math.min(...u) <= threshold + 1e-9) best = Math.min(best, t.reduce((a, x, k) => a + Math.max(0, loads[k]! - x), 0));
      t.pop();
      return;
    }
    for (let x = 0; x <= left; x++) {
      t.push(x);
      walk(i + 1, left - x);
      t.pop();
    }
  };
  if (loads.length > 0) walk(0, total);
  return best;
}

export type ConvergeViolation = (detail: string) => void;

/**
 * A phone's report moves a member's versions at most this far ahead of its wall clock
 * (docs/operations.md, "Versions too far ahead"; mqtt.md): a phone holding a version beyond
 * every member's wall + this refuses the group's lists until real time catches up or an
 * operator rebases it — no rebalance move can reach it, so `converge` is not judged then.
 */
export const REACHABLE_AHEAD_MS = 12 * 3600_000;

/**
 * `converge`: with rebalancing on in every member and nothing disturbing the
 * group since `quietFrom` (no fault, no operator restart, every phone on-hook),
 * the base is the loads at `quietFrom` + settle (every phone homed): until
 * then phones still move because of the last fault (restored lists released
 * to phones that failed over, fallbacks after the hold), within the fallback
 * bound. Not judged while a phone holds a version no member can issue above
 * ({@link REACHABLE_AHEAD_MS}). From the base on, loads are within the threshold by convergeMs and
 * stay so; the rebalance moves are no more than the fewest that bring the
 * base loads within the threshold; no phone is moved for `rebalance` twice.
 */
export class ConvergeChecker {
  #base: { at: number; loads: number[]; min: number } | null = null;
  #moves = 0;
  readonly #movedAt = new Map<string, number>();
  checks = 0;

  constructor(
    readonly now: () => number,
    readonly phones: Map<string, PhoneHost>,
    readonly view: GroupView,
    readonly setting: RebalanceSetting,
    readonly bounds: ConvergeBounds,
    readonly quietFrom: number,
    readonly violate: ConvergeViolation,
    readonly wallOf: (cm: string) => number,
  ) {}

  /** A phone's `rehomed` event (from its own connection). */
  onRehomed(phone: string, reason: unknown, from: unknown, to: unknown): void {
    // Before the base (the recovery from the last fault: restored lists released, fallbacks) moves are the faults' doing.
    if (reason !== 'rebalance' || this.#base === null) return;
    this.checks++;
    const prev = this.#movedAt.get(phone);
    if (prev !== undefined) this.violate(`${phone} moved for rebalance twice in one convergence (at ${prev} and ${this.now()} ms, now ${String(from)} → ${String(to)})`);
    this.#movedAt.set(phone, this.now());
    this.#moves++;
    if (this.#moves > this.#base.min) this.violate(`${this.#moves} rebalance moves since ${this.#base.at} ms where loads [${this.#base.loads.join(',')}] of [${this.view.members().join(',')}] needed ${this.#base.min}`);
  }

  tick(): void {
    const now = this.now();
    const judgeFrom = this.quietFrom + this.bounds.settleMs;
    if (now < judgeFrom) return;
    const members = this.view.members();
    const ceiling = Math.min(...members.map((m) => this.wallOf(m))) + REACHABLE_AHEAD_MS;
    for (const p of this.phones.values()) {
      if (p.agent !== null && (p.agent.state as unknown) !== undefined && p.agent.state.listVersion > ceiling) return;
    }
    const loads = members.map(() => 0);
    let unhomed = 0;
    for (const p of this.phones.values()) {
      const home = p.agent === null || (p.agent.state as unknown) === undefined ? null : p.agent.home;
      if (home === null) unhomed++;
      const i = home === null ? -1 : members.indexOf(home);
      if (i >= 0) loads[i]!++;
    }
    if (this.#base === null) {
      if (unhomed > 0) return; // a phone in the middle of a move: judge from when all are homed
      const caps = members.map(() => this.setting.capacity);
      this.#base = { at: now, loads, min: minimumMoves(loads, caps, this.setting.threshold) };
      return;
    }
    if (now - this.#base.at < this.bounds.convergeMs) return;
    this.checks++;
    const u = loads.map((x) => x / this.setting.capacity);
    const spread = Math.max(...u) - Math.min(...u);
    if (spread > this.setting.threshold + 1e-9) {
      this.violate(`loads [${loads.join(',')}] of [${members.join(',')}] spread ${spread.toFixed(2)} > threshold ${this.setting.threshold}, ${now - this.#base.at} ms after [${this.#base.loads.join(',')}] (bound ${this.bounds.convergeMs} ms)`);
    }
  }
}
