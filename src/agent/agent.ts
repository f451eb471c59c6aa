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
import { decodeAck, decodeCmState, decodeEnvelope, openPointers, parseJsonPayload, parsePointersBody, type OpenContext } from '../protocol/codec.js';
import type { TrustedKeys } from '../protocol/envelope.js';
import { brokerKey, samePointerList } from '../protocol/pointers.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { Envelope, PointersBody, StatusPayload } from '../protocol/types.js';
import type { Display, HookSwitch, Keypad } from '../hw/types.js';
import { initialState, next, phaseOf, type Effect, type Input, type MachineConfig, type MachineState } from './machine.js';
import type { ServicesFetcher, StateStore, Transport, TransportEvents } from './ports.js';
import { ServicesController } from './services.js';
import { PhoneUi } from './phone-ui.js';

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
}

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
  #timer: TimerHandle | null = null;
  #subs = new Map<string, Set<string>>();
  #lastStatus = '';
  #lastRejectAt = new Map<string, number>();
  #configVersion = 0;
  /** Version of a list adopted from an ack whose pushed twin has not arrived yet. */
  #ackAdopted: number | null = null;
  #persisting: Promise<void> = Promise.resolve();
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
    this.#state = initialState(machineConfig(d.config), saved?.pointers ?? d.config.pointers, saved?.pointersVersion ?? 0);
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
      timeoutMs: d.config.services.timeoutMs,
      refreshMs: d.config.services.refreshMs,
      retryMs: Math.min(d.config.services.refreshMs, Math.max(d.config.keepalive.intervalMs * 5, 10_000)),
      jitterMs: Math.min(SERVICES_JITTER_MAX_MS, d.config.keepalive.intervalMs),
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
    this.#ui = new PhoneUi({ display: d.display, keypad: d.keypad ?? null, clock: d.clock, log: d.log.child({ mod: 'ui' }), phoneId: d.config.phoneId, fetch: d.fetchServices, timeoutMs: d.config.services.timeoutMs });
    this.#ui.start();
    d.hook?.onChange((offHook) => this.#input({ type: 'busy', busy: offHook }));
    this.#running = true;
    this.#syncSubscriptions();
    this.#input({ type: 'start' });
    if (d.hook?.isOffHook()) this.#input({ type: 'busy', busy: true });
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#running = false;
    if (this.#timer) this.#d.clock.clearTimeout(this.#timer);
    this.#services?.close();
    this.#ui?.close();
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

  #persist(): void {
    const s = this.#state;
    const snapshot = { pointers: s.list, pointersVersion: s.listVersion, configVersion: this.#configVersion };
    this.#persisting = this.#persisting.then(async () => {
      try {
        await this.#d.store.save(snapshot);
      } catch (err) {
        this.#log.error({ err: errorMessage(err) }, 'saving the pointer list failed; will retry on the next change');
      }
    });
  }

  /** Resolves once every persist requested so far has finished. */
  flushed(): Promise<void> {
    return this.#persisting;
  }

  #onUp(broker: string): void {
    this.#input({ type: 'broker-up', broker });
    if (this.#running) this.#transport.publish(broker, this.#t.phoneStatus(this.#d.config.phoneId), JSON.stringify(this.#status()), { qos: 1, retain: true });
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
      if (topic === this.#t.phoneConfig(me)) return this.#reject(topic, 'remote reconfiguration is not supported by this agent version', 'PAYLOAD_INVALID');
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
    const d = this.#d;
    if (!d.config.trust.requireSigned && !('sig' in parseJsonPayload(payload))) {
      const body = parsePointersBody(payload, this.#openContext());
      return this.#adopt(topic, body, 'push');
    }
    this.#onList(topic, decodeEnvelope(payload), 'push');
  }

  #openContext(): OpenContext {
    return { phoneId: this.#d.config.phoneId, heldVersion: this.#state.listVersion, now: this.#d.clock.now() };
  }

  #onList(topic: string, env: Envelope, via: 'ack' | 'push'): void {
    try {
      const body = openPointers(env, this.#d.keys, this.#openContext());
      this.#ackAdopted = via === 'ack' ? body.version : null;
      this.#adopt(topic, body, via);
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
      this.#lastStatus = status;
      this.#publishAll(this.#t.phoneStatus(this.#d.config.phoneId), status, 1, true);
      this.#ui.status(this.#state.home, phaseOf(this.#state));
    }
  }
}
