/**
 * Footprint (issue #2, figures 3 and 4), on a group of its own:
 * - RSS: two agents homed on cm-a — one run through tsx from src/, one
 *   compiled from dist/ — next to a bare `node -e "setInterval(()=>{},1000)"`,
 *   all spawned together; VmRSS read from /proc after `rssMs`.
 * - Flash writes during steady keep-alives: `stateWrites` from each agent's
 *   retained status at the start and end of a `steadyMs` window, and changes
 *   of the state directories' files (mtime/size/inode polled every 250 ms,
 *   plus fs.watch events) over the same window.
 * - Per Node line (20, 22, 24; `scripts/node-runtimes.mjs`): the staged
 *   image's agent (dist/image, with the addons built for that runtime) as the
 *   unit runs it — the unit's node options, jitless under W^X — and with the
 *   JIT (the same options without `--jitless`, not under W^X), each beside a
 *   bare node of the same version with the same options, all spawned in the
 *   same group so they share the contention; RSS and CPU per hour of each,
 *   and the agent/bare ratio per line (issue #9's figure, goal ≤ 1.2×).
 *   The same again as deployed (issue 18): `mqtts:` with a client
 *   certificate (test/helpers/pki.ts, openssl) to a TLS-only broker of the
 *   production shape, beside the same bare node, in the same run. These
 *   agents and their bare nodes get the unit's environment only
 *   ({@link unitEnvWrap}), not this machine's.
 * The RSS read happens inside the steady window (both start once homed).
 */
import { readdirSync, statSync, watch, type FSWatcher } from 'node:fs';
import path from 'node:path';
import { cpuMs, distStaleFiles, ensureDist, Observer, rssKiB, sleep, spawnNode, startAgent, startGroup, tempDir, type Child, type Runtime } from './harness.js';
import { shippedUnit, unitNodeOptions, wxWrapper, type WxWrapper } from '../test/helpers/unit-runtime.js';
import { nodeRuntime, stageRuntimeImage, SUPPORTED_MAJORS, type Major } from '../test/helpers/node-runtimes.js';
import { PtyLcd } from '../test/helpers/pty.js';
import { makePki } from '../test/helpers/pki.js';

export interface FootprintOptions {
  /** How long the agents are homed before VmRSS is read (ms). */
  rssMs: number;
  /** Length of the steady keep-alive window (ms); ≥ rssMs. */
  steadyMs: number;
  log: (line: string) => void;
  /** Node lines measured side by side with a bare node of the same version (default 20, 22, 24). */
  majors?: readonly Major[];
}

/** One Node line, one way of running the agent, beside a bare node of that version and those options. */
export interface RuntimeFootprint {
  major: Major;
  /** `vX.Y.Z`. */
  version: string;
  /**
   * `jitless`: as the unit runs it (its options, under W^X where the kernel has it), `mqtt:`;
   * `tls`: the same, `mqtts:` with a client certificate; `jit`: the same options without --jitless, `mqtt:`.
   */
  mode: 'jitless' | 'tls' | 'jit';
  flags: string[];
  wx: boolean;
  agentRssKiB: number;
  bareRssKiB: number;
  /** CPU (user + system) over the steady window, ms. */
  agentCpuMs: number;
  bareCpuMs: number;
  startToHomedMs: number;
}

/**
 * How an agent was run: a {@link Runtime} on the headless board, or
 * `unit-lcd`: as the unit runs it with a 20×4 serial LCD (on a socat pty), so
 * serialport is loaded as on a phone with a display.
 */
export type FootprintKind = Runtime | 'unit-lcd';

/** One agent's figures. */
export interface AgentFootprint {
  runtime: FootprintKind;
  rssKiB: number;
  /** From spawn to the first retained status showing the phone homed, ms. */
  startToHomedMs: number;
  stateWritesStart: number;
  stateWritesEnd: number;
  /** Observed changes of files in the state directory (polled). */
  fileChanges: number;
  /** fs.watch events on the state directory. */
  watchEvents: number;
  /** Rehomes during the window (should be 0: otherwise the window was not steady). */
  rehomes: number;
  /** CPU time (user + system) used during the steady window, ms. */
  cpuMs: number;
}

export interface FootprintResult {
  bareRssKiB: number;
  /** Bare node with the agent unit's NODE_OPTIONS. */
  bareUnitFlagsRssKiB: number;
  /** The agent unit's NODE_OPTIONS, as measured. */
  unitFlags: string[];
  /** Whether the `unit` agent ran under W^X (PR_SET_MDWE), or why not. */
  wx: string;
  agents: AgentFootprint[];
  /** Per Node line and mode, side by side with a bare node of the same version and options. */
  runtimes: RuntimeFootprint[];
  rssMs: number;
  steadyMs: number;
  /** src/ files newer than the dist/ build that was measured. */
  distStale: string[];
}

/** A signature of every file in `dir`: name → mtime/size/inode. */
function snapshot(dir: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const name of readdirSync(dir)) {
    try {
      const st = statSync(path.join(dir, name));
      out.set(name, `${st.mtimeMs}:${st.size}:${st.ino}`);
    } catch {
      out.set(name, 'gone');
    }
  }
  return out;
}

/** Count changes of the files of `dir` by polling every `everyMs`, plus fs.watch events. */
export class DirWatch {
  changes = 0;
  events = 0;
  #last: Map<string, string>;
  readonly #timer: NodeJS.Timeout;
  readonly #watcher: FSWatcher;

  constructor(readonly dir: string, everyMs = 250) {
    this.#last = snapshot(dir);
    this.#watcher = watch(dir, () => {
      this.events++;
    });
    this.#timer = setInterval(() => this.poll(), everyMs);
  }

  poll(): void {
    const now = snapshot(this.dir);
    for (const [name, sig] of now) if (this.#last.get(name) !== sig) this.changes++;
    for (const name of this.#last.keys()) if (!now.has(name)) this.changes++;
    this.#last = now;
  }

  #closed = false;

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#timer);
    this.#watcher.close();
    this.poll();
  }
}

function num(v: unknown): number {
  if (typeof v !== 'number') throw new Error(`status field is ${JSON.stringify(v)}, not a number`);
  return v;
}

export async function runFootprint(o: FootprintOptions): Promise<FootprintResult> {
  if (o.steadyMs < o.rssMs) throw new Error(`--steady-ms (${o.steadyMs}) must be ≥ the RSS window (${o.rssMs})`);
  await ensureDist();
  const group = await startGroup();
  const observer = await Observer.connect(group.broker.url);
  // The deployed set-up: a TLS-only broker requiring client certificates (CN as user name).
  const pki = await makePki();
  const client = await pki.client('p-bench-rss-tls');
  const tlsGroup = await startGroup({ tls: { ca: pki.ca.cert, server: pki.server, client } });
  const tlsObserver = await Observer.connect(tlsGroup.broker.url, tlsGroup.clientOptions);
  const children: Child[] = [];
  const watches: DirWatch[] = [];
  const closers: Array<() => Promise<void>> = [];
  try {
    await group.startCm('cm-a', observer);
    await group.startCm('cm-b', observer);
    await tlsGroup.startCm('cm-a', tlsObserver);
    const bare = spawnNode('bare-node', ['-e', 'setInterval(()=>{},1000)']);
    const unitFlags = unitNodeOptions();
    const bareUnit = spawnNode('bare-node-unit-flags', [...unitFlags, '-e', 'setInterval(()=>{},1000)']);
    children.push(bare, bareUnit);
    const wx = wxWrapper();
    const lcd = await PtyLcd.start(tempDir('lcd'));
    closers.push(() => lcd.close());
    const kinds: FootprintKind[] = ['tsx', 'dist', 'bundle', 'unit', 'unit-lcd'];
    const agents = kinds.map((runtime) => {
      const phone = `p-bench-rss-${runtime}`;
      const stateDir = tempDir(`state-${runtime}`);
      const spawnedAt = performance.now();
      const config = group.agentConfig(phone, { holdMs: 120_000, stateDir });
      const child = runtime === 'unit-lcd' ? startAgent(phone, config, 'unit', ['--board', lcd.board]) : startAgent(phone, config, runtime);
      children.push(child);
      return { runtime, phone, stateDir, child, spawnedAt, homedMs: NaN };
    });
    const lines = (o.majors ?? SUPPORTED_MAJORS).flatMap((major) => {
      const rt = nodeRuntime(major);
      const lib = stageRuntimeImage(rt);
      return (['jitless', 'tls', 'jit'] as const).map((mode) => {
        const flags = mode === 'jit' ? unitFlags.filter((f) => f !== '--jitless') : unitFlags;
        // Only the unit's environment (unitEnvWrap), as systemd starts it; under W^X unless with the JIT.
        const w = unitEnvWrap(mode !== 'jit' ? wx : undefined);
        const phone = `p-bench-rss-node${major}-${mode}`;
        const g = mode === 'tls' ? tlsGroup : group;
        const config = g.agentConfig(phone, { holdMs: 120_000, stateDir: tempDir(`state-node${major}-${mode}`) });
        const spawnedAt = performance.now();
        const child = spawnNode(phone, [...flags, path.join(lib, 'ipphone-agent.mjs'), '--config', config], w, rt.node);
        const bareLine = spawnNode(`bare-node${major}-${mode}`, [...flags, '-e', 'setInterval(()=>{},1000)'], w, rt.node);
        children.push(child, bareLine);
        return { major, version: rt.version, mode, flags, wx: mode !== 'jit' && wx.supported, phone, child, bare: bareLine, spawnedAt, homedMs: NaN, observer: mode === 'tls' ? tlsObserver : observer };
      });
    });
    // Spawned together, so each start-to-homed time sees the same contention.
    await Promise.all(
      [...agents, ...lines].map(async (a) => {
        await ('observer' in a ? a.observer : observer).waitHomed(a.phone, 'cm-a', 60_000, a.child);
        a.homedMs = performance.now() - a.spawnedAt;
      }),
    );
    // Let the first exchanges settle (first list adoption may legitimately write once).
    await sleep(3000);

    o.log(`footprint: steady window ${Math.round(o.steadyMs / 1000)} s, RSS read after ${Math.round(o.rssMs / 1000)} s`);
    const start = agents.map((a) => {
      const s = observer.status(a.phone);
      if (s === undefined) throw new Error(`${a.phone}: no status`);
      watches.push(new DirWatch(a.stateDir));
      return { writes: num(s.stateWrites), rehomes: num(s.rehomes), cpuMs: cpuMs(a.child.pid) };
    });
    const lineCpu = lines.map((l) => ({ agent: cpuMs(l.child.pid), bare: cpuMs(l.bare.pid) }));
    const t0 = Date.now();
    await sleep(o.rssMs);
    for (const c of children) if (!c.alive()) throw new Error(`${c.name} exited:\n${c.tail()}`);
    const bareRssKiB = rssKiB(bare.pid);
    const bareUnitFlagsRssKiB = rssKiB(bareUnit.pid);
    const rss = agents.map((a) => rssKiB(a.child.pid));
    const lineRss = lines.map((l) => ({ agent: rssKiB(l.child.pid), bare: rssKiB(l.bare.pid) }));
    for (const [i, l] of lines.entries()) o.log(`  RSS Node ${l.version} ${l.mode}: agent ${lineRss[i]!.agent} KiB, bare ${lineRss[i]!.bare} KiB (${(lineRss[i]!.agent / lineRss[i]!.bare).toFixed(2)}×)`);
    o.log(`  RSS: bare ${bareRssKiB} KiB (with the unit's flags ${bareUnitFlagsRssKiB}), ${agents.map((a, i) => `${a.runtime} ${rss[i]} KiB`).join(', ')}`);
    let left = o.steadyMs - (Date.now() - t0);
    while (left > 0) {
      await sleep(Math.min(left, 60_000));
      left = o.steadyMs - (Date.now() - t0);
      if (left > 0) o.log(`  steady: ${Math.round((o.steadyMs - left) / 1000)} s of ${Math.round(o.steadyMs / 1000)} s`);
      for (const a of [...agents, ...lines]) if (!a.child.alive()) throw new Error(`${a.phone} exited:\n${a.child.tail()}`);
    }
    for (const w of watches) w.close();
    const cpuEnd = agents.map((a) => cpuMs(a.child.pid));
    const lineCpuEnd = lines.map((l) => ({ agent: cpuMs(l.child.pid), bare: cpuMs(l.bare.pid) }));
    const result: FootprintResult = {
      bareRssKiB,
      bareUnitFlagsRssKiB,
      unitFlags,
      wx: wx.supported ? 'under PR_SET_MDWE (W^X)' : `not under W^X here: ${wx.why}`,
      rssMs: o.rssMs,
      steadyMs: o.steadyMs,
      distStale: distStaleFiles(),
      runtimes: lines.map((l, i) => ({
        major: l.major,
        version: l.version,
        mode: l.mode,
        flags: l.flags,
        wx: l.wx,
        agentRssKiB: lineRss[i]!.agent,
        bareRssKiB: lineRss[i]!.bare,
        agentCpuMs: lineCpuEnd[i]!.agent - lineCpu[i]!.agent,
        bareCpuMs: lineCpuEnd[i]!.bare - lineCpu[i]!.bare,
        startToHomedMs: l.homedMs,
      })),
      agents: agents.map((a, i) => {
        const s = observer.status(a.phone)!;
        return {
          runtime: a.runtime,
          rssKiB: rss[i]!,
          startToHomedMs: a.homedMs,
          stateWritesStart: start[i]!.writes,
          stateWritesEnd: num(s.stateWrites),
          fileChanges: watches[i]!.changes,
          watchEvents: watches[i]!.events,
          rehomes: num(s.rehomes) - start[i]!.rehomes,
          cpuMs: cpuEnd[i]! - start[i]!.cpuMs,
        };
      }),
    };
    await Promise.all(children.map((c) => c.stop('SIGTERM')));
    return result;
  } finally {
    for (const w of watches) w.close();
    await Promise.all(children.map((c) => c.stop('SIGKILL')));
    for (const c of closers.reverse()) await c().catch(() => undefined);
    await observer.close().catch(() => undefined);
    await tlsObserver.close().catch(() => undefined);
    await group.close();
    await tlsGroup.close();
    pki.remove();
  }
}

/** The PATH systemd gives a service (systemd.exec(5), "Environment Variables in Spawned Processes"). */
export const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * A command prefix that runs node with the agent unit's environment only — its
 * `Environment=` and systemd's PATH, nothing of this machine's (e.g.
 * NODE_EXTRA_CA_CERTS, which makes node read a CA bundle at start: +0.8–1.7 MiB
 * measured, on the bare node as on the agent) — and under W^X when `wx` is given.
 */
export function unitEnvWrap(wx?: WxWrapper): { command: string; args: string[] } {
  const env = { ...shippedUnit('ipphone-agent.service').env, PATH: SYSTEMD_PATH };
  const vars = Object.entries(env).map(([k, v]) => `${k}=${v}`);
  return { command: 'env', args: ['-i', ...vars, ...(wx?.supported ? [wx.command, ...wx.args] : [])] };
}

/** Goal of issue #9: the agent as the unit runs it within 1.2× a bare node of the same version and options. */
export const RUNTIME_RSS_GOAL = 1.2;

/**
 * Table rows (figure, this run, goal, ratio / verdict) for the per-runtime
 * figures: RSS agent vs bare node of the same version and options, and CPU
 * per hour of each.
 */
export function runtimeFootprintRows(f: Pick<FootprintResult, 'runtimes' | 'rssMs' | 'steadyMs'>): Array<[string, string, string, string]> {
  const mib = (kib: number): string => `${(kib / 1024).toFixed(1)} MiB`;
  const perHour = (ms: number): string => `${((ms / f.steadyMs) * 3600).toFixed(1)} s per hour`;
  return f.runtimes.flatMap((r) => {
    const unit = `as the unit runs it (\`${r.flags.join(' ')}\`${r.wx ? ', under W^X' : ', not under W^X'})`;
    const how = r.mode === 'jitless' ? `${unit}, mqtt:` : r.mode === 'tls' ? `${unit}, mqtts: with a client certificate` : `with the JIT (\`${r.flags.join(' ')}\`), mqtt:`;
    const ratio = r.agentRssKiB / r.bareRssKiB;
    return [
      [`RSS agent on Node ${r.version} ${how}, homed ${Math.round(f.rssMs / 1000)} s; bare node ${r.version} with the same options`, `${mib(r.agentRssKiB)}; bare ${mib(r.bareRssKiB)}`, `≤ ${RUNTIME_RSS_GOAL}× bare`, `${ratio.toFixed(2)}× — ${ratio <= RUNTIME_RSS_GOAL ? 'meets' : `misses by ${mib(r.agentRssKiB - RUNTIME_RSS_GOAL * r.bareRssKiB)}`}`],
      [`CPU agent on Node ${r.version} ${r.mode}, ${Math.round(f.steadyMs / 1000)} s steady keep-alives (1 s); bare node same options`, `${perHour(r.agentCpuMs)}; bare ${perHour(r.bareCpuMs)}`, 'reported', `start → homed ${(r.startToHomedMs / 1000).toFixed(2)} s`],
    ];
  });
}
