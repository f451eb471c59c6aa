/**
 * A backup call manager absorbing a failed peer (issue 18): N phones homed on
 * cm-a, kill -9 cm-a, every phone's keep-alive to cm-b at the will; the time
 * from the will to the last phone acked by cm-b with a list that demotes
 * cm-a, beside the broker's own publish→subscribe ceiling for N messages,
 * measured in the same run with the same generator.
 *
 * Real parts: mosquitto (test/helpers/mosquitto.ts, `set_tcp_nodelay true` as
 * deploy/ ships it) and both call managers as `node dist/bin/ipphone-cm.js`.
 * The phones are raw MQTT clients in several child processes
 * (bench/absorb-gen.ts): pre-encoded packets over a few dozen connections, no
 * agent core — a real phone does its own parsing and signature check on its
 * own CPU, so here the generator must not be what is measured. Each phone's
 * acks and lists are stored on arrival and checked after the run (the ack is
 * cm-b's, the list names the phone, puts cm-a last, keeps the group, is above
 * the version the phone held; a sample of signatures verified).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type MqttClient } from 'mqtt';
import { generateKeyPair } from '../src/protocol/envelope.js';
import { startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.js';
import { freePort } from '../test/helpers/net.js';
import type { FailoverReport, GenCommand } from './absorb-gen.js';
import { cpuMs, installCleanup, removeTempDir, ROOT, rssKiB, sleep, spawnNode, tempDir, type Child } from './harness.js';

const PREFIX = 'ipphone/v1';
const TRIGGER = 'bench/absorb/go';
/** The phones' keep-alive interval: the agent's production default (`keepalive.intervalMs`). */
export const PHONE_INTERVAL_MS = 5000;

export interface AbsorbOptions {
  phones: number;
  /** Generator child processes (default 4). */
  procs?: number;
  /** Connections per generator process (default 25). */
  connections?: number;
  /** Write a V8 CPU profile of cm-b into this directory (`--cpu-prof`). */
  profileDir?: string;
  /** The checkout whose `dist/bin/ipphone-cm.js` runs both call managers (default: this one). */
  root?: string;
  /** Extra cm config fields (merged over both call managers' configs). */
  cmConfig?: Record<string, unknown>;
  /** Publish each phone's retained status (homed on cm-a) before the failure, as agents do (default true). */
  statuses?: boolean;
  /** ms to leave cm-b idle after the phones are homed and their statuses out (default 3000). */
  idleMs?: number;
  log: (line: string) => void;
}

export interface AbsorbResult {
  phones: number;
  procs: number;
  connections: number;
  /** ms from the will (first seen) to the last phone done; NaN if some never were. */
  absorbMs: number;
  /** ms from the will to the first / median phone done. */
  firstMs: number;
  /** ms from the will to the first ack of cm-b (whatever its list). */
  firstAckMs: number;
  /** ms from the will to the tenth of the phones done (the first phones' failover, less noisy than the first alone). */
  tenthMs: number;
  /** Per phone done, ms from its ack to its list (0 when the ack carried it): median and 90th percentile. */
  ackToListMs: [number, number];
  medianMs: number;
  /** Phones done / acked within the window; with a bad list. */
  done: number;
  bad: number;
  badReasons: string[];
  verified: number;
  acksPerSec: number;
  /** Broker ceiling: N messages, one per phone on its ack topic, trigger → last arrival. */
  ceilingMs: number;
  ceilingPerSec: number;
  /** cm-b's CPU ms from the will to the last phone done (read just after). */
  cmCpuMs: number;
  /** cm-b's CPU ms while idle between homing and the will (presigning, if any). */
  cmIdleCpuMs: number;
  brokerCpuMs: number;
  cmRssKiB: number;
  resent: number;
  acks: number;
  pushes: number;
  listsInAck: number;
  /** Keep-alives cm-b counted (its /metrics) during the failover, and the acks it dropped. */
  cmKeepalives: number;
  cmAcksDropped: number;
  versions: number[];
  /** ms since the will at which each phone was done (sorted), for the plot. */
  doneMs: number[];
  /** Load average (1 min) at the start and at the end of the failover. */
  load: [number, number];
  /** Where cm-b's profile went, if profiled. */
  profile?: string;
  /** The failover on the profile's clock (CLOCK_MONOTONIC µs): kill → every report in. */
  profileWindow: { fromUs: number; toUs: number };
}

interface Gen {
  proc: ChildProcess;
  next<T>(ev: string, timeoutMs?: number): Promise<T>;
  send(c: GenCommand): void;
}

function forkGen(): Gen {
  const proc = fork(path.join(ROOT, 'bench/absorb-gen.ts'), [], { execArgv: ['--import', 'tsx'], cwd: ROOT, stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const queue: Record<string, unknown>[] = [];
  const waiting: { ev: string; resolve: (m: unknown) => void }[] = [];
  proc.on('message', (m: Record<string, unknown>) => {
    const w = waiting.findIndex((x) => x.ev === m.ev);
    if (w >= 0) waiting.splice(w, 1)[0]!.resolve(m);
    else queue.push(m);
  });
  gens.add(proc);
  proc.once('exit', () => gens.delete(proc));
  return {
    proc,
    send: (c) => void proc.send(c),
    next<T>(ev: string, timeoutMs = 120_000): Promise<T> {
      const q = queue.findIndex((x) => x.ev === ev);
      if (q >= 0) return Promise.resolve(queue.splice(q, 1)[0] as T);
      return new Promise<T>((resolve, reject) => {
        const t = setTimeout(() => reject(new Error(`absorb: generator ${proc.pid} sent no ${ev} within ${timeoutMs} ms`)), timeoutMs);
        proc.once('exit', (code) => reject(new Error(`absorb: generator ${proc.pid} exited (${code}) waiting for ${ev}`)));
        waiting.push({
          ev,
          resolve: (m) => {
            clearTimeout(t);
            resolve(m as T);
          },
        });
      });
    },
  };
}

const gens = new Set<ChildProcess>();
process.on('exit', () => {
  for (const g of gens) g.kill('SIGKILL');
});

/** The 1-minute load average, as uptime prints it. */
export const load1 = (): number => os.loadavg()[0]!;

async function metric(port: number, name: string): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const m = new RegExp(`^${name}(?:\\{[^}]*\\})? ([0-9.e+-]+)$`, 'm').exec(text);
  return m === null ? NaN : Number(m[1]);
}

/** Wait until `pid` uses under 5 % of a core over 500 ms (or `maxMs` passed). */
async function quiet(pid: number, maxMs: number): Promise<void> {
  const end = Date.now() + maxMs;
  while (Date.now() < end) {
    const c0 = cpuMs(pid);
    await sleep(500);
    if (cpuMs(pid) - c0 < 25) return;
  }
}

export async function runAbsorb(o: AbsorbOptions): Promise<AbsorbResult> {
  installCleanup();
  const n = o.phones;
  const procs = o.procs ?? 4;
  const connections = o.connections ?? 25;
  const log = o.log;
  // max_queued_messages: mosquitto drops a QoS 0 message for a client with that many packets
  // waiting for its socket. A real phone has its own connection and two messages at a failover;
  // here a connection carries hundreds of phones, so the per-connection bound is raised to
  // what it would be spread over their connections (the call manager's own is not affected).
  const broker: Mosquitto = await startMosquitto({ conf: ['set_tcp_nodelay true', `max_queued_messages ${Math.max(1000, 4 * Math.ceil(o.phones / ((o.procs ?? 4) * (o.connections ?? 25))) * 10)}`] });
  const dir = tempDir('absorb');
  const cms: Record<string, Child> = {};
  let watcher: MqttClient | undefined;
  const list: Gen[] = [];
  try {
    const { privatePem, publicPem } = generateKeyPair();
    const keyFile = path.join(dir, 'ops-1.pem');
    writeFileSync(keyFile, privatePem, { mode: 0o600 });
    const ids = ['cm-a', 'cm-b'];
    const ports: Record<string, number> = {};
    for (const id of ids) ports[id] = await freePort();
    const group = ids.map((id) => ({ id, broker: broker.url, services: `http://127.0.0.1:${ports[id]}/services`, capacity: n }));
    for (const id of ids) {
      // Rebalancing on (the production default: lists handed out lazily, the failover list pushed), but a
      // threshold no load difference exceeds: cm-a holding every phone before the failure is the scenario.
      const config = { cmId: id, broker: broker.url, http: { host: '127.0.0.1', port: ports[id] }, group, signingKey: keyFile, keyId: 'ops-1', stateDir: path.join(dir, `state-${id}`), log: { level: 'warn' }, rebalance: { threshold: 1 }, ...o.cmConfig };
      writeFileSync(path.join(dir, `${id}.json`), JSON.stringify(config, null, 2));
    }
    watcher = connect(broker.url, { clientId: `absorb-watch-${process.pid}`, reconnectPeriod: 0 });
    const states = new Map<string, { online: boolean; at: number }>();
    const onStates: (() => void)[] = [];
    watcher.on('message', (topic, payload) => {
      const at = performance.timeOrigin + performance.now();
      const id = /\/cm\/([^/]+)\/state$/.exec(topic)?.[1];
      if (id === undefined) return;
      try {
        states.set(id, { online: (JSON.parse(payload.toString('utf8')) as { online?: unknown }).online === true, at });
      } catch {
        return;
      }
      for (const f of onStates.splice(0)) f();
    });
    await watcher.subscribeAsync(`${PREFIX}/cm/+/state`, { qos: 1 });
    const stateIs = async (id: string, online: boolean, timeoutMs: number, since = 0): Promise<number> => {
      const end = Date.now() + timeoutMs;
      for (;;) {
        const s = states.get(id);
        if (s !== undefined && s.online === online && s.at >= since) return s.at;
        if (Date.now() > end) throw new Error(`absorb: ${id} not ${online ? 'online' : 'offline'} within ${timeoutMs} ms`);
        await new Promise<void>((r) => {
          onStates.push(r);
          setTimeout(r, 200);
        });
      }
    };
    const startCm = async (id: string, extra: string[] = []): Promise<Child> => {
      const since = performance.timeOrigin + performance.now();
      const child = spawnNode(id, [...extra, path.join(o.root ?? ROOT, 'dist/bin/ipphone-cm.js'), '--config', path.join(dir, `${id}.json`)]);
      cms[id] = child;
      try {
        await stateIs(id, true, 30_000, since);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- ${id} ---\n${child.tail()}`);
      }
      return child;
    };
    const profDir = o.profileDir;
    if (profDir !== undefined) mkdirSync(profDir, { recursive: true });
    const cmA = await startCm('cm-a');
    const cmB = await startCm('cm-b', profDir !== undefined ? ['--cpu-prof', '--cpu-prof-dir', profDir] : []);

    // The phones, split over the generator processes.
    const phoneIds = Array.from({ length: n }, (_, i) => `ab-${String(i + 1).padStart(6, '0')}`);
    for (let p = 0; p < procs; p++) list.push(forkGen());
    const slice = (p: number): string[] => phoneIds.filter((_, i) => i % procs === p);
    list.forEach((g, p) => g.send({ cmd: 'setup', url: broker.url, prefix: PREFIX, phones: slice(p), connections, trigger: TRIGGER, from: 'cm-a', publicPem, group: ids }));
    await Promise.all(list.map((g) => g.next('ready')));
    log(`absorb ${n}: ${procs} generators × ${connections} connections subscribed; homing on cm-a`);
    // Homing is set-up, not the figure: phones not acked yet ask again only every n/5 ms (cm-a signs
    // each phone's list once, and a resend storm would only bury it), within a bound that grows with n.
    const homeTimeoutMs = Math.max(120_000, n * 6);
    list.forEach((g) => g.send({ cmd: 'home', cm: 'cm-a', intervalMs: Math.max(1000, n / 5), timeoutMs: homeTimeoutMs }));
    const homed = await Promise.all(list.map((g) => g.next<{ left: number; versions: number[] }>('homed', homeTimeoutMs + 60_000)));
    const left = homed.reduce((s, h) => s + h.left, 0);
    if (left > 0) throw new Error(`absorb: ${left} phones not homed on cm-a`);
    const heldVersions = [...new Set(homed.flatMap((h) => h.versions))];
    if (o.statuses ?? true) {
      list.forEach((g) => g.send({ cmd: 'status', cm: 'cm-a' }));
      await Promise.all(list.map((g) => g.next('status-sent')));
    }
    // cm-b idle (whatever it does before a failure, it has had the time).
    const idle0 = cpuMs(cmB.pid);
    await sleep(o.idleMs ?? 3000);
    await quiet(cmB.pid, 60_000);
    const cmIdleCpuMs = cpuMs(cmB.pid) - idle0;

    // The broker's ceiling: one message per phone on its ack topic, all at one trigger.
    await quiet(broker.pid!, 10_000);
    list.forEach((g) => g.send({ cmd: 'ceiling', timeoutMs: 30_000 }));
    await sleep(200);
    watcher.publish(TRIGGER, 'go', { qos: 0 });
    const ceil = await Promise.all(list.map((g) => g.next<{ triggerAt: number; lastAt: number; count: number }>('ceiling', 60_000)));
    const ceilCount = ceil.reduce((s, c) => s + c.count, 0);
    const ceilingMs = Math.max(...ceil.map((c) => c.lastAt ?? NaN)) - Math.min(...ceil.map((c) => c.triggerAt ?? NaN));
    log(`absorb ${n}: broker ceiling ${ceilCount} messages in ${ceilingMs.toFixed(1)} ms`);

    // The failure.
    await quiet(cmB.pid, 10_000);
    const ka0 = await metric(ports['cm-b']!, 'ipphone_cm_keepalives_total');
    const dropped0 = await metric(ports['cm-b']!, 'ipphone_cm_acks_dropped_total');
    const windowMs = Math.max(3 * PHONE_INTERVAL_MS, n / 2);
    // The agent's production keep-alive interval (agent-config.ts default): a phone not acked asks again 5 s later.
    list.forEach((g) => g.send({ cmd: 'failover', to: 'cm-b', intervalMs: PHONE_INTERVAL_MS, windowMs, verifySample: 200 }));
    await sleep(300);
    const loadBefore = load1();
    const cpuB0 = cpuMs(cmB.pid);
    const cpuBroker0 = cpuMs(broker.pid!);
    const killAt = performance.timeOrigin + performance.now();
    const fromUs = Number(process.hrtime.bigint() / 1000n);
    process.kill(cmA.pid, 'SIGKILL');
    const reports = await Promise.all(list.map((g) => g.next<FailoverReport>('failover', windowMs + 60_000)));
    const toUs = Number(process.hrtime.bigint() / 1000n);
    const cmCpuMs = cpuMs(cmB.pid) - cpuB0;
    const brokerCpuMs = cpuMs(broker.pid!) - cpuBroker0;
    const loadAfter = load1();
    const cmRssKiB = rssKiB(cmB.pid);
    const cmKeepalives = (await metric(ports['cm-b']!, 'ipphone_cm_keepalives_total')) - ka0;
    const cmAcksDropped = (await metric(ports['cm-b']!, 'ipphone_cm_acks_dropped_total')) - dropped0;
    const watcherWill = states.get('cm-a')?.online === false ? states.get('cm-a')!.at : NaN;
    // NaN crosses IPC as null: "never" is anything that is not a finite number.
    const seen = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x);
    const willAt = Math.min(...reports.map((r) => r.willAt).filter(seen), seen(watcherWill) ? watcherWill : Infinity);
    const doneAbs = reports.flatMap((r) => r.doneAt);
    const doneMs = doneAbs.filter(seen).map((x) => x - willAt).sort((a, b) => a - b);
    const done = doneMs.length;
    const absorbMs = done === n ? doneMs[done - 1]! : NaN;
    log(`absorb ${n}: kill → will ${(willAt - killAt).toFixed(1)} ms; ${done}/${n} done, last ${doneMs[done - 1]?.toFixed(1)} ms after the will`);
    const dropping = broker.logTail().split('\n').filter((l) => /dropped/i.test(l));
    if (dropping.length > 0) log(`absorb ${n}: the broker dropped messages: ${dropping.slice(0, 3).join(' | ')}`);
    let profile: string | undefined;
    await cmB.stop('SIGTERM', 20_000);
    if (profDir !== undefined) {
      const f = readdirSync(profDir).filter((x) => x.endsWith('.cpuprofile')).map((x) => path.join(profDir, x));
      profile = f.sort().at(-1);
    }
    return {
      phones: n,
      procs,
      connections: procs * connections,
      absorbMs,
      firstMs: doneMs[0] ?? NaN,
      firstAckMs: Math.min(...reports.flatMap((r) => r.ackAt).filter(seen)) - willAt,
      medianMs: doneMs[Math.floor(done / 2)] ?? NaN,
      tenthMs: doneMs[Math.floor(done / 10)] ?? NaN,
      ackToListMs: ((): [number, number] => {
        const gaps = reports.flatMap((r) => r.doneAt.map((d, i) => (seen(d) && seen(r.ackAt[i]) ? d - r.ackAt[i] : NaN))).filter(seen).sort((a, b) => a - b);
        return [gaps[Math.floor(gaps.length / 2)] ?? NaN, gaps[Math.floor(gaps.length * 0.9)] ?? NaN];
      })(),
      done,
      bad: reports.reduce((s, r) => s + r.bad, 0),
      badReasons: reports.flatMap((r) => r.badReasons).slice(0, 5),
      verified: reports.reduce((s, r) => s + r.verified, 0),
      acksPerSec: (n * 1000) / absorbMs,
      ceilingMs,
      ceilingPerSec: ceilCount === n ? (n * 1000) / ceilingMs : NaN,
      cmCpuMs,
      cmIdleCpuMs,
      brokerCpuMs,
      cmRssKiB,
      resent: reports.reduce((s, r) => s + r.resent, 0),
      acks: reports.reduce((s, r) => s + r.acks, 0),
      pushes: reports.reduce((s, r) => s + r.pushes, 0),
      listsInAck: reports.reduce((s, r) => s + r.listsInAck, 0),
      cmKeepalives,
      cmAcksDropped,
      versions: [...new Set(reports.flatMap((r) => r.versions))].concat(heldVersions.map((v) => -v)),
      doneMs,
      load: [loadBefore, loadAfter],
      ...(profile !== undefined ? { profile } : {}),
      profileWindow: { fromUs, toUs },
    };
  } finally {
    for (const g of list) g.send({ cmd: 'close' });
    await sleep(200);
    for (const g of list) g.proc.kill('SIGKILL');
    await watcher?.endAsync();
    for (const c of Object.values(cms)) await c.stop('SIGKILL');
    await broker.kill();
    removeTempDir(dir);
  }
}

// ---------------------------------------------------------------- profile summary

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  children?: number[];
}

/**
 * Self time by function of a V8 `.cpuprofile` within [fromUs, toUs] of its clock
 * (all of it by default): the top `k` as `[name (file:line), ms]`.
 */
export function profileTop(file: string, k = 15, window?: { fromUs: number; toUs: number }): [string, number][] {
  const p = JSON.parse(readFileSync(file, 'utf8')) as { nodes: ProfileNode[]; samples: number[]; timeDeltas: number[]; startTime: number };
  const byId = new Map(p.nodes.map((x) => [x.id, x]));
  const self = new Map<string, number>();
  let t = p.startTime;
  for (let i = 0; i < p.samples.length; i++) {
    const dt = p.timeDeltas[i] ?? 0;
    t += dt;
    if (window !== undefined && (t < window.fromUs || t > window.toUs)) continue;
    const node = byId.get(p.samples[i]!)!;
    const f = node.callFrame;
    const name = `${f.functionName || '(anonymous)'} (${path.basename(f.url) || 'native'}:${f.lineNumber + 1})`;
    self.set(name, (self.get(name) ?? 0) + dt / 1000);
  }
  return [...self.entries()].sort((a, b) => b[1] - a[1]).slice(0, k);
}

// ---------------------------------------------------------------- the bench part

/**
 * A checkout of `rev` beside this one, built (tsc), for a "before" column run in
 * the same bench run: its root, or a reason it could not be made.
 */
export async function buildBaseline(rev: string, log: (s: string) => void): Promise<string> {
  const { execFileSync } = await import('node:child_process');
  const { existsSync, symlinkSync } = await import('node:fs');
  const sha = execFileSync('git', ['rev-parse', '--short', rev], { cwd: ROOT }).toString().trim();
  const dir = path.join(os.tmpdir(), `ipphone-absorb-${sha}`);
  if (!existsSync(path.join(dir, 'dist/bin/ipphone-cm.js'))) {
    log(`absorb: building ${sha} in ${dir} (git worktree) for the before column`);
    if (!existsSync(dir)) execFileSync('git', ['worktree', 'add', '--detach', dir, sha], { cwd: ROOT, stdio: 'ignore' });
    if (!existsSync(path.join(dir, 'node_modules'))) symlinkSync(path.join(ROOT, 'node_modules'), path.join(dir, 'node_modules'));
    execFileSync(process.execPath, [path.join(ROOT, 'node_modules/typescript/bin/tsc'), '-p', 'tsconfig.json'], { cwd: dir, stdio: 'inherit' });
  }
  return dir;
}

/** One column of the absorb table: which call manager build, with or without phones' statuses. */
export interface AbsorbVariant {
  label: string;
  root?: string;
  statuses: boolean;
}

export interface AbsorbRun {
  variant: AbsorbVariant;
  result?: AbsorbResult;
  error?: string;
}

/** Every size × variant, variants interleaved per size (the machine's load drifts). */
export async function runAbsorbPart(o: { sizes: readonly number[]; variants: readonly AbsorbVariant[]; profileDir?: string; log: (s: string) => void }): Promise<AbsorbRun[]> {
  const out: AbsorbRun[] = [];
  for (const n of o.sizes) {
    for (const v of o.variants) {
      o.log(`absorb: ${n} phones, ${v.label} (load ${load1().toFixed(2)})`);
      try {
        const profileDir = o.profileDir !== undefined ? path.join(o.profileDir, `${n}-${v.label.replace(/[^a-z0-9]+/gi, '-')}`) : undefined;
        const result = await runAbsorb({ phones: n, statuses: v.statuses, log: o.log, ...(v.root !== undefined ? { root: v.root } : {}), ...(profileDir !== undefined ? { profileDir } : {}) });
        out.push({ variant: v, result });
      } catch (err) {
        const msg = err instanceof Error ? err.message.split('\n')[0]! : String(err);
        o.log(`absorb: ${n} phones, ${v.label}: failed: ${msg}`);
        out.push({ variant: v, error: `${n} phones: ${msg}` });
      }
    }
  }
  return out;
}

const ms = (x: number): string => (Number.isFinite(x) ? (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${x.toFixed(0)} ms`) : 'n/a');

/** The results page section: one row per size × variant. */
export function absorbTable(runs: readonly AbsorbRun[]): string {
  const head = '| phones | call manager | will → last phone acked with its demoting list | first ack / first done / 10 % done / median | ack → list per phone (median / 90 %) | acks/s | broker ceiling (same run) | acks/s ÷ ceiling | cm-b CPU (will → last) | cm-b CPU idle before (3 s + until quiet) | broker CPU | keep-alives resent | lists checked / signatures verified | cm-b RSS after | load (1 min) before → after |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n';
  const rows = runs.map((r) => {
    const x = r.result;
    if (x === undefined) return `| — | ${r.variant.label} | failed: ${r.error ?? '?'} | | | | | | | | | | | | |`;
    const done = x.done === x.phones ? ms(x.absorbMs) : `${x.done}/${x.phones} in the window`;
    return `| ${x.phones.toLocaleString('en')} | ${r.variant.label} | ${done} | ${ms(x.firstAckMs)} / ${ms(x.firstMs)} / ${ms(x.tenthMs)} / ${ms(x.medianMs)} | ${ms(x.ackToListMs[0])} / ${ms(x.ackToListMs[1])} | ${Number.isFinite(x.acksPerSec) ? Math.round(x.acksPerSec).toLocaleString('en') : 'n/a'} | ${Math.round(x.ceilingPerSec).toLocaleString('en')}/s (${ms(x.ceilingMs)}) | ${Number.isFinite(x.acksPerSec) ? (x.acksPerSec / x.ceilingPerSec).toFixed(2) : 'n/a'} | ${x.cmCpuMs} ms | ${x.cmIdleCpuMs} ms | ${x.brokerCpuMs} ms | ${x.resent.toLocaleString('en')} | ${(x.done - x.bad).toLocaleString('en')} ok, ${x.bad} bad / ${x.verified} | ${(x.cmRssKiB / 1024).toFixed(0)} MiB | ${x.load[0].toFixed(1)} → ${x.load[1].toFixed(1)} |`;
  });
  return head + rows.join('\n') + '\n';
}
