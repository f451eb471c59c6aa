/**
 * One simulated run: a seed in, a verdict out. Builds the world (brokers,
 * links, hosts), starts the real call managers and agents, applies the fault
 * schedule and the workload, and runs the checkers after every event.
 */
import { createRequire, syncBuiltinESMExports } from 'node:module';
import { Net, openAcl, printedAcl, type Broker } from './broker.js';
import { Host } from './clock.js';
import { drawFaults, describeFault, type Fault } from './faults.js';
import { allCms, defaultTopology, registrarOf, KEY_ID, PREFIX, signer, signingKey, type Topology } from './group.js';
import { HostilePhone } from './hostile.js';
import { LivenessChecks } from './liveness-checks.js';
import { CmHost, PhoneHost } from './hosts.js';
import { bounds, Checkers, type Violation } from './invariants.js';
import { Rng } from './rng.js';
import { World } from './world.js';
import { withMutation, type MutationName } from './mutations.js';
import { ServicesWorld, navigate, STRAY_SERVICES } from './services.js';
import { HostileConfig, Operator, OPERATOR_ID } from './operator.js';
import { HostileReprovision, plantReplayableRebase } from './replay.js';
import { signEnvelope } from '../protocol/envelope.js';
import { rebaseBody } from '../admin/bodies.js';
import { scheduleCalls, SipAtHome, sipBounds, SipWorld } from './sip.js';
import { drawSipAuth, SipAuth, SIM_SIP_PASSWORD_FILE, type AuthPlant, type SipAuthPlan } from './sip-auth.js';
import { AuthChecks, authBounds } from './sip-auth-checks.js';
import { RemovalChecker } from './removal.js';
import { ServicesRelative } from './services-relative.js';
import { ConvergeChecker, convergeBounds, drawRebalance, scheduleRebalance, withPlan, type RebalancePlan } from './rebalance.js';

/** Link delay bound, ms. */
export const MAX_DELAY_MS = 30;
/** Quiet time after the last fault is undone, before the end (ms): hold + the fallback bound fit in it. */
export const QUIET_MS = 35_000;

export interface RunOptions {
  /** Replace the drawn fault schedule (shrinking, replays of a shrunk schedule). */
  faults?: Fault[];
  /** Keep only these indexes of the drawn schedule. */
  keep?: number[];
  phones?: number;
  /** Run this world instead of the default one (`--group FILE`). */
  topology?: (phones: number) => Topology;
  /**
   * A defect planted in the world, not in the product, to prove a checker can
   * fail: `slow-detect` (phones run missLimit 12 where 3 is declared),
   * `no-fallback` (phones hold 1 h where 10 s is declared), `lying-fsync`
   * (flash that forgets what fsync promised), `leak-will` (broker A publishes
   * cm-a's live connection's will at 30 s), `erase-remote` (cm-a signs
   * each phone a list without the remote site's pointer and without `owns`),
   * `dragged-version` (cm-a signs a list 30 days ahead of its clock),
   * `push-dead` (cm-a dies at 20 s; at 90 s cm-b signs a list with cm-a first),
   * `believe-dead` (cm-a dies at 20 s, its will told to cm-b; at 30 s cm-b signs a list with cm-a
   * first, as a replayed online believed would make it; cm-a starts again at 60 s),
   * `push-demote` (at 60 s cm-b signs each phone a failover list with cm-a last while cm-a serves,
   * as a replayed offline believed would make it),
   * `kick` (from 20 s to 50 s broker A drops every new connection of cm-b
   * 5 ms after accepting it: its client reconnects every second, as mqtt.js does,
   * and the planted no-storm bound of 20 a minute must catch it),
   * `wide-threshold` (rebalancing forced on; cm-a's rebalancer runs threshold 0.9 where 0.1 is declared),
   * `flap` (rebalancing forced on; in the quiet window a phone's call manager moves it for `rebalance`
   * and 8 s later its new one moves it back),
   * `deaf-services` (from 30 s cm-a's services server stops answering while its process runs),
   * `stray-config` (at 30 s brokers A and B deliver each phone a config signed with the trusted key that no operator sent),
   * `registrar-keeps` (registrars ignore unregisters and expiry: a binding lives for ever),
   * `registrar-forgets` (registrars answer a REGISTER 200 OK and store nothing),
   * `keep-removed` (a removal's rolling restart leaves `retired` out of the configs: the removed member stays in phones' lists),
   * `stray-rebase` (at 30 s every broker delivers each phone a rebase 10 minutes below the version it holds, signed with the trusted key, that no operator sent: versions-bounded),
   * `replayable-rebase` (the operator rebases every phone at 30 s, pushes it a plain list at 40 s, the hostile phone
   * replays from 45 s, and the first replayed rebase that reaches a phone that moved on is taken: versions-bounded; src/sim/replay.ts),
   * `stray-services` (from 30 s cm-a's services server is in an outage for good, and a proxy in the phones' path sends every
   * request for a page other than a top page on another server to the same place on a services server no list names:
   * the failover's next hop goes to "not a pointer of its", services-relative),
   * `misplaced-nav` (from 30 s cm-a's services server is in an outage for good, and a proxy in the phones' path sends every request for a page other than a top page on another server to that server's top page: services-relative).
   * `auth-rehome`, `auth-blind`, `auth-storm`, `auth-stuck` (digest authentication forced on; the SIP world lies: src/sim/sip-auth.ts `AuthPlant`).
   */
  plant?: Plant;
  /** A defect put back in the product for this run (src/sim/mutations.ts): proof the simulator finds it. */
  mutate?: MutationName;
}

export type Plant = 'replayable-rebase' | 'stray-services' | 'slow-detect' | 'no-fallback' | 'lying-fsync' | 'leak-will' | 'erase-remote' | 'dragged-version' | 'push-dead' | 'kick' | 'wide-threshold' | 'flap' | 'deaf-services' | 'stray-config' | 'registrar-keeps' | 'registrar-forgets' | 'believe-dead' | 'push-demote' | 'keep-removed' | 'misplaced-nav' | 'stray-rebase' | AuthPlant;

export interface RunResult {
  seed: number;
  violations: Violation[];
  faults: Fault[];
  simulatedMs: number;
  events: number;
  checks: number;
  traceHash: string;
  tail: string[];
  open: boolean;
  errors: string[];
  /** What the re-provisioning workload did (operator.ts `reprovisioned`): sent, refused by the command. */
  reprovisioned?: Record<string, number>;
  /** Page failovers services-relative judged and found answered at the same place in time (figures). */
  relativeJudged?: number;
  /** REGISTERs the registrars refused for wrong credentials (src/sim/sip-auth.ts; figures); absent: no digest authentication in this seed. */
  authRefusals?: number;
  /** Re-provisioning messages the hostile phone read and the replays it published (src/sim/replay.ts; figures, tests). */
  replays?: { recorded: number; replayed: number };
}

const require = createRequire(import.meta.url);
const nodeCrypto = require('node:crypto') as { randomBytes: (n: number, cb?: (e: Error | null, b: Buffer) => void) => Buffer | undefined };
const realRandomBytes = nodeCrypto.randomBytes;

/**
 * node:crypto's randomBytes drawn from the run's seed while it runs (the
 * agent's instance id and liveness challenges use it), restored after: the
 * product needs no extra port for these.
 */
function seedCrypto(rng: Rng | null): void {
  nodeCrypto.randomBytes = rng === null ? realRandomBytes : (n: number, cb?: (e: Error | null, b: Buffer) => void) => {
    const b = rng.bytes(n);
    if (cb) {
      queueMicrotask(() => cb(null, b));
      return undefined;
    }
    return b;
  };
  syncBuiltinESMExports();
}

export function scheduleFor(seed: number, o: RunOptions = {}): { topo: Topology; faults: Fault[]; open: boolean; plan: RebalancePlan; auth: SipAuthPlan | undefined } {
  const root = new Rng(seed);
  const setup = root.fork('setup');
  const phones = o.phones ?? setup.int(3, 6);
  const topo = o.topology !== undefined ? o.topology(phones) : defaultTopology(phones);
  const open = setup.chance(0.25);
  const drawn = drawFaults(root.fork('faults'), topo);
  const faults = o.faults ?? (o.keep ? o.keep.map((i) => drawn[i]!).filter((f) => f !== undefined) : drawn);
  const plan = drawRebalance(root.fork('rebalance'), topo, { force: o.plant === 'wide-threshold' || o.plant === 'flap', membership: o.topology === undefined && o.plant !== 'wide-threshold' && o.plant !== 'flap' });
  // Digest authentication at the registrars (src/sim/sip-auth.ts), drawn last: the other forks keep their draws.
  const auth = o.topology === undefined ? drawSipAuth(root.fork('sip-auth'), topo, o.plant?.startsWith('auth-') === true) : undefined;
  const planned = withPlan(topo, plan);
  return { topo: auth === undefined ? planned : { ...planned, phoneSip: { ...planned.phoneSip, auth: { passwordFile: SIM_SIP_PASSWORD_FILE, authRetryMs: auth.authRetryMs } } }, faults, open, plan, auth };
}

export async function runSeed(seed: number, o: RunOptions = {}): Promise<RunResult> {
  const root = new Rng(seed);
  const { topo, faults, open, plan, auth } = scheduleFor(seed, o);
  seedCrypto(root.fork('crypto'));
  try {
    return await withMutation(o.mutate, () => run(seed, root, topo, faults, open, o.plant, plan, auth));
  } finally {
    seedCrypto(null);
  }
}

async function run(seed: number, root: Rng, topo: Topology, faults: Fault[], open: boolean, plant: Plant | undefined, plan: RebalancePlan, authPlan: SipAuthPlan | undefined): Promise<RunResult> {
  const world = new World();
  const net = new Net(world, root.fork('net'), MAX_DELAY_MS);
  const groupAcl = open ? openAcl : printedAcl(PREFIX, [...topo.group, ...(topo.spare ?? [])].map((c) => c.id), [OPERATOR_ID]);
  const brokerById = new Map<string, Broker>();
  for (const b of topo.brokers) {
    const acl = open ? openAcl : b.id === 'R' ? printedAcl(PREFIX, topo.remote.map((c) => c.id)) : groupAcl;
    brokerById.set(b.id, net.addBroker(b.id, b.url, acl));
  }
  const hostRng = root.fork('hosts');
  const cms = new Map<string, CmHost>();
  for (const spec of allCms(topo)) cms.set(spec.id, new CmHost(world, net, spec, topo, hostRng.fork(spec.id)));
  const phones = new Map<string, PhoneHost>();
  for (const id of topo.phones) phones.set(id, new PhoneHost(world, net, id, topo, hostRng.fork(id)));
  for (const p of phones.values()) {
    if (plant === 'slow-detect') p.plant = { missLimit: 12 };
    if (plant === 'no-fallback') p.plant = { holdMs: 3_600_000 };
    if (plant === 'lying-fsync') p.disk.lyingFsync = true;
  }
  if (plant === 'leak-will') {
    world.at(30_000, () => {
      const b = net.byUrl(cms.get('cm-a')!.spec.broker)!;
      const c = b.conns().find((x) => x.clientId === 'ipphone-cm-cm-a');
      if (c?.will !== undefined) b.publish(null, c.will.topic, c.will.payload, true);
    });
  }
  const pushAs = (cm: string, phone: string, version: number, ids: string[], reason = 'failover'): void => {
    const b = net.byUrl(cms.get(cm)!.spec.broker)!;
    const c = b.conns().find((x) => x.clientId === `ipphone-cm-${cm}`);
    if (c === undefined) return;
    const list = ids.map((id) => {
      const spec = cms.get(id)!.spec;
      return { id, broker: spec.broker, services: spec.services, sip: registrarOf(spec) };
    });
    b.publish(c, `${PREFIX}/phone/${phone}/pointers`, Buffer.from(JSON.stringify(signer({ version, reason, list, phone } as Parameters<typeof signer>[0]))), false);
  };
  if (plant === 'erase-remote' || plant === 'dragged-version') {
    world.at(30_000, () => {
      const wall = cms.get('cm-a')!.host.wall();
      for (const p of phones.keys()) pushAs('cm-a', p, plant === 'dragged-version' ? wall + 30 * 86_400_000 : wall + 1000, ['cm-a', 'cm-b', 'cm-c']);
    });
  }
  if (plant === 'push-dead') {
    world.at(20_000, () => cms.get('cm-a')!.crash());
    world.at(90_000, () => {
      const wall = cms.get('cm-b')!.host.wall();
      for (const p of phones.keys()) pushAs('cm-b', p, wall + 1000, ['cm-a', 'cm-b', 'cm-c', 'cm-r']);
    });
    world.at(120_000, () => cms.get('cm-a')!.start());
  }
  if (plant === 'believe-dead') {
    world.at(20_000, () => cms.get('cm-a')!.crash());
    world.at(30_000, () => {
      const wall = cms.get('cm-b')!.host.wall();
      for (const p of phones.keys()) pushAs('cm-b', p, wall + 1000, ['cm-a', 'cm-b', 'cm-c', 'cm-r']);
    });
    world.at(60_000, () => cms.get('cm-a')!.start());
  }
  if (plant === 'push-demote') {
    world.at(60_000, () => {
      const wall = cms.get('cm-b')!.host.wall();
      for (const p of phones.keys()) pushAs('cm-b', p, wall + 1000, ['cm-b', 'cm-c', 'cm-a']);
    });
  }
  if (plant === 'kick') {
    const a = net.byUrl(cms.get('cm-b')!.spec.broker)!;
    net.onAccept.push((_b, clientId) => {
      if (clientId !== 'ipphone-cm-cm-b' || world.now < 20_000 || world.now > 50_000) return;
      const c = a.conns().find((x) => x.clientId === clientId);
      if (c !== undefined) world.after(5, () => a.drop(c, 'kicked'));
    });
    world.at(20_000, () => {
      for (const c of a.conns()) if (c.clientId === 'ipphone-cm-cm-b') a.drop(c, 'kicked');
    });
  }
  const brokerOfCm = (id: string): Broker => net.byUrl(cms.get(id)!.spec.broker)!;
  const hostOf = (id: string): Host | undefined => cms.get(id)?.host ?? phones.get(id)?.host;

  const serving = (id: string): boolean => {
    const h = cms.get(id);
    if (h === undefined || !h.alive || h.stopping || h.host.paused || !h.registrarUp) return false;
    const b = brokerOfCm(id);
    if (!b.up) return false;
    const cut = net.cut(h.host.id, b.id);
    if (cut.h2b || cut.b2h) return false;
    return b.conns().some((c) => c.host === h.host && c.clientId === `ipphone-cm-${id}` && c.clientOpen);
  };
  const reachable = (phone: string, id: string): boolean => {
    if (!serving(id)) return false;
    const cut = net.cut(phone, brokerOfCm(id).id);
    return !cut.h2b && !cut.b2h;
  };
  for (const p of phones.values()) p.servicesUp = (id) => cms.get(id)?.alive === true && cms.get(id)?.host.paused === false;

  const checkers = new Checkers(
    {
      now: () => world.now,
      cms,
      phones,
      serving,
      reachable,
      brokerUp: (id) => brokerOfCm(id).up,
      wallOf: (id) => cms.get(id)!.host.wall(),
      servicesAnswer: (id) => services.answers(id),
      servicesWholeSince: (p, id) => services.wholeSince(p, id),
      operators: [OPERATOR_ID],
    },
    plant === 'kick' ? { ...bounds(topo, MAX_DELAY_MS), stormMax: 20 } : bounds(topo, MAX_DELAY_MS),
    topo,
  );
  net.observers.push((_b, from, topic, payload) => checkers.onPublish(from, topic, payload));
  net.onAccept.push((b, clientId) => checkers.onConnect(b, clientId));
  // The push part of no-forged-effect and no-replayed-online: what a call manager's lists say it believes of its peers.
  const liveness = new LivenessChecks({ now: () => world.now, net, cms, serving }, topo, checkers.bounds.liveWindowMs, (inv, d) => checkers.violate(inv, d));
  net.observers.push((b, from, topic, payload) => liveness.onPublish(b, from, topic, payload));
  net.onAccept.push((b, clientId) => liveness.onConnect(b, clientId));
  // Rebalancing on/off and membership changes (src/sim/rebalance.ts), as an operator does them: a restart with an edited config.
  if (plant === 'wide-threshold') cms.get('cm-a')!.over = { threshold: 0.9 };
  // removed-gone (src/sim/removal.ts): a removal's restarts retire the member; keep-removed leaves `retired` out.
  if (plant === 'keep-removed') plan.noRetired = true;
  const ka = topo.keepalive;
  // The last restarted member's state reaches its peers within its connection and two crossings each way, and 1 s for its start's disk (removal.ts).
  const removal = new RemovalChecker(() => world.now, cms, phones, ka.intervalMs * (ka.missLimit + 1) + ka.ackTimeoutMs + 2000, (d) => checkers.violate('removed-gone', d), 4 * MAX_DELAY_MS + 1000);
  const groupView = scheduleRebalance(world, plan, topo, cms, (cm, ids, retired) => {
    checkers.setGroup(cm, ids, retired);
    // Judged from the operator's edit of the rolling restart, whether it retires the member or not (the plant).
    if (plan.membership?.kind === 'remove' && cm !== plan.membership.cm) removal.edited(cm, plan.membership.cm);
  });
  if (plan.membership?.kind === 'remove') removal.newGroup = topo.group.map((c) => c.id).filter((id) => id !== plan.membership!.cm);

  // Everyone starts.
  const start = root.fork('start');
  for (const h of cms.values()) world.at(start.int(0, 500), () => h.start());
  for (const p of phones.values()) world.at(start.int(200, 3000), () => p.boot());

  // Faults.
  const hostile = new HostilePhone(world, net, new Host(world, 'hostile'), topo, root.fork('hostile'));
  let faultsEnd = 0;
  for (const f of faults) {
    faultsEnd = Math.max(faultsEnd, f.at + f.durationMs + (f.midWrite === true ? 60_000 : 0));
    world.at(f.at, () => {
      world.trace(`fault ${describeFault(f)}`);
      applyFault(f);
    });
  }
  function applyFault(f: Fault): void {
    const end = (fn: () => void): void => world.after(f.durationMs, () => {
      world.trace(`undo ${f.kind} ${f.target}`);
      fn();
    });
    switch (f.kind) {
      case 'crash': {
        const h = cms.get(f.target)!;
        h.crash();
        end(() => h.start());
        break;
      }
      case 'state-loss': {
        const h = cms.get(f.target)!;
        h.crash();
        h.disk.wipe();
        end(() => h.start());
        break;
      }
      case 'pause': {
        const h = cms.get(f.target)!;
        if (h.host.paused) return;
        h.host.pause();
        // The broker times a silent client out at 1.5 × its keep-alive (the will fires).
        const pausedAt = world.now;
        for (const b of net.brokers.values()) {
          for (const c of b.conns()) {
            if (c.host !== h.host) continue;
            world.after(Math.round(c.keepaliveMs * 1.5), () => {
              if (h.host.paused && world.now - pausedAt >= c.keepaliveMs * 1.5) b.drop(c, 'keepalive-timeout');
            });
          }
        }
        end(() => h.host.resume());
        break;
      }
      case 'broker-down': {
        const b = brokerById.get(f.target)!;
        if (!b.up) return;
        b.stop();
        end(() => b.start());
        break;
      }
      case 'partition': {
        const host = hostOf(f.target);
        const b = brokerById.get(f.broker!)!;
        if (host === undefined) return;
        net.setCut(host, b, f.way !== 'b2h', f.way !== 'h2b');
        end(() => net.setCut(host, b, false, false));
        break;
      }
      case 'clock-step': {
        const host = hostOf(f.target);
        if (host === undefined) return;
        host.wallOffset += f.stepMs!;
        end(() => (host.wallOffset -= f.stepMs!));
        break;
      }
      case 'power-cut': {
        const p = phones.get(f.target)!;
        if (f.midWrite !== true) {
          p.powerCut();
          end(() => p.boot());
          break;
        }
        let done = false;
        const cut = (): void => {
          if (done) return;
          done = true;
          p.disk.armCut(undefined);
          world.trace(`${p.phoneId} power-cut mid-write`);
          p.powerCut();
          end(() => p.boot());
        };
        p.disk.armCut(cut);
        world.after(60_000, cut);
        break;
      }
      case 'registrar-down': {
        const h = cms.get(f.target)!;
        if (!h.registrarUp) return;
        h.registrarUp = false;
        world.trace(`${f.target} registrar down`);
        end(() => (h.registrarUp = true));
        break;
      }
      case 'hostile-phone':
        hostile.activate(world.now + f.durationMs);
        hostileConfig.kick();
        hostileReprov.kick();
        break;
    }
  }

  // Workload: phones go off-hook and back (all on-hook well before the end).
  const work = root.fork('work');
  let hooksEnd = 0;
  for (const p of phones.values()) {
    for (let t = work.int(5_000, 30_000); t < 120_000; t += work.int(10_000, 60_000)) {
      const len = work.int(1_000, 20_000);
      world.at(t, () => p.agent !== null && p.hook.set(true));
      world.at(t + len, () => p.hook.set(false));
      hooksEnd = Math.max(hooksEnd, t + len);
    }
  }

  // Services navigation, remote config changes and operator lists (services.ts, operator.ts), each on a fork of its own.
  const services = new ServicesWorld(world, cms, topo, root.fork('services'), MAX_DELAY_MS);
  services.scheduleOutages();
  // Phone ↔ services server cuts apart from the broker link, on a fork of their own.
  services.scheduleCuts(root.fork('http-cuts'), topo.phones);
  for (const p of phones.values()) p.services = services;
  navigate(world, root.fork('navigate'), phones.values(), 120_000);
  const operator = new Operator(world, net, topo, root.fork('operator'), (id) => {
    const home = phones.get(id)?.agent?.home;
    return home === null || home === undefined ? undefined : cms.get(home)?.spec.broker;
  });
  const { lastPointersAt } = operator.schedule();
  // Re-provisioning: configs that set pointers (a rollback among them) and rebases, on a fork of their own.
  const { disturbedUntil: reprovisionedUntil } = operator.scheduleReprovision(root.fork('reprovision'));
  // A rebase to the held version − 1 and then a config's pointers (held + 1: the version the rebase named), on a fork of its own.
  const { disturbedUntil: reprovisionedAgainUntil } = operator.scheduleRebaseThenConfig(root.fork('reprovision-again'));
  // The operator who removed a member pushes no list naming it from then on.
  const removing = plan.membership?.kind === 'remove' ? plan.membership : undefined;
  if (removing !== undefined) world.at(removing.at, () => operator.removed.add(removing.cm));
  // An operator's config that sets pointers is an operator's list too, taken at the held version + 1 (removal.ts).
  net.observers.push((_b, from, topic, payload) => {
    const m = /^ipphone\/v1\/phone\/([^/]+)\/config(\/result)?$/.exec(topic);
    if (m === null) return;
    if (m[2] !== undefined) {
      // A phone's rollback reported (figures, tests).
      if (from?.identity === m[1] && (parseJson(payload) as { rolledBack?: unknown } | undefined)?.rolledBack === true) operator.reprovisioned['rolled-back'] = (operator.reprovisioned['rolled-back'] ?? 0) + 1;
      return;
    }
    if (from?.identity !== OPERATOR_ID) return;
    const env = parseJson(payload) as { body?: unknown } | undefined;
    if (typeof env?.body !== 'string') return;
    const body = parseJson(Buffer.from(env.body, 'base64')) as { config?: { pointers?: { id?: unknown }[] } } | undefined;
    if (Array.isArray(body?.config?.pointers)) removal.onConfigPointers(m[1]!, body.config.pointers.map((x) => String(x.id)));
  });
  // removed-gone tells the lists a member still running the old group signed (src/sim/removal.ts).
  if (removing !== undefined) net.observers.push((_b, from, topic, payload) => {
    const m = /^ipphone\/v1\/phone\/([^/]+)\/(pointers|ack)$/.exec(topic);
    if (m === null || from === null || (!cms.has(from.identity) && from.identity !== OPERATOR_ID)) return;
    const j = parseJson(payload) as { pointers?: unknown; body?: unknown } | undefined;
    const env = m[2] === 'ack' ? j?.pointers : j;
    if (env !== undefined && env !== null && typeof (env as { body?: unknown }).body === 'string') removal.onList(from.identity, m[1]!, env);
  });
  const hostileConfig = new HostileConfig(world, hostile, topo, root.fork('hostile-config'));
  hostile.aim = root.fork('hostile-aim');
  // It replays the operator's rebases and pointer-setting configs it read (src/sim/replay.ts), on a fork of its own.
  const hostileReprov = new HostileReprovision(world, net, hostile, topo, root.fork('hostile-reprov'));
  if (plant === 'replayable-rebase') plantReplayableRebase(world, net, phones, operator, hostile, hostileReprov, () => topo.pointers.map((id) => allCms(topo).find((c) => c.id === id)!).map((c) => ({ id: c.id, broker: c.broker, services: c.services })));
  if (plant === 'deaf-services') world.at(30_000, () => services.deaf.add('cm-a'));
  if (plant === 'stray-rebase') {
    // A rebase signed with the trusted key that no operator sent (a leaked key), 10 minutes below what each phone holds.
    world.at(30_000, () => {
      for (const [id, p] of phones) {
        if (p.agent === null || (p.agent.state as unknown) === undefined || p.agent.state.listVersion <= 600_000) continue;
        const held = p.agent.state.listVersion;
        const body = rebaseBody(p.agent.state.list.map((x) => ({ ...x })), 'admin', { phone: id, now: p.host.wall(), held, version: held - 600_000, expiresInMs: 600_000 });
        for (const b of topo.brokers) net.byUrl(b.url)!.publish(null, `${PREFIX}/phone/${id}/pointers`, Buffer.from(JSON.stringify(signEnvelope(body, signingKey, KEY_ID))), false);
      }
    });
  }
  if (plant === 'stray-services') {
    services.stray = { keep: 'cm-a' };
    world.at(30_000, () => services.outage.add('cm-a'));
  }
  if (plant === 'misplaced-nav') {
    services.misplace = { keep: 'cm-a' };
    world.at(30_000, () => services.outage.add('cm-a'));
  }
  // services-relative (src/sim/services-relative.ts): pages reached from a services page fail over to the same place.
  const relative = new ServicesRelative([...allCms(topo), STRAY_SERVICES], phones, checkers.bounds.servicesWindowMs, (id) => services.answers(id), (p, id) => services.wholeSince(p, id), (d) => checkers.violate('services-relative', d), () => checkers.checks++);
  services.observers.push((r) => relative.onFetch(r, world.now));
  if (plant === 'stray-config') {
    world.at(30_000, () => {
      const wall = cms.get('cm-a')!.host.wall();
      for (const b of topo.brokers.filter((x) => topo.group.some((c) => c.broker === x.url))) {
        for (const p of phones.keys()) net.byUrl(b.url)!.publish(null, `${PREFIX}/phone/${p}/config`, Buffer.from(JSON.stringify(signEnvelope({ version: wall + 1_000_000, config: { services: { refreshMs: 50_000 } }, phone: p }, signingKey, KEY_ID))), false);
      }
    });
  }

  // SIP: a registrar per call manager, the phones' user agents, calls (src/sim/sip.ts), each on a fork of its own.
  const sip = new SipWorld(world, net, root.fork('sip'), MAX_DELAY_MS, topo, cms, plant === 'registrar-keeps' || plant === 'registrar-forgets' ? plant : undefined);
  for (const p of phones.values()) p.sipWorld = sip;
  const callsEnd = scheduleCalls(world, root.fork('calls'), phones, sip);
  const sipAtHome = new SipAtHome(sip, phones, sipBounds(topo, MAX_DELAY_MS), (d) => checkers.violate('sip-at-home', d), () => checkers.checks++);
  // Digest authentication and the operator's password edits (src/sim/sip-auth.ts), and their checkers.
  let authUntil = 0;
  let authChecks: AuthChecks | undefined;
  if (authPlan !== undefined) {
    const auth = (sip.auth = new SipAuth(world, authPlan, plant?.startsWith('auth-') === true ? (plant as AuthPlant) : undefined));
    authUntil = auth.schedule();
    const ab = authBounds(authPlan.authRetryMs, topo.phoneSip.registerTimeoutMs, MAX_DELAY_MS, sipBounds(topo, MAX_DELAY_MS).registerMs);
    const ac = (authChecks = new AuthChecks(() => world.now, sip, auth, net, phones, ab, (inv, d) => checkers.violate(inv, d), () => checkers.checks++));
    sipAtHome.exempt = (pid) => ac.exempt(pid);
    net.observers.push((b, from, topic, payload) => ac.onPublish(b.id, from?.identity ?? null, topic, payload));
  }

  // An operator's list is a change the phone must act on like a fault's: fallback is judged a quiet
  // period after the last one (seed 400,134: a list at 93 s, the run ended at 104 s).
  const disturbedUntil = Math.max(faultsEnd, groupView.endMs, lastPointersAt, reprovisionedUntil, reprovisionedAgainUntil);
  // converge: judged from when nothing disturbs the group (faults, restarts, busy phones); such a run lasts until it can be.
  // An operator's list that overrides a rebalance release ends it at the phone's next keep-alive
  // (rebalancer.ts onReport; seed 7189 once waited out RELEASED_PERIODS here): no wait after it.
  const quietFrom = Math.max(disturbedUntil, hooksEnd, callsEnd, 60_000);
  const cb = topo.rebalance !== undefined ? convergeBounds(topo.rebalance, topo, checkers.bounds.fallbackMs) : undefined;
  const converge = cb !== undefined ? new ConvergeChecker(() => world.now, phones, groupView, topo.rebalance!, cb, quietFrom, (d) => checkers.violate('converge', d), (id) => cms.get(id)!.host.wall()) : undefined;
  if (converge !== undefined) net.observers.push((_b, from, topic, payload) => {
    const m = /^ipphone\/v1\/phone\/([^/]+)\/event$/.exec(topic);
    if (m === null || from?.identity !== m[1]) return;
    const e = parseJson(payload) as { type?: unknown; reason?: unknown; from?: unknown; to?: unknown } | undefined;
    if (e?.type === 'rehomed') converge.onRehomed(m[1]!, e.reason, e.from, e.to);
  });
  if (plant === 'flap' && cb !== undefined) {
    const at = quietFrom + cb.settleMs + Math.round(cb.convergeMs / 2);
    const ids = [...topo.pointers];
    let moved: { phone: string; from: string; to: string } | undefined;
    world.at(at, () => {
      const p = [...phones.values()].find((x) => x.agent !== null && ['cm-a', 'cm-b', 'cm-c'].includes(x.agent.home ?? ''));
      if (p === undefined) return;
      const from = p.agent!.home!;
      const to = from === 'cm-a' ? 'cm-b' : 'cm-a';
      moved = { phone: p.phoneId, from, to };
      pushAs(from, p.phoneId, cms.get(from)!.host.wall() + 60_000, [to, ...ids.filter((x) => x !== to)], 'rebalance');
    });
    world.at(at + 8000, () => {
      if (moved !== undefined) pushAs(moved.to, moved.phone, cms.get(moved.to)!.host.wall() + 120_000, [moved.from, ...ids.filter((x) => x !== moved!.from)], 'rebalance');
    });
  }
  const endAt = Math.max(Math.max(disturbedUntil, 60_000) + QUIET_MS, cb !== undefined ? quietFrom + cb.settleMs + cb.convergeMs + 5000 : 0, authUntil > 0 ? authUntil + QUIET_MS : 0);
  const homes = new Map<string, string | null>();
  await world.runUntil(endAt, () => {
    for (const [id, p] of phones) {
      const home = p.agent === null || (p.agent.state as unknown) === undefined ? null : p.agent.home;
      if (homes.get(id) !== home) {
        homes.set(id, home);
        world.trace(`${id} home ${home ?? '-'}${p.agent !== null && home !== null ? ` v${p.agent.state.listVersion} [${p.agent.state.list.map((x) => x.id).join(',')}]` : ''}`);
      }
    }
    checkers.tick();
    liveness.tick();
    converge?.tick();
    sipAtHome.tick(world.now);
    authChecks?.tick();
    removal.tick();
    relative.tick(world.now);
  }, () => checkers.violations.length > 0);
  if (checkers.violations.length === 0) checkers.finish(disturbedUntil);
  const errors = [...[...cms.values()].flatMap((h) => h.errors), ...[...phones.values()].flatMap((p) => p.errors)];
  // Stop the world: nothing of this run may fire in the next.
  for (const h of cms.values()) h.crash();
  for (const p of phones.values()) p.powerCut();
  return {
    seed,
    violations: checkers.violations,
    faults,
    simulatedMs: world.now,
    events: world.events,
    checks: checkers.checks,
    traceHash: world.traceHash(),
    tail: world.tail(40),
    open,
    errors,
    reprovisioned: { ...operator.reprovisioned, ...(checkers.wentDown > 0 ? { 'went-down': checkers.wentDown } : {}) },
    relativeJudged: relative.judged,
    ...(sip.auth !== null ? { authRefusals: sip.auth.refusals } : {}),
    replays: { recorded: hostileReprov.recorded.length, replayed: hostileReprov.replayed },
  };
}

function parseJson(payload: Buffer): unknown {
  try {
    return JSON.parse(payload.toString('utf8'));
  } catch {
    return undefined;
  }
}
