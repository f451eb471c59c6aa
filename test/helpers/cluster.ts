/**
 * Real parts for end-to-end tests: call managers and agents as child
 * processes (so a crash is a real `kill -9`/`SIGSTOP`), configs and keys in a
 * temp dir, and an observer MQTT client per broker that records every phone
 * status and event.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { generateKeyPair } from '../../src/protocol/envelope.js';
import type { Fleet } from '../../src/fleet/fleet.js';
import { freePort, waitFor } from './net.js';
import { programArgs, ROOT } from './programs.js';
import { killAtExit } from './reaper.js';

export interface CmSpec {
  id: string;
  broker: string;
  /** Services URL other members and phones see; default this CM's own HTTP server. */
  services?: string;
  capacity?: number;
  /** The member's SIP registrar (`sip:HOST:PORT;transport=tcp`), carried in every pointer list. */
  sip?: string;
}

export interface Proc {
  child: ChildProcess;
  pid: number;
  output: () => string;
  exited: Promise<number | null>;
  signal(sig: NodeJS.Signals): void;
}

export interface Observed {
  at: number;
  broker: string;
  phone: string;
  payload: Record<string, unknown>;
}

/** A command that runs node for us (e.g. under W^X): `COMMAND ARGS… node NODE-ARGS…`. */
export interface Wrapper {
  command: string;
  args: string[];
}

/** `node ARGS…` (through `wrap` if given) from the repo root, its output kept (and how it ended, once it has). */
function spawnNode(args: string[], name: string, env?: NodeJS.ProcessEnv, wrap?: Wrapper): Proc {
  const [command, argv] = wrap ? [wrap.command, [...wrap.args, process.execPath, ...args]] : [process.execPath, args];
  return procOf(spawn(command, argv, { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], ...(env ? { env: { ...process.env, ...env } } : {}) }), name);
}

/**
 * A spawned child (stdout and stderr piped) as a {@link Proc}: its output kept (the last
 * ~100 KB), how it ended once it has, and killed with the test process if still alive.
 */
export function procOf(child: ChildProcess, name: string): Proc {
  let out = '';
  const keep = (b: Buffer): void => {
    out += b.toString();
    if (out.length > 200_000) out = out.slice(-100_000);
  };
  child.stdout!.on('data', keep);
  child.stderr!.on('data', keep);
  let ended = '';
  const exited = new Promise<number | null>((done) =>
    child.once('exit', (code, sig) => {
      ended = `[exited: ${code ?? sig}]\n`;
      done(code);
    }),
  );
  // A SIGSTOPped child is woken first so that the kill is not left pending.
  killAtExit(child, (c) => {
    c.kill('SIGCONT');
    c.kill('SIGKILL');
  });
  return {
    child,
    pid: child.pid!,
    output: () => `--- ${name} ---\n${out}${ended}`,
    exited,
    signal: (sig) => {
      try {
        child.kill(sig);
      } catch {
        /* already gone */
      }
    },
  };
}

let clusters = 0;

/**
 * TLS for every program of a cluster (and its observers): the CA they all
 * trust and a client certificate per identity, its CN the identity (a cmId,
 * a phoneId, an operator). `Pki` of test/helpers/pki.ts is one.
 */
export interface ClusterTls {
  ca: { cert: string };
  client(cn: string): Promise<{ cert: string; key: string }>;
}

/** The CN the observers connect with under TLS: give it operator rights (read everything) in an ACL. */
export const OBSERVER_CN = 'observer';

/** The `mqtt` credentials of one identity: PEM file paths. */
export interface TlsFiles {
  ca: string;
  cert: string;
  key: string;
}

export class Cluster {
  /** A topic prefix of its own, so retained states of one test never leak into another on a shared broker. */
  readonly prefix = `ipphone/t${process.pid}-${++clusters}`;
  readonly dir = mkdtempSync(join(tmpdir(), 'ipphone-it-'));
  readonly keyPath: string;
  readonly publicPem: string;
  readonly privatePem: string;
  readonly group: (Required<Omit<CmSpec, 'sip'>> & Pick<CmSpec, 'sip'>)[] = [];
  readonly cms = new Map<string, Proc>();
  readonly agents = new Map<string, Proc>();
  readonly seen: { events: Observed[]; statuses: Observed[] } = { events: [], statuses: [] };
  readonly #observers: MqttClient[] = [];
  readonly #httpPorts = new Map<string, number>();
  /** With TLS: every program connects with the certificate of its own id. */
  readonly tls: ClusterTls | undefined;
  readonly #identities = new Map<string, TlsFiles>();

  /** A group of call managers on one broker, started and watched; closed at the test's teardown. */
  static async group(t: { teardown(fn: () => Promise<void>): void }, broker: string, ids: readonly string[] = ['cm-a', 'cm-b'], cmExtra: Record<string, unknown> = {}): Promise<Cluster> {
    const c = new Cluster();
    t.teardown(() => c.close());
    await c.defineGroup(ids.map((id) => ({ id, broker })));
    await c.observe(broker);
    await Promise.all(ids.map((id) => c.startCm(id, cmExtra)));
    return c;
  }

  constructor(opts: { tls?: ClusterTls } = {}) {
    this.tls = opts.tls;
    const k = generateKeyPair();
    this.privatePem = k.privatePem;
    this.publicPem = k.publicPem;
    this.keyPath = join(this.dir, 'ops-1.pem');
    writeFileSync(this.keyPath, k.privatePem, { mode: 0o600 });
  }

  /** Declare the group (ports are chosen now); call before starting anything. */
  async defineGroup(specs: CmSpec[]): Promise<void> {
    for (const s of specs) {
      const port = await freePort();
      this.#httpPorts.set(s.id, port);
      this.group.push({ id: s.id, broker: s.broker, services: s.services ?? `http://127.0.0.1:${port}/services`, capacity: s.capacity ?? 1000, ...(s.sip !== undefined ? { sip: s.sip } : {}) });
    }
  }

  /**
   * With TLS: issue (once) the client certificate of identity `cn` and return
   * its files. A phone's must be issued before {@link agentConfig} writes its
   * config (call managers and observers issue their own).
   */
  async identity(cn: string): Promise<TlsFiles> {
    if (this.tls === undefined) throw new Error('identity(): this cluster has no TLS');
    let files = this.#identities.get(cn);
    if (files === undefined) {
      const c = await this.tls.client(cn);
      files = { ca: this.tls.ca.cert, cert: c.cert, key: c.key };
      this.#identities.set(cn, files);
    }
    return files;
  }

  /** The `mqtt` credential fields of `cn` (empty without TLS). */
  #credentials(cn: string): Partial<TlsFiles> {
    if (this.tls === undefined) return {};
    const files = this.#identities.get(cn);
    if (files === undefined) throw new Error(`TLS cluster: await cluster.identity(${JSON.stringify(cn)}) before writing its config`);
    return files;
  }

  /** Watch phone statuses and events on a broker (under TLS as {@link OBSERVER_CN}). */
  async observe(brokerUrl: string): Promise<void> {
    const tls = this.tls === undefined ? {} : await this.identity(OBSERVER_CN).then((f) => ({ ca: readFileSync(f.ca), cert: readFileSync(f.cert), key: readFileSync(f.key) }));
    const c = connect(brokerUrl, { reconnectPeriod: 200, clientId: `obs-${Math.random().toString(16).slice(2)}`, ...tls });
    this.#observers.push(c);
    c.on('message', (topic, payload) => {
      const m = /\/phone\/([^/]+)\/(event|status)$/.exec(topic);
      if (!m) return;
      let parsed: Record<string, unknown>;
      try {
        parsed = JSON.parse(payload.toString()) as Record<string, unknown>;
      } catch {
        return;
      }
      const rec = { at: Date.now(), broker: brokerUrl, phone: m[1]!, payload: parsed };
      (m[2] === 'event' ? this.seen.events : this.seen.statuses).push(rec);
    });
    await new Promise<void>((done, fail) => {
      c.once('connect', () => c.subscribe([`${this.prefix}/phone/+/event`, `${this.prefix}/phone/+/status`], { qos: 1 }, (err) => (err ? fail(err) : done())));
      c.once('error', fail);
    });
  }

  cmConfigPath(id: string): string {
    return join(this.dir, `${id}.json`);
  }

  /** Start call manager `id`; `wrap` runs its node through a command (e.g. `faketime`). */
  async startCm(id: string, extra: Record<string, unknown> = {}, wrap?: Wrapper): Promise<Proc> {
    const me = this.group.find((g) => g.id === id)!;
    const cfg: Record<string, unknown> = {
      cmId: id,
      broker: me.broker,
      http: { host: '127.0.0.1', port: this.#httpPorts.get(id) },
      group: this.group,
      signingKey: this.keyPath,
      keyId: 'ops-1',
      topicPrefix: this.prefix,
      keepalive: { phoneIntervalMs: 1000 },
      // Its own boot sequence, kept across restarts of this CM within the test.
      stateDir: join(this.dir, `cm-state-${id}`),
      // Classic call-manager groups (phones fall back to the primary) unless a test turns rebalancing on.
      rebalance: { enabled: false },
      log: { level: 'info' },
      ...extra,
    };
    if (this.tls !== undefined) {
      await this.identity(id);
      cfg.mqtt = { ...this.#credentials(id), ...(cfg.mqtt as Record<string, unknown> | undefined) };
    }
    writeFileSync(this.cmConfigPath(id), JSON.stringify(cfg, null, 2));
    const p = spawnNode([...programArgs('ipphone-cm'), '--config', this.cmConfigPath(id)], id, undefined, wrap);
    this.cms.set(id, p);
    // Generous: a shared CI machine may be running several test files' processes at once (a start
    // measured 20+ s with the machine loaded ~9 runnable processes per core).
    await waitFor(() => /"call manager started"|broker connected|\[exited/.test(p.output()), { timeoutMs: 60_000, what: `${id} to start` }).catch((err: Error) => {
      throw new Error(`${err.message}\n${p.output()}`);
    });
    if (p.output().includes('[exited')) throw new Error(`${id} exited at start\n${p.output()}`);
    return p;
  }

  /** Write an agent config (group pointers by default) and return its path. */
  agentConfig(phoneId: string, over: Record<string, unknown> = {}): string {
    const cfg = {
      phoneId,
      topicPrefix: this.prefix,
      pointers: this.group.map(({ id, broker, services, sip }) => ({ id, broker, services, ...(sip !== undefined ? { sip } : {}) })),
      keepalive: { intervalMs: 1000, missLimit: 3 },
      fallback: { holdMs: 4000 },
      services: { timeoutMs: 2000 },
      stateDir: join(this.dir, `state-${phoneId}`),
      trust: { requireSigned: true, keys: { 'ops-1': this.publicPem } },
      mqtt: { connectTimeoutMs: 2000, backoff: { baseMs: 200, maxMs: 2000 } },
      log: { level: 'info' },
      ...over,
    };
    if (this.tls !== undefined) cfg.mqtt = { ...this.#credentials(phoneId), ...cfg.mqtt };
    const path = join(this.dir, `${phoneId}.json`);
    writeFileSync(path, JSON.stringify(cfg, null, 2));
    return path;
  }

  startAgent(phoneId: string, configPath = this.agentConfig(phoneId), env?: NodeJS.ProcessEnv): Proc {
    const p = spawnNode([...programArgs('ipphone-agent'), '--config', configPath], phoneId, env);
    this.agents.set(phoneId, p);
    return p;
  }

  /**
   * Start the agent of `phoneId` with its stdin on the pty `tty` (a {@link startPtyPair}
   * `near` end): with the simulator board it reads keys and the hook key from it, as a
   * phone on a terminal does; the test types into the pair's far end.
   */
  startAgentOnTty(phoneId: string, configPath: string, tty: string, extraArgs: string[] = []): Proc {
    const fd = openSync(tty, 'r+');
    const child = spawn(process.execPath, [...programArgs('ipphone-agent'), '--config', configPath, ...extraArgs], { cwd: ROOT, stdio: [fd, 'pipe', 'pipe'] });
    closeSync(fd);
    const p = procOf(child, phoneId);
    this.agents.set(phoneId, p);
    return p;
  }

  /** Run `node NODE-ARGS…` (through `wrap` if given) as the agent of `phoneId` (killed by close()). */
  startAgentWith(phoneId: string, nodeArgs: string[], wrap?: Wrapper): Proc {
    const p = spawnNode(nodeArgs, phoneId, undefined, wrap);
    this.agents.set(phoneId, p);
    return p;
  }

  /** Run `node --import tsx ARGS…` from the repo root as a child process named `name` (killed by close()). */
  startProcess(name: string, args: string[]): Proc {
    const p = spawnNode(['--import', 'tsx', ...args], name);
    this.agents.set(name, p);
    return p;
  }

  /** Run `ipphone-fleet ARGS…` as a child process named `name` (killed by close()). */
  startFleet(name: string, args: string[]): Proc {
    const p = spawnNode([...programArgs('ipphone-fleet'), ...args], name);
    this.agents.set(name, p);
    return p;
  }

  /** The latest status of a phone seen on any broker (by arrival). */
  status(phone: string): Record<string, unknown> | undefined {
    for (let i = this.seen.statuses.length - 1; i >= 0; i--) if (this.seen.statuses[i]!.phone === phone) return this.seen.statuses[i]!.payload;
    return undefined;
  }

  /** True when no phone's `rehomed` event arrived in the last `ms`: nothing moved for that long. */
  quietFor(ms: number): boolean {
    const since = Date.now() - ms;
    return !this.seen.events.some((e) => e.payload.type === 'rehomed' && e.at > since);
  }

  /**
   * True when the observers have every move `fleet` made (one `rehomed` event each; the
   * services-only `services-timeout` ones are not moves of the machine) and every phone's
   * current home in its latest status: what a test asserts on has arrived.
   */
  hasCaughtUp(fleet: Pick<Fleet, 'phones' | 'summary'>): boolean {
    const moves = this.seen.events.filter((e) => e.payload.type === 'rehomed' && e.payload.reason !== 'services-timeout').length;
    return moves === fleet.summary().rehomes && fleet.phones().every((p) => this.status(p.id)?.home === p.agent.home);
  }

  events(phone: string, type?: string): Observed[] {
    return this.seen.events.filter((e) => e.phone === phone && (type === undefined || e.payload.type === type));
  }

  /**
   * The phone's last `rehomed` event once it names `to`. A status (QoS 1, retained) can reach
   * the observers before the event that goes with it (QoS 0), so a test that saw the phone homed
   * waits for the event too instead of reading the events at once.
   */
  async lastMove(phone: string, to: string, timeoutMs = 30_000): Promise<Observed['payload'] | undefined> {
    const last = (): Observed | undefined => this.events(phone, 'rehomed').filter((e) => e.payload.reason !== 'services-timeout').at(-1);
    await waitFor(() => last()?.payload.to === to, { timeoutMs, what: `${phone}'s rehomed event to ${to} (seen: ${JSON.stringify(this.events(phone, 'rehomed').map((e) => e.payload))})` });
    return last()?.payload;
  }

  async waitHome(phone: string, home: string, timeoutMs = 30_000): Promise<void> {
    try {
      await waitFor(() => this.status(phone)?.home === home && this.status(phone)?.state === 'homed', { timeoutMs, what: `${phone} homed on ${home}` });
    } catch (err) {
      throw new Error(`${(err as Error).message}\nstatus ${JSON.stringify(this.status(phone))}\n${this.agents.get(phone)?.output().slice(-6000)}`);
    }
  }

  async close(): Promise<void> {
    for (const p of [...this.agents.values(), ...this.cms.values()]) {
      p.signal('SIGCONT');
      p.signal('SIGKILL');
    }
    await Promise.all([...this.agents.values(), ...this.cms.values()].map((p) => p.exited));
    await Promise.all(this.#observers.map((c) => c.endAsync(true)));
    rmSync(this.dir, { recursive: true, force: true });
  }
}
