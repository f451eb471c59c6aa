/**
 * The processes of the simulated group: each call manager is the real
 * CallManager (src/callmanager/call-manager.ts) and each phone the real Agent
 * (src/agent/agent.ts) with the real A/B slot store, wired to the world
 * through their existing ports. A process dies by losing its clock (no timer
 * of it fires again), its sockets and its in-flight disk operations; its
 * objects are then simply dropped.
 */
import { CallManager, type CmSipProbe } from '../callmanager/call-manager.js';
import { nextSipHealth, SIP_HEALTH_START } from '../callmanager/sip-health.js';
import type { TimerHandle } from '../lib/clock.js';
import { Agent } from '../agent/agent.js';
import { RetryingStore } from '../store/retrying-store.js';
import { FileStateStore } from '../store/agent-state-store.js';
import type { AgentState, StateStore } from '../agent/ports.js';
import { trustedKeys } from '../protocol/envelope.js';
import { HeadlessDisplay } from '../hw/headless.js';
import type { HookSwitch } from '../hw/types.js';
import { silentLogger } from '../lib/log.js';
import { errorMessage } from '../lib/errors.js';
import type { IClientOptions } from 'mqtt';
import type { Net } from './broker.js';
import { asMqttClient, SimMqttClient, SimTransport } from './clients.js';
import { Host, ProcessClock } from './clock.js';
import { SimDisk } from './disk.js';
import { agentConfig, allCms, cmConfig, signer, type CmOverride, type CmSpec, type Topology } from './group.js';
import type { Rng } from './rng.js';
import { SimKeypad, type ServicesWorld } from './services.js';
import { SimUserAgent, type SipWorld } from './sip.js';
import type { World } from './world.js';

/** A hook switch the workload lifts and puts down. */
export class SimHook implements HookSwitch {
  offHook = false;
  #fns: ((offHook: boolean) => void)[] = [];
  async start(): Promise<void> {}
  isOffHook(): boolean {
    return this.offHook;
  }
  onChange(fn: (offHook: boolean) => void): void {
    this.#fns.push(fn);
  }
  set(offHook: boolean): void {
    if (offHook === this.offHook) return;
    this.offHook = offHook;
    for (const fn of this.#fns) fn(offHook);
  }
  async close(): Promise<void> {}
}

export class CmHost {
  readonly host: Host;
  readonly disk: SimDisk;
  cm: CallManager | null = null;
  clock: ProcessClock | null = null;
  clients: SimMqttClient[] = [];
  /** When the current process started (sim ms), or null while none runs. */
  startedAt: number | null = null;
  errors: string[] = [];
  /** Its SIP registrar answers OPTIONS (the `registrar-down` fault clears it). */
  registrarUp = true;
  /** What its config file says beyond the topology (an operator's edit before a restart; a plant). */
  over: CmOverride = {};
  /** Between an operator's `systemctl stop` and the process's exit: it serves no one (src/sim/rebalance.ts). */
  stopping = false;
  /** Not installed (a spare not yet added) or removed from the group: nothing starts it. */
  retired = false;

  constructor(
    readonly world: World,
    readonly net: Net,
    readonly spec: CmSpec,
    readonly topo: Topology,
    readonly rng: Rng,
  ) {
    this.host = new Host(world, spec.id);
    this.disk = new SimDisk(world, rng.fork(`disk-${spec.id}`));
  }

  get alive(): boolean {
    return this.cm !== null;
  }

  start(): void {
    if (this.cm !== null || this.retired) return;
    const clock = (this.clock = new ProcessClock(this.host));
    this.clients = [];
    const cm = (this.cm = new CallManager({
      config: cmConfig(this.topo, this.spec, this.over),
      log: silentLogger(),
      clock,
      mqttConnect: (url: string, opts: IClientOptions) => {
        const c = new SimMqttClient(this.net, this.host, clock, url, opts, this.spec.id);
        this.clients.push(c);
        return asMqttClient(c);
      },
      signer,
      randomBytes: (n) => this.rng.bytes(n),
      fs: this.disk.fs(),
      listen: false,
      sipProbe: (onChange) => this.#registrarProbe(clock, onChange),
    }));
    this.startedAt = this.world.now;
    this.world.trace(`${this.spec.id} start`);
    cm.start().catch((err: unknown) => {
      if (!clock.dead) this.errors.push(`${this.spec.id} start: ${errorMessage(err)}`);
    });
  }

  /**
   * The registrar model: every `probeMs` an OPTIONS is answered while the
   * registrar is up and missed while it is down, through the product's own
   * health rule (sip-health.ts `nextSipHealth`: offline after `missLimit`
   * misses in a row, online at the first answer).
   */
  #registrarProbe(clock: ProcessClock, onChange: (online: boolean) => void): CmSipProbe {
    const { probeMs, missLimit } = this.topo.sip;
    let state = SIP_HEALTH_START;
    let timer: TimerHandle | undefined;
    let stopped = false;
    const tick = (): void => {
      if (stopped) return;
      const step = nextSipHealth(state, this.registrarUp ? 'answered' : 'missed', missLimit);
      state = step.state;
      if (step.changed !== undefined) {
        this.world.trace(`${this.spec.id} sip ${step.changed}`);
        onChange(step.changed === 'online');
      }
      timer = clock.setTimeout(tick, probeMs);
    };
    return {
      get online() {
        return state.online;
      },
      start: () => {
        timer = clock.setTimeout(tick, probeMs);
      },
      stop: () => {
        stopped = true;
        if (timer !== undefined) clock.clearTimeout(timer);
      },
    };
  }

  /** kill -9: sockets close under it (wills fire), timers and disk writes in flight die. */
  crash(): void {
    if (this.cm === null) return;
    this.world.trace(`${this.spec.id} crash`);
    this.clock!.kill();
    for (const c of this.clients) c.kill();
    this.disk.revoke();
    this.host.dropHeld();
    this.cm = null;
    this.clock = null;
    this.startedAt = null;
  }

  /**
   * `systemctl stop` (SIGTERM): the product's own stop — its signed offline
   * state, a clean disconnect (no will) — then the process is gone. The
   * stop begins `graceMs` after `stopping` is set, so the checkers see the
   * call manager as not serving before its phones hear of it.
   */
  stop(graceMs = 60, exitMs = 2000): void {
    const cm = this.cm;
    if (cm === null) return;
    this.stopping = true;
    this.world.trace(`${this.spec.id} stop`);
    const clock = this.clock!;
    this.world.after(graceMs, () => {
      if (this.cm === cm && !clock.dead) cm.stop().catch((err: unknown) => this.errors.push(`${this.spec.id} stop: ${errorMessage(err)}`));
    });
    this.world.after(graceMs + exitMs, () => {
      if (this.cm === cm) this.crash();
      this.stopping = false;
    });
  }
}

/** What a phone's boot found on flash, and the last list it reported acting on. */
export interface BootRecord {
  at: number;
  loaded: AgentState | null;
}

export class PhoneHost {
  readonly host: Host;
  readonly disk: SimDisk;
  readonly hook = new SimHook();
  agent: Agent | null = null;
  clock: ProcessClock | null = null;
  transport: SimTransport | null = null;
  bootedAt: number | null = null;
  readonly boots: BootRecord[] = [];
  errors: string[] = [];

  constructor(
    readonly world: World,
    readonly net: Net,
    readonly phoneId: string,
    readonly topo: Topology,
    readonly rng: Rng,
  ) {
    this.host = new Host(world, phoneId);
    this.disk = new SimDisk(world, rng.fork(`flash-${phoneId}`));
  }

  boot(): void {
    if (this.agent !== null) return;
    const clock = (this.clock = new ProcessClock(this.host));
    const config = agentConfig(this.topo, this.phoneId, this.plant);
    const log = silentLogger();
    const inner = new RetryingStore({ inner: new FileStateStore({ dir: config.stateDir, log, fs: this.disk.fs() }), clock, log });
    const record: BootRecord = { at: this.world.now, loaded: null };
    const store: StateStore = {
      load: async () => {
        const loaded = await inner.load();
        record.loaded = loaded === null ? null : (JSON.parse(JSON.stringify(loaded)) as AgentState);
        this.boots.push(record);
        return loaded;
      },
      save: (st: AgentState) => inner.save(st),
      get writes() {
        return inner.writes;
      },
      get storage() {
        return inner.storage;
      },
      get flashed() {
        return inner.flashed;
      },
      onChange: (fn: () => void) => inner.onChange(fn),
      close: () => inner.close(),
    };
    const random = this.rng.fork(`agent-${this.phoneId}-${this.world.now}`);
    const cms = allCms(this.topo);
    this.hook.set(false);
    this.keypad.reset();
    const agent = (this.agent = new Agent({
      config,
      log,
      clock,
      random: () => random.next(),
      keys: trustedKeys(config.trust.keys),
      store,
      transport: (events, will, eff) =>
        (this.transport = new SimTransport(
          this.net,
          this.host,
          clock,
          this.phoneId,
          `ipphone-${this.phoneId}`,
          events,
          { topic: will.topic, payload: Buffer.from(will.payload), qos: 1, retain: true },
          eff.mqtt.keepaliveSec * 1000,
          eff.mqtt.connectTimeoutMs,
          eff.mqtt.maxQueue,
        )),
      fetchServices: (url, _phone, timeoutMs) =>
        this.services !== null ? this.services.fetch(clock, this.phoneId, url, timeoutMs) : new Promise<string>((resolve, reject) => {
          const cm = cms.find((c) => url.startsWith(c.services.slice(0, c.services.lastIndexOf('/') + 1)));
          const up = cm !== undefined && this.servicesUp(cm.id);
          if (up) this.world.after(this.rng.int(2, 40), () => (clock.dead ? undefined : resolve(`<CiscoIPPhoneText><Title>${cm.id}</Title><Text>ok</Text></CiscoIPPhoneText>`)));
          else this.world.after(timeoutMs, () => (clock.dead ? undefined : reject(new Error('timeout'))));
        }),
      display: new HeadlessDisplay(),
      keypad: this.keypad,
      hook: this.hook,
      ...(this.sipWorld !== null ? { sip: (this.ua = new SimUserAgent(this.sipWorld, this.phoneId, clock)) } : {}),
    }));
    this.bootedAt = this.world.now;
    this.world.trace(`${this.phoneId} boot`);
    agent.start().catch((err: unknown) => {
      if (!clock.dead) this.errors.push(`${this.phoneId} start: ${errorMessage(err)}`);
    });
  }

  /** Settings the phone runs with that differ from the declared topology (checker self-tests). */
  plant: { missLimit?: number; holdMs?: number } = {};

  /** Set by the runner: whether a call manager's HTTP answers now (used when no {@link services} world is attached). */
  servicesUp: (cmId: string) => boolean = () => true;
  /** The services servers this phone reaches (src/sim/services.ts), set by the runner. */
  services: ServicesWorld | null = null;
  /** The keys its user presses (the navigation workload). */
  readonly keypad = new SimKeypad();
  /** The SIP world its user agent lives in (src/sim/sip.ts), set by the runner; null: the phone runs without SIP. */
  sipWorld: SipWorld | null = null;
  /** The user agent of the running process, or null. */
  ua: SimUserAgent | null = null;

  /** Off hook or a call in its user agent: the contract's busy. */
  get busy(): boolean {
    return this.hook.offHook || this.ua?.call != null;
  }

  /** Power cut: no FIN, timers and flash writes in flight die, unsynced flash tears. */
  powerCut(): void {
    if (this.agent === null) return;
    this.world.trace(`${this.phoneId} power-cut`);
    this.clock!.kill();
    this.transport?.vanish();
    const torn = this.disk.cut();
    if (torn > 0) this.world.trace(`${this.phoneId} flash torn ${torn}`);
    this.host.dropHeld();
    this.agent = null;
    this.clock = null;
    this.transport = null;
    this.ua = null;
    this.bootedAt = null;
  }
}
