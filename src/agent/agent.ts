/**
 * The agent core: runs the pure failover machine (`machine.ts`) and performs
 * its effects through injected ports — transport, store, clock, random,
 * services fetcher, display. One instance is one phone; the CLI, the fleet
 * and the demo all build it the same way.
 */
import type { Clock, Random, TimerHandle } from '../lib/clock.js';
import { errorMessage, isIpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { AgentConfig } from '../config/agent-config.js';
import { decodeAck, decodeCmState, decodeEnvelope, openConfig, openPointers, parseConfigBody, parseJsonPayload, parsePointersBody, type OpenContext } from '../protocol/codec.js';
import { trustedKeys, type TrustedKeys } from '../protocol/envelope.js';
import type { ConfigBody, ConfigResultPayload } from '../protocol/types.js';
import { brokerKey, samePointerList } from '../protocol/pointers.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { Envelope, PointersBody, StatusPayload } from '../protocol/types.js';
import type { Display, HookSwitch, Keypad, Led } from '../hw/types.js';
import { initialState, next, phaseOf, type Effect, type Input, type MachineConfig, type MachineState } from './machine.js';
import type { ServicesFetcher, StateStore, Transport, TransportEvents } from './ports.js';
import { ServicesController } from './services.js';
import { PhoneUi } from './phone-ui.js';
import { changedPaths, Reconfigurator } from './reconfig.js';

export interface AgentDeps {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  random: Random;
  keys: TrustedKeys;
  store: StateStore;
  /** Builds the transport with the agent's event handlers and the status will. */
  transport: (events: TransportEvents, will: { topic: string; payload: string; qos: 1; retain: true }) => Transport;
  fetchServices: ServicesFetcher;
  display: Display;
  keypad?: Keypad | null;
  hook: HookSwitch | null;
  /** Lit while the phone has no home call manager. */
  noServiceLed?: Led | null;
}

/** The wake-up timer overdue this long means the agent's loop is wedged (ms). */
const WEDGED_AFTER_MS = 10_000;

/** Upper bound of the spread of services fetches after a home change (ms). */
const SERVICES_JITTER_MAX_MS = 2000;

/** Rejected-event rate limit per topic (ack lists can repeat every keep-alive). */
const REJECT_EVENT_GAP_MS = 10_000;

export function machineConfig(c: AgentConfig): MachineConfig {
  return {
    intervalMs: c.keepalive.intervalMs,
    missLimit: c.keepalive.missLimit,
    ackTimeoutMs: c.keepalive.ackTimeoutMs,
    holdMs: c.fallback.holdMs,
    backoffBaseMs: c.mqtt.backoff.baseMs,
    backoffMaxMs: c.mqtt.backoff.maxMs,
  };
}

export class Agent {
  readonly #d: AgentDeps;
  readonly #t: Topics;
  readonly #log: Logger;
  #state!: MachineState;
  #transport!: Transport;
  #services!: ServicesController;
  #ui!: PhoneUi;
  #reconfig!: Reconfigurator;
  /** The effective config: the file's with remote changes applied. */
  #cfg!: AgentConfig;
  #keys!: TrustedKeys;
  #timer: TimerHandle | null = null;
  #subs = new Map<string, Set<string>>();
  #lastStatus = '';
  #lastRejectAt = new Map<string, number>();
  #configVersion = 0;
  /** Version of a list adopted from an ack whose pushed twin has not arrived yet. */
  #ackAdopted: number | null = null;
  /** The signed envelope a list was last adopted from, with that list's version. */
  #heldEnvelope: { env: Envelope; version: number } | null = null;
  #persisting: Promise<void> = Promise.resolve();
  /** Saves requested and not yet finished: the MQTT status waits for them. */
  #saving = 0;
  #statusDeferred = false;
  #lastUi = '';
  #running = false;
  #stopped = false;

  constructor(deps: AgentDeps) {
    this.#d = deps;
    this.#t = topics(deps.config.topicPrefix);
    this.#log = deps.log.child({ mod: 'agent' });
  }

  /** The machine state, read-only, for status, tests and the fleet. */
  get state(): Readonly<MachineState> {
    return this.#state;
  }

  get home(): string | null {
    return this.#state?.home ?? null;
  }

  get servicesShown(): string | null {
    return this.#services?.shown ?? null;
  }

  async start(): Promise<void> {
    const d = this.#d;
    const saved = await d.store.load();
    if (saved === null) this.#log.warn({ pointers: d.config.pointers.map((p) => p.id) }, 'no saved pointer list; using the config file list');
    this.#configVersion = saved?.configVersion ?? 0;
    this.#reconfig = new Reconfigurator({
      file: d.config,
      overlay: saved?.configOverlay ?? {},
      clock: d.clock,
      log: d.log.child({ mod: 'reconfig' }),
      host: {
        apply: (next, overlay, version) => this.#applyConfig(next, overlay, version),
        confirmed: () => {
          const s = this.#state;
          return s.home !== null && s.move === null && s.list.some((p) => p.id === s.home);
        },
        publishResult: (r) => this.#publishResult(r),
      },
    });
    const cfg = (this.#cfg = this.#reconfig.boot());
    this.#keys = cfg === d.config ? d.keys : trustedKeys(cfg.trust.keys);
    this.#state = initialState(machineConfig(cfg), saved?.pointers ?? cfg.pointers, saved?.pointersVersion ?? 0);
    const statusTopic = this.#t.phoneStatus(d.config.phoneId);
    this.#transport = d.transport(
      {
        up: (b) => this.#onUp(b),
        down: (b, reason, detail) => this.#input({ type: 'broker-down', broker: b, serverReference: detail.serverReference }),
        message: (b, topic, payload) => this.#onMessage(b, topic, payload),
      },
      { topic: statusTopic, payload: JSON.stringify({ online: false }), qos: 1, retain: true },
    );
    this.#services = new ServicesController({
      phoneId: d.config.phoneId,
      fetch: d.fetchServices,
      clock: d.clock,
      log: d.log.child({ mod: 'services' }),
      timeoutMs: cfg.services.timeoutMs,
      refreshMs: cfg.services.refreshMs,
      retryMs: Math.min(cfg.services.refreshMs, Math.max(cfg.keepalive.intervalMs * 5, 10_000)),
      jitterMs: Math.min(SERVICES_JITTER_MAX_MS, cfg.keepalive.intervalMs),
      random: d.random,
      onChange: (c) => {
        if (c.reason === 'services-timeout') {
          this.#event({ type: 'rehomed', from: c.from ?? this.home, to: c.to, reason: 'services-timeout', detectMs: c.detectMs, rehomeMs: c.rehomeMs, scope: 'services' });
        }
        this.#log.info({ from: c.from, to: c.to, reason: c.reason }, 'services source changed');
        this.#afterStep();
      },
      onPage: (page, from) => this.#ui.page(page, from),
    });
    this.#ui = new PhoneUi({ display: d.display, keypad: d.keypad ?? null, clock: d.clock, log: d.log.child({ mod: 'ui' }), phoneId: d.config.phoneId, fetch: d.fetchServices, timeoutMs: cfg.services.timeoutMs });
    this.#ui.start();
    d.hook?.onChange((offHook) => this.#input({ type: 'busy', busy: offHook }));
    this.#running = true;
    this.#syncSubscriptions();
    this.#input({ type: 'start' });
    if (d.hook?.isOffHook()) this.#input({ type: 'busy', busy: true });
  }

  /**
   * True while the agent's own loop works: its single wake-up timer is not
   * overdue. Unreachable call managers or brokers do not make it unhealthy —
   * riding those out is the agent's job, and a restart would not help.
   */
  healthy(): boolean {
    if (!this.#running || this.#state === undefined) return false;
    const at = this.#state.wakeAt;
    return at === null || this.#d.clock.now() - at < WEDGED_AFTER_MS;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    if (this.#timer) this.#d.clock.clearTimeout(this.#timer);
    this.#services?.close();
    this.#ui?.close();
    this.#reconfig?.close();
    await this.#persisting;
    if (this.#state === undefined) return;
    // A graceful stop says so: the will only fires on an unclean loss.
    this.#publishAll(this.#t.phoneStatus(this.#d.config.phoneId), JSON.stringify({ ...this.#status(), online: false, state: 'stopped' }), 1, true);
    await this.#transport?.close();
  }

  /** Feed one input through the machine and perform its effects. */
  #input(input: Input): void {
    if (!this.#running) return;
    const step = next(this.#state, input, { now: this.#d.clock.now(), random: this.#d.random });
    this.#state = step.state;
    for (const fx of step.effects) this.#perform(fx);
    if (input.type === 'list') this.#syncSubscriptions();
    this.#afterStep();
  }

  #perform(fx: Effect): void {
    const d = this.#d;
    switch (fx.type) {
      case 'connect':
        return this.#transport.connect(fx.broker);
      case 'disconnect':
        return this.#transport.disconnect(fx.broker);
      case 'send': {
        const s = this.#state;
        const body = `{"phone":${JSON.stringify(d.config.phoneId)},"seq":${fx.seq},"pointersVersion":${s.listVersion},"busy":${s.busy},"probe":${fx.probe},"prev":${JSON.stringify(fx.probe ? null : s.lastHome)},"intervalMs":${s.cfg.intervalMs}}`;
        return this.#transport.publish(fx.broker, this.#t.cmKeepalive(fx.to), body, { qos: 0 });
      }
      case 'wake':
        if (this.#timer) d.clock.clearTimeout(this.#timer);
        this.#timer = fx.at === null ? null : d.clock.setTimeout(() => this.#input({ type: 'wake' }), fx.at - d.clock.now());
        return;
      case 'persist':
        return this.#persist();
      case 'event':
        if (fx.event.type === 'rehomed') this.#ui.notice(`Moved to ${String(fx.event.to)}`);
        return this.#event(fx.event);
      case 'log':
        this.#log[fx.level](fx.data, fx.msg);
        return;
    }
  }

  #persist(overlay: Record<string, unknown> = this.#reconfig.overlay): void {
    const s = this.#state;
    const snapshot = { pointers: s.list, pointersVersion: s.listVersion, configVersion: this.#configVersion, configOverlay: overlay };
    this.#saving++;
    this.#persisting = this.#persisting.then(async () => {
      try {
        await this.#d.store.save(snapshot);
      } catch (err) {
        this.#log.error({ err: errorMessage(err) }, 'saving the pointer list failed; will retry on the next change');
      } finally {
        this.#saving--;
      }
    });
  }

  /** Resolves once every persist requested so far has finished. */
  flushed(): Promise<void> {
    return this.#persisting;
  }

  #onUp(broker: string): void {
    this.#input({ type: 'broker-up', broker });
    // The last status published, not the live one: a list still being saved is not reported yet.
    if (this.#running) this.#transport.publish(broker, this.#t.phoneStatus(this.#d.config.phoneId), this.#lastStatus || JSON.stringify(this.#status()), { qos: 1, retain: true });
  }

  /** Per broker: my ack/pointers/config topics and the state of every pointer's call manager on it. */
  #syncSubscriptions(): void {
    const want = new Map<string, Set<string>>();
    const me = this.#d.config.phoneId;
    for (const p of this.#state.list) {
      const key = brokerKey(p.broker);
      let set = want.get(key);
      if (!set) {
        set = new Set([this.#t.phoneAck(me), this.#t.phonePointers(me), this.#t.phoneConfig(me)]);
        want.set(key, set);
      }
      set.add(this.#t.cmState(p.id));
    }
    for (const [broker, topicsNow] of this.#subs) {
      const keep = want.get(broker);
      for (const topic of topicsNow) if (!keep?.has(topic)) this.#transport.unsubscribe(broker, topic);
    }
    for (const [broker, set] of want) {
      const had = this.#subs.get(broker);
      for (const topic of set) if (!had?.has(topic)) this.#transport.subscribe(broker, topic, 1);
    }
    this.#subs = want;
  }

  #onMessage(broker: string, topic: string, payload: Buffer): void {
    if (!this.#running) return;
    const me = this.#d.config.phoneId;
    try {
      if (topic === this.#t.phoneAck(me)) return this.#onAck(topic, payload);
      if (topic === this.#t.phonePointers(me)) return this.#onPushedList(topic, payload);
      if (topic === this.#t.phoneConfig(me)) return this.#onConfig(topic, payload);
      const cm = this.#t.idOf(topic, 'cm');
      if (cm !== undefined && topic === this.#t.cmState(cm)) {
        const st = decodeCmState(payload);
        return this.#input({ type: 'cm-state', cm, online: st.online });
      }
    } catch (err) {
      this.#reject(topic, errorMessage(err), isIpphoneError(err) ? err.code : undefined);
    }
    void broker;
  }

  #onAck(topic: string, payload: Buffer): void {
    const ack = decodeAck(payload);
    this.#input({ type: 'ack', cm: ack.cm, seq: ack.seq });
    if (ack.pointers !== undefined) {
      try {
        this.#onList(topic, ack.pointers, 'ack');
      } catch (err) {
        // A call manager repeats its list on every ack until we take it: a replay is not news.
        if (isIpphoneError(err, 'VERSION_REPLAYED')) return;
        throw err;
      }
    }
  }

  /** A pushed list: a signed envelope, or — only with `trust.requireSigned: false` — a bare body. */
  #onPushedList(topic: string, payload: Buffer): void {
    if (!this.#cfg.trust.requireSigned && !('sig' in parseJsonPayload(payload))) {
      const body = parsePointersBody(payload, this.#openContext());
      return this.#adopt(topic, body, 'push');
    }
    this.#onList(topic, decodeEnvelope(payload), 'push');
  }

  #openContext(heldVersion = this.#state.listVersion): OpenContext {
    return { phoneId: this.#d.config.phoneId, heldVersion, now: this.#d.clock.now() };
  }

  /** A config change: verified here, applied commit-confirmed by the Reconfigurator. Every refusal gets a result. */
  #onConfig(topic: string, payload: Buffer): void {
    let body: ConfigBody;
    try {
      const ctx = this.#openContext(this.#configVersion);
      body = !this.#cfg.trust.requireSigned && !('sig' in parseJsonPayload(payload)) ? parseConfigBody(payload, ctx) : openConfig(decodeEnvelope(payload), this.#keys, ctx);
    } catch (err) {
      const claimed = claimedVersion(payload);
      this.#reject(topic, errorMessage(err), isIpphoneError(err) ? err.code : undefined);
      if (claimed !== null) this.#publishResult({ version: claimed, ok: false, error: errorMessage(err) });
      return;
    }
    this.#configVersion = body.version;
    void this.#reconfig.change(body.version, body.config);
  }

  /** Apply an effective config live and persist it (Reconfigurator host). */
  async #applyConfig(next: AgentConfig, overlay: Record<string, unknown>, version: number): Promise<void> {
    const prev = this.#cfg;
    this.#cfg = next;
    this.#configVersion = Math.max(this.#configVersion, version);
    this.#keys = trustedKeys(next.trust.keys);
    const d = this.#d;
    if (next.log.level !== prev.log.level) for (const l of [d.log, this.#log]) l.level = next.log.level;
    this.#services.setTiming(next.services.timeoutMs, next.services.refreshMs);
    const mc = machineConfig(next);
    if (JSON.stringify(mc) !== JSON.stringify(this.#state.cfg)) this.#input({ type: 'config', cfg: mc });
    if (changedPaths(prev.pointers, next.pointers).length > 0) {
      // New pointers from a config change act like an admin push: a fresh, higher list version.
      this.#input({ type: 'list', version: Math.max(this.#state.listVersion + 1, d.clock.now()), reason: 'admin', list: next.pointers, via: 'push' });
      this.#syncSubscriptions();
    }
    this.#persist(overlay);
    await this.#persisting;
    this.#afterStep();
  }

  #publishResult(result: ConfigResultPayload): void {
    this.#publishAll(this.#t.phoneConfigResult(this.#d.config.phoneId), JSON.stringify(result), 1, false);
    this.#afterStep();
  }

  #onList(topic: string, env: Envelope, via: 'ack' | 'push'): void {
    // The very envelope we hold, again: an ack repeating it (a replay, not news) or
    // the push twin of the ack we took it from. Settled without verifying, parsing
    // or throwing again — what the checks below would conclude, at a fraction of
    // the cost (each is a visible part of a fleet's failover). Anything else, a
    // second push of it included, takes the full path.
    const held = this.#heldEnvelope;
    if (held !== null && held.version === this.#state.listVersion && env.sig === held.env.sig && env.body === held.env.body && env.kid === held.env.kid) {
      if (via === 'ack') return;
      if (this.#ackAdopted === this.#state.listVersion) {
        this.#ackAdopted = null;
        return;
      }
    }
    try {
      const body = openPointers(env, this.#keys, this.#openContext());
      this.#ackAdopted = via === 'ack' ? body.version : null;
      this.#adopt(topic, body, via);
      this.#heldEnvelope = { env: { kid: env.kid, sig: env.sig, body: env.body }, version: body.version };
    } catch (err) {
      // A call manager pushes the list its ack already carried: that one
      // duplicate is expected. Any other replay is refused with an event.
      if (via === 'push' && isIpphoneError(err, 'VERSION_REPLAYED') && this.#ackAdopted === this.#state.listVersion && this.#isHeld(env)) {
        this.#ackAdopted = null;
        return;
      }
      throw err;
    }
  }

  #isHeld(env: Envelope): boolean {
    try {
      const body = JSON.parse(Buffer.from(env.body, 'base64').toString('utf8')) as Partial<PointersBody>;
      return body.version === this.#state.listVersion && Array.isArray(body.list) && samePointerList(body.list, this.#state.list);
    } catch {
      return false;
    }
  }

  #adopt(topic: string, body: PointersBody, via: 'ack' | 'push'): void {
    this.#input({ type: 'list', version: body.version, reason: body.reason, list: body.list, via });
    this.#log.debug({ topic, version: body.version }, 'list accepted');
  }

  #reject(topic: string, error: string, code: string | undefined): void {
    this.#log.warn({ topic, err: error, code }, 'message rejected');
    // Acks repeat every keep-alive: one event per gap there. Every other refusal is reported.
    if (topic === this.#t.phoneAck(this.#d.config.phoneId)) {
      const now = this.#d.clock.now();
      const last = this.#lastRejectAt.get(topic);
      if (last !== undefined && now - last < REJECT_EVENT_GAP_MS) return;
      this.#lastRejectAt.set(topic, now);
    }
    this.#event({ type: 'rejected', topic, error, ...(code ? { code } : {}) });
  }

  #event(event: Record<string, unknown>): void {
    const topic = this.#t.phoneEvent(this.#d.config.phoneId);
    const home = this.#state.home;
    const payload = JSON.stringify(event);
    if (home !== null) {
      const p = this.#state.list.find((x) => x.id === home);
      if (p) return this.#transport.publish(brokerKey(p.broker), topic, payload, { qos: 0 });
    }
    this.#publishAll(topic, payload, 0, false);
  }

  #publishAll(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    for (const key of new Set(this.#state.list.map((p) => brokerKey(p.broker)))) {
      if (this.#transport.isUp(key)) this.#transport.publish(key, topic, payload, { qos, retain });
    }
  }

  #status(): StatusPayload {
    const s = this.#state;
    return {
      online: true,
      home: s.home,
      services: this.#services?.shown ?? null,
      state: phaseOf(s),
      pointersVersion: s.listVersion,
      configVersion: this.#configVersion,
      rehomes: s.rehomes,
      pointers: s.list.map((p) => p.id),
      busy: s.busy,
      stateWrites: this.#d.store.writes,
    };
  }

  #afterStep(): void {
    if (!this.#running) return;
    this.#services.update(this.#state.list, this.#state.home);
    const status = JSON.stringify(this.#status());
    if (status !== this.#lastStatus) {
      if (this.#saving > 0) {
        // The status names the list version as held: publish it only once that list is on
        // flash, so a power cut never takes back a version the phone reported.
        if (!this.#statusDeferred) {
          this.#statusDeferred = true;
          void this.#persisting.then(() => {
            this.#statusDeferred = false;
            this.#afterStep();
          });
        }
      } else {
        this.#lastStatus = status;
        this.#publishAll(this.#t.phoneStatus(this.#d.config.phoneId), status, 1, true);
      }
    }
    const ui = `${this.#state.home}|${phaseOf(this.#state)}`;
    if (ui !== this.#lastUi) {
      this.#lastUi = ui;
      this.#ui.status(this.#state.home, phaseOf(this.#state));
      this.#d.noServiceLed?.set(this.#state.home === null);
    }
    this.#reconfig.check();
  }
}

/** The version a refused config body claims (unverified: only to address the result), or null. */
function claimedVersion(payload: Buffer): number | null {
  try {
    const o = JSON.parse(payload.toString('utf8')) as { body?: unknown; version?: unknown };
    const body = typeof o.body === 'string' ? (JSON.parse(Buffer.from(o.body, 'base64').toString('utf8')) as { version?: unknown }) : o;
    return typeof body.version === 'number' && Number.isSafeInteger(body.version) && body.version >= 0 ? body.version : null;
  } catch {
    return null;
  }
}
