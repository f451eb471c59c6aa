/**
 * Bench harness: real processes on 127.0.0.1 — a mosquitto broker, call
 * managers and agents as child processes — and an mqtt.js observer in the
 * bench process that timestamps what the phones publish. Every child is
 * SIGKILLed (after SIGCONT, in case it is stopped) and every temp dir removed
 * when the bench exits, including on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { keepNoDelay } from '../src/lib/mqtt-nodelay.js';
import { generateKeyPair } from '../src/protocol/envelope.js';
import { startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.js';
import { unitNodeOptions, wxWrapper } from '../test/helpers/unit-runtime.js';
import { freePort, waitFor } from '../test/helpers/net.js';

/** Repository root (the bench runs children with it as cwd). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const PREFIX = 'ipphone/v1';

// ---------------------------------------------------------------- cleanup

const children = new Set<ChildProcess>();
const dirs = new Set<string>();
const closers = new Set<() => void>();

function killAll(): void {
  for (const c of children) {
    if (c.exitCode !== null || c.signalCode !== null || c.pid === undefined) continue;
    // A SIGSTOPped child still dies on SIGKILL; SIGCONT first anyway so nothing lingers stopped.
    try {
      process.kill(c.pid, 'SIGCONT');
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  for (const close of closers) close();
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  dirs.clear();
}

let hooked = false;
/** Install the exit / Ctrl-C hooks once; idempotent. */
export function installCleanup(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', killAll);
  for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP'] as const) {
    process.once(sig, () => {
      process.stderr.write(`\nbench: ${sig}, cleaning up\n`);
      killAll();
      process.exit(130);
    });
  }
}

/** A temp dir removed on exit (or earlier with {@link removeTempDir}). */
export function tempDir(tag: string): string {
  const d = mkdtempSync(path.join(tmpdir(), `ipphone-bench-${tag}-`));
  dirs.add(d);
  return d;
}

export function removeTempDir(d: string): void {
  rmSync(d, { recursive: true, force: true });
  dirs.delete(d);
}

// ---------------------------------------------------------------- children

/** A tracked child process. */
export interface Child {
  readonly name: string;
  readonly proc: ChildProcess;
  readonly pid: number;
  /** Resolves when the process has exited. */
  readonly exited: Promise<void>;
  /** The last lines of stdout+stderr (for error messages). */
  tail(): string;
  /** Send `sig`; then, for terminating signals, wait for exit (SIGKILL after `graceMs`, default 3000). */
  stop(sig?: NodeJS.Signals, graceMs?: number): Promise<void>;
  alive(): boolean;
}

/**
 * Spawn `node ARGS` (cwd = repo root), tracked for cleanup; `wrap` runs node through a command (e.g. the W^X wrapper);
 * `node` is another runtime's binary (default: the one running the bench).
 */
export function spawnNode(name: string, args: readonly string[], wrap?: { command: string; args: readonly string[] }, node = process.execPath): Child {
  const proc = wrap
    ? spawn(wrap.command, [...wrap.args, node, ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] })
    : spawn(node, args, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  if (proc.pid === undefined) throw new Error(`${name}: spawn failed`);
  children.add(proc);
  const lines: string[] = [];
  const keep = (text: string): void => {
    lines.push(...text.split('\n').filter(Boolean));
    lines.splice(0, Math.max(0, lines.length - 40));
  };
  proc.stdout?.setEncoding('utf8').on('data', keep);
  proc.stderr?.setEncoding('utf8').on('data', keep);
  let exitedFlag = false;
  const exited = new Promise<void>((resolve) => {
    proc.once('exit', (code, signal) => {
      keep(`[${name} exited: code ${code}, signal ${signal}]`);
      exitedFlag = true;
      children.delete(proc);
      resolve();
    });
  });
  const pid = proc.pid;
  return {
    name,
    proc,
    pid,
    exited,
    tail: () => lines.join('\n'),
    alive: () => !exitedFlag,
    async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 3000) {
      if (exitedFlag) return;
      try {
        process.kill(pid, 'SIGCONT');
        process.kill(pid, sig);
      } catch {
        return;
      }
      const t = setTimeout(() => {
        if (!exitedFlag) proc.kill('SIGKILL');
      }, graceMs);
      await exited;
      clearTimeout(t);
    },
  };
}

/**
 * How a program is run: TypeScript through tsx, tsc's dist/, the esbuild
 * bundle of `npm run bundle`, or `unit`: the bundle as its systemd unit runs
 * it (the unit's NODE_OPTIONS, under W^X where the kernel has PR_SET_MDWE).
 */
export type Runtime = 'tsx' | 'dist' | 'bundle' | 'unit';

function programArgs(bin: 'ipphone-agent' | 'ipphone-cm', runtime: Runtime): string[] {
  if (runtime === 'tsx') return ['--import', 'tsx', path.join(ROOT, 'src/bin', `${bin}.ts`)];
  if (runtime === 'bundle') return [path.join(ROOT, 'dist/bundle', `${bin}.mjs`)];
  if (runtime === 'unit') return [...unitNodeOptions(`${bin}.service`), path.join(ROOT, 'dist/bundle', `${bin}.mjs`)];
  return [path.join(ROOT, 'dist/bin', `${bin}.js`)];
}

/** The W^X wrapper for the `unit` runtime, when this kernel has it. */
function unitWrap(runtime: Runtime): { command: string; args: string[] } | undefined {
  if (runtime !== 'unit') return undefined;
  const w = wxWrapper();
  return w.supported ? w : undefined;
}

/** Build dist/ and dist/bundle/ from the current sources (`npm run bundle`), so the figures are of this code. */
let built = false;

export async function ensureDist(): Promise<void> {
  if (built) return;
  built = true;
  process.stderr.write('bench: building dist/ and dist/bundle/ (npm run bundle)\n');
  const npm = spawn('npm', ['run', '--silent', 'bundle'], { cwd: ROOT, stdio: ['ignore', 'ignore', 'inherit'] });
  children.add(npm);
  const code = await new Promise<number | null>((r) => npm.once('exit', (c) => r(c)));
  children.delete(npm);
  if (code !== 0 || !existsSync(path.join(ROOT, 'dist/bundle/ipphone-agent.mjs'))) throw new Error(`npm run bundle failed (exit ${code})`);
}

/**
 * Files under src/ changed after dist/bin/ipphone-agent.js was built: a
 * non-empty answer means the dist/ figures are of older code.
 */
export function distStaleFiles(): string[] {
  const built = statSync(path.join(ROOT, 'dist/bin/ipphone-agent.js')).mtimeMs;
  const out: string[] = [];
  const walk = (dir: string): void => {
    for (const e of readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.ts') && statSync(p).mtimeMs > built) out.push(path.relative(ROOT, p));
    }
  };
  walk(path.join(ROOT, 'src'));
  return out;
}

// ---------------------------------------------------------------- group

export interface CmSpec {
  id: string;
  port: number;
  services: string;
  configFile: string;
}

/** Options of {@link startGroup}. */
export interface GroupOptions {
  /** Call manager ids, in priority order; default ['cm-a', 'cm-b']. */
  ids?: string[];
  /** Phones each CM is sized for; default 100. */
  capacity?: number;
  /** Extra mosquitto.conf lines, e.g. `set_tcp_nodelay true`; default none (a stock broker). */
  brokerConf?: readonly string[];
  /**
   * TLS for every connection: the broker gets a TLS-only listener in the
   * production shape (client certificates required, CN as user name) and
   * `set_tcp_nodelay` as `brokerConf` says; the CMs, agents and observer
   * connect over mqtts: with `client`. One client certificate for all: the
   * client ids stay the programs' own (`use_username_as_clientid false`),
   * which does not change what is timed.
   */
  tls?: TlsFiles;
}

/** PEM files of a TLS set-up (e.g. from test/helpers/pki.ts). */
export interface TlsFiles {
  /** The CA both sides trust. */
  ca: string;
  server: { cert: string; key: string };
  client: { cert: string; key: string };
}

/** A broker, a signing key and a CM group's configs; CMs are started with {@link Group.startCm}. */
export interface Group {
  readonly broker: Mosquitto;
  /** mqtt.js options the observer needs for this broker (TLS files). */
  readonly clientOptions: IClientOptions;
  readonly dir: string;
  readonly cms: ReadonlyMap<string, CmSpec>;
  readonly publicPem: string;
  readonly running: Map<string, Child>;
  /** Spawn CM `id` and wait until it has published `state {online:true}` (retained) after the spawn. */
  startCm(id: string, observer: Observer, timeoutMs?: number): Promise<Child>;
  /** Write an agent config; returns its path. */
  agentConfig(phoneId: string, opts: { holdMs: number; stateDir: string; intervalMs?: number; missLimit?: number }): string;
  close(): Promise<void>;
}

export async function startGroup(opts: GroupOptions = {}): Promise<Group> {
  installCleanup();
  const tls = opts.tls;
  const conf = opts.brokerConf ?? [];
  const broker = await startMosquitto(
    tls === undefined
      ? { conf }
      : {
          tls: { cafile: tls.ca, certfile: tls.server.cert, keyfile: tls.server.key, usernameAsClientid: false, tcpNodelay: conf.includes('set_tcp_nodelay true') },
          conf: conf.filter((l) => !l.startsWith('set_tcp_nodelay')),
        },
  );
  closers.add(() => {
    if (broker.pid !== undefined) {
      try {
        process.kill(broker.pid, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });
  const dir = tempDir('group');
  const { privatePem, publicPem } = generateKeyPair();
  const keyFile = path.join(dir, 'ops-1.pem');
  writeFileSync(keyFile, privatePem, { mode: 0o600 });
  const ids = opts.ids ?? ['cm-a', 'cm-b'];
  const cms = new Map<string, CmSpec>();
  for (const id of ids) {
    const port = await freePort();
    cms.set(id, { id, port, services: `http://127.0.0.1:${port}/services`, configFile: path.join(dir, `${id}.json`) });
  }
  const group = [...cms.values()].map((c) => ({ id: c.id, broker: broker.url, services: c.services, capacity: opts.capacity ?? 100 }));
  const mqtt = tls !== undefined ? { ca: tls.ca, cert: tls.client.cert, key: tls.client.key } : undefined;
  for (const c of cms.values()) {
    const config = { cmId: c.id, broker: broker.url, http: { host: '127.0.0.1', port: c.port }, group, signingKey: keyFile, keyId: 'ops-1', stateDir: path.join(dir, `cm-state-${c.id}`), log: { level: 'warn' }, ...(mqtt ? { mqtt } : {}) };
    writeFileSync(c.configFile, JSON.stringify(config, null, 2));
  }
  const running = new Map<string, Child>();
  return {
    broker,
    clientOptions: tls ? { ca: readFileSync(tls.ca), cert: readFileSync(tls.client.cert), key: readFileSync(tls.client.key) } : {},
    dir,
    cms,
    publicPem,
    running,
    async startCm(id, observer, timeoutMs = 15_000) {
      const spec = cms.get(id);
      if (spec === undefined) throw new Error(`no CM ${id} in the group`);
      const since = performance.now();
      // As the device image runs it: the bundle with the unit's NODE_OPTIONS (ensureDist() built it).
      const child = spawnNode(id, [...programArgs('ipphone-cm', 'unit'), '--config', spec.configFile]);
      running.set(id, child);
      try {
        await observer.waitFor(`${PREFIX}/cm/${id}/state`, (m, at) => at >= since && m.online === true, timeoutMs, child);
      } catch (err) {
        throw new Error(`${(err as Error).message}\n--- ${id} output ---\n${child.tail()}`);
      }
      return child;
    },
    agentConfig(phoneId, o) {
      const file = path.join(dir, `${phoneId}.json`);
      const config = {
        phoneId,
        pointers: group.map(({ id, broker: b, services }) => ({ id, broker: b, services })),
        keepalive: { intervalMs: o.intervalMs ?? 1000, missLimit: o.missLimit ?? 3 },
        fallback: { holdMs: o.holdMs },
        stateDir: o.stateDir,
        trust: { keys: { 'ops-1': publicPem } },
        log: { level: 'warn' },
        ...(mqtt ? { mqtt } : {}),
      };
      writeFileSync(file, JSON.stringify(config, null, 2));
      return file;
    },
    async close() {
      await Promise.all([...running.values()].map((c) => c.stop('SIGTERM')));
      running.clear();
      await broker.kill();
      removeTempDir(dir);
    },
  };
}

/** Spawn an agent with `configFile` under `runtime`. */
export function startAgent(name: string, configFile: string, runtime: Runtime, extraArgs: readonly string[] = []): Child {
  return spawnNode(name, [...programArgs('ipphone-agent', runtime), '--config', configFile, ...extraArgs], unitWrap(runtime));
}

// ---------------------------------------------------------------- observer

/** A JSON message as received, with its arrival time (performance.now(), ms). */
export interface Seen {
  topic: string;
  msg: Record<string, unknown>;
  at: number;
}

let observers = 0;

type Waiter = { topic: string | RegExp; pred: (m: Record<string, unknown>, at: number) => boolean; resolve: (s: Seen) => void };

/**
 * An mqtt.js subscriber in the bench process. Keeps the last message of every
 * topic (retained status included) and resolves waiters in the `message`
 * handler itself, so the arrival timestamp is taken before anything else runs.
 */
export class Observer {
  readonly #client: MqttClient;
  readonly #last = new Map<string, Seen>();
  #waiters = new Set<Waiter>();

  private constructor(client: MqttClient) {
    this.#client = client;
    client.on('message', (topic, payload) => {
      const at = performance.now();
      let msg: Record<string, unknown>;
      try {
        const v: unknown = JSON.parse(payload.toString('utf8'));
        if (typeof v !== 'object' || v === null || Array.isArray(v)) return;
        msg = v as Record<string, unknown>;
      } catch {
        return;
      }
      const seen = { topic, msg, at };
      this.#last.set(topic, seen);
      for (const w of this.#waiters) {
        const match = typeof w.topic === 'string' ? w.topic === topic : w.topic.test(topic);
        if (match && w.pred(msg, at)) {
          this.#waiters.delete(w);
          w.resolve(seen);
        }
      }
    });
  }

  /**
   * Connect to `url` and subscribe to phone status/event and CM state topics.
   * With TCP_NODELAY, like the programs measured, so the observer's own
   * socket adds no Nagle wait to what it timestamps.
   */
  static async connect(url: string, extra: IClientOptions = {}): Promise<Observer> {
    const client = keepNoDelay(connect(url, { ...extra, protocolVersion: 5, clientId: `bench-observer-${process.pid}-${++observers}`, reconnectPeriod: 200 }));
    await new Promise<void>((resolve, reject) => {
      client.once('connect', () => resolve());
      client.once('error', reject);
    });
    const o = new Observer(client);
    closers.add(() => client.end(true));
    await client.subscribeAsync([`${PREFIX}/phone/+/event`, `${PREFIX}/phone/+/status`, `${PREFIX}/cm/+/state`], { qos: 1 });
    return o;
  }

  /** The last message seen on `topic`, if any. */
  last(topic: string): Seen | undefined {
    return this.#last.get(topic);
  }

  /** Last retained status of a phone. */
  status(phoneId: string): Record<string, unknown> | undefined {
    return this.#last.get(`${PREFIX}/phone/${phoneId}/status`)?.msg;
  }

  /**
   * Arm a waiter for the next message on `topic` matching `pred` and return
   * its promise. Arm it BEFORE causing the event. Rejects after `timeoutMs`,
   * or early when `watch` (a child that must stay up) exits.
   */
  next(topic: string | RegExp, pred: (m: Record<string, unknown>, at: number) => boolean, timeoutMs: number, watch?: Child): Promise<Seen> {
    return new Promise<Seen>((resolve, reject) => {
      let timer: NodeJS.Timeout | undefined;
      const w: Waiter = {
        topic,
        pred,
        resolve: (s) => {
          clearTimeout(timer);
          resolve(s);
        },
      };
      timer = setTimeout(() => {
        this.#waiters.delete(w);
        reject(new Error(`no matching message on ${String(topic)} within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiters.add(w);
      watch?.exited.then(() => {
        if (!this.#waiters.has(w)) return;
        this.#waiters.delete(w);
        clearTimeout(timer);
        reject(new Error(`${watch.name} exited while waiting on ${String(topic)}:\n${watch.tail()}`));
      });
    });
  }

  /** Like {@link next}, but a matching message already seen (e.g. retained) counts too. */
  waitFor(topic: string, pred: (m: Record<string, unknown>, at: number) => boolean, timeoutMs: number, watch?: Child): Promise<Seen> {
    const seen = this.#last.get(topic);
    if (seen !== undefined && pred(seen.msg, seen.at)) return Promise.resolve(seen);
    return this.next(topic, pred, timeoutMs, watch);
  }

  /** Wait until phone `phoneId`'s status, received after `since` (performance.now() ms), says homed on `cm`. */
  waitHomed(phoneId: string, cm: string, timeoutMs: number, watch?: Child, since = -Infinity): Promise<Seen> {
    return this.waitFor(
      `${PREFIX}/phone/${phoneId}/status`,
      (m, at) => at > since && m.online === true && m.home === cm && m.state === 'homed',
      timeoutMs,
      watch,
    );
  }

  close(): Promise<void> {
    return this.#client.endAsync();
  }
}

export const eventTopic = (phoneId: string): string => `${PREFIX}/phone/${phoneId}/event`;

// ---------------------------------------------------------------- misc

/** CPU time and resident memory of a process, from /proc. */
export { cpuMs, rssKiB } from '../test/helpers/proc.js';

export function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { waitFor };

/** Percentile (nearest rank) of `xs`; p in [0, 100]. */
export function percentile(xs: readonly number[], p: number): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const rank = Math.ceil((p / 100) * s.length);
  return s[Math.min(s.length - 1, Math.max(0, rank - 1))]!;
}

export function median(xs: readonly number[]): number {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
