/**
 * The agent's effect runner (agent.ts puts the pieces together): the state
 * the agent holds, feeding inputs through the pure failover machine, and
 * performing its effects — connect, send, wake, persist, events — plus the
 * per-step follow-up (subscriptions, status, services, display).
 */
import type { Clock, Random, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { AgentConfig } from '../config/agent-config.js';
import type { TrustedKeys } from '../protocol/envelope.js';
import { brokerKey } from '../protocol/pointers.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { StatusPayload } from '../protocol/types.js';
import type { Display, HookSwitch, Keypad, Led } from '../hw/types.js';
import { duplicateId, next, phaseOf, type Effect, type Input, type MachineConfig, type MachineState } from './machine.js';
import type { AgentState, ServicesFetcher, StateStore, Transport, TransportEvents } from './ports.js';
import type { ServicesController } from './services.js';
import type { PhoneUi } from './phone-ui.js';
import type { Reconfigurator } from './reconfig.js';
import type { KeepaliveTopics } from './keepalive-topic.js';
import { MoveTimer, statusWaitsForAck } from './critical-path.js';
import { DuplicateWatch } from './duplicate-watch.js';
import type { SipUserAgent } from '../sip/user-agent.js';
import type { SipPhone } from './sip-phone.js';

export interface AgentDeps {
  config: AgentConfig;
  log: Logger;
  clock: Clock;
  random: Random;
  keys: TrustedKeys;
  store: StateStore;
  /** Builds the transport with the agent's event handlers, the status will and the effective config (file + saved overlay: its `mqtt` settings). */
  transport: (events: TransportEvents, will: { topic: string; payload: string; qos: 1; retain: true }, config: AgentConfig) => Transport;
  fetchServices: ServicesFetcher;
  display: Display;
  keypad?: Keypad | null;
  hook: HookSwitch | null;
  /** Lit while the phone has no home call manager. */
  noServiceLed?: Led | null;
  /** The phone's SIP user agent, when `config.sip` is set (issue 11); absent: no SIP, as before. */
  sip?: SipUserAgent | null;
  /** The message lamp: blinks while a call rings in. */
  messageLed?: Led | null;
  /** Monotonic ms with sub-ms resolution, for the `rehomed` event's timing fields only ({@link MoveTimer}). Default `clock.elapsed`. */
  hrNow?: () => number;
}

/** The failover machine's settings, taken from an (effective) agent config. */
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

/**
 * State and effect runner shared by the agent's layers. Members are
 * protected, not `#private`, so the message layer and the agent itself
 * (subclasses) reach them without a host object in between on the
 * keep-alive path.
 */
export class AgentCore {
  protected readonly d: AgentDeps;
  protected readonly t: Topics;
  protected readonly log: Logger;
  /** The machine state. */
  protected s!: MachineState;
  protected transport!: Transport;
  protected services!: ServicesController;
  protected ui!: PhoneUi;
  protected reconfig!: Reconfigurator;
  /** Registration and calls, with a SIP user agent (sip-phone.ts); null without. */
  protected sip: SipPhone | null = null;
  /** The effective config: the file's with remote changes applied. */
  protected cfg!: AgentConfig;
  protected keys!: TrustedKeys;
  /** Keep-alive topics by call manager, built once (keepalive-topic.ts); set with `cfg`. */
  protected kaTopics!: KeepaliveTopics;
  protected configVersion = 0;
  protected running = false;
  /** The last status published (the will's stand-in on a fresh connection). */
  protected lastStatus = '';
  protected persisting: Promise<void> = Promise.resolve();
  /** Timings of the move in progress, for its `rehomed` event. */
  protected readonly moveTimer = new MoveTimer();
  /** This run's instance id and the evidence of a clone using our phone id (duplicate-watch.ts). */
  protected readonly dup = new DuplicateWatch();
  #timer: TimerHandle | null = null;
  #subs = new Map<string, Set<string>>();
  /** Saves requested and not yet finished: the MQTT status waits for them. */
  #saving = 0;
  #statusDeferred = false;
  #lastUi = '';

  constructor(deps: AgentDeps) {
    this.d = deps;
    this.t = topics(deps.config.topicPrefix);
    this.log = deps.log.child({ mod: 'agent' });
  }

  /** Resolves once every persist requested so far has finished. */
  flushed(): Promise<void> {
    return this.persisting;
  }

  /** Feed one input through the machine and perform its effects. */
  protected input(input: Input): void {
    if (!this.running) return;
    const at = this.hr();
    const prev = this.s.move;
    const keptBefore = this.s.lastHomeBroker;
    // Machine time is monotonic: every deadline in the state is a Clock.elapsed() value (issue 10).
    const step = next(this.s, input, { now: this.d.clock.elapsed(), random: this.d.random });
    this.s = step.state;
    this.moveTimer.step(prev, step.state.move, at, this.d.clock.now());
    for (const fx of step.effects) this.#perform(fx);
    this.moveTimer.settle(this.s.move);
    if (input.type === 'list' || this.s.lastHomeBroker !== keptBefore) this.syncSubscriptions();
    this.afterStep();
  }

  /** Cancel the wake-up timer (on stop). */
  protected clearWake(): void {
    if (this.#timer) this.d.clock.clearTimeout(this.#timer);
  }

  #perform(fx: Effect): void {
    const d = this.d;
    switch (fx.type) {
      case 'connect':
        return this.transport.connect(fx.broker);
      case 'disconnect':
        return this.transport.disconnect(fx.broker);
      case 'send': {
        const s = this.s;
        const body = `{"phone":${JSON.stringify(d.config.phoneId)},"seq":${fx.seq},"pointersVersion":${s.listVersion},"busy":${s.busy},"probe":${fx.probe},"prev":${JSON.stringify(fx.probe ? null : s.lastHome)},"intervalMs":${s.cfg.intervalMs}}`;
        this.transport.publish(fx.broker, this.kaTopics.for(fx.to), body, { qos: 0 });
        if (fx.to === s.move?.target) this.moveTimer.sent(fx.to, this.hr());
        return;
      }
      case 'wake':
        if (this.#timer) d.clock.clearTimeout(this.#timer);
        // Rounded up: machine time is fractional (monotonic) and node's timers run in whole ms, so a
        // truncated delay would wake just before the deadline and cost one more 1 ms wake-up each time.
        this.#timer = fx.at === null ? null : d.clock.setTimeout(() => this.input({ type: 'wake' }), Math.ceil(fx.at - d.clock.elapsed()));
        return;
      case 'persist':
        return this.persist();
      case 'event':
        if (fx.event.type !== 'rehomed') return this.event(fx.event);
        this.ui.notice(`Moved to ${String(fx.event.to)}`);
        return this.event({ ...fx.event, ...this.moveTimer.fields(String(fx.event.to), this.hr()) });
      case 'log':
        this.log[fx.level](fx.data, fx.msg);
        return;
    }
  }

  protected persist(overlay: Record<string, unknown> = this.reconfig.overlay): void {
    const s = this.s;
    const snapshot: AgentState = { pointers: s.list, pointersVersion: s.listVersion, configVersion: this.configVersion, configOverlay: overlay, ...this.stateExtras() };
    this.#saving++;
    this.persisting = this.persisting.then(async () => {
      try {
        await this.d.store.save(snapshot);
      } catch (err) {
        this.log.error({ err: errorMessage(err) }, 'saving the pointer list failed');
      } finally {
        this.#saving--;
      }
    });
  }

  /** What the agent layer adds to every save (pending config change, file hash). */
  protected stateExtras(): Partial<AgentState> {
    return {};
  }

  /**
   * The brokers the phone is managed over: those of its list, and the last home's broker, which the
   * machine keeps connected until a call manager of a new list acks — a list of dead brokers must
   * not cut the phone off from the operator who can correct it (issue #10).
   */
  protected managementBrokers(): Set<string> {
    const keys = new Set(this.s.list.map((p) => brokerKey(p.broker)));
    if (this.s.lastHomeBroker !== null) keys.add(this.s.lastHomeBroker);
    return keys;
  }

  /** Per management broker: my ack/pointers/config/status topics, and the state (and challenge answers) of every pointer's call manager on it. */
  protected syncSubscriptions(): void {
    const want = new Map<string, Set<string>>();
    const me = this.d.config.phoneId;
    for (const key of this.managementBrokers()) {
      // Our own status too: another run's status written over ours means a clone (duplicate-watch.ts).
      want.set(key, new Set([this.t.phoneAck(me), this.t.phonePointers(me), this.t.phoneConfig(me), this.t.phoneStatus(me)]));
    }
    for (const p of this.s.list) {
      const set = want.get(brokerKey(p.broker))!;
      set.add(this.t.cmState(p.id));
      // The call manager's answers to our liveness challenges (cm-liveness.ts), subscribed before any is sent.
      set.add(this.t.cmChallengeAnswer(p.id, me));
    }
    for (const [broker, topicsNow] of this.#subs) {
      const keep = want.get(broker);
      for (const topic of topicsNow) if (!keep?.has(topic)) this.transport.unsubscribe(broker, topic);
    }
    for (const [broker, set] of want) {
      const had = this.#subs.get(broker);
      for (const topic of set) if (!had?.has(topic)) this.transport.subscribe(broker, topic, 1);
    }
    this.#subs = want;
  }

  protected event(event: Record<string, unknown>): void {
    const topic = this.t.phoneEvent(this.d.config.phoneId);
    const home = this.s.home;
    const payload = JSON.stringify(event);
    if (home !== null) {
      const p = this.s.list.find((x) => x.id === home);
      if (p) return this.transport.publish(brokerKey(p.broker), topic, payload, { qos: 0 });
    }
    this.publishAll(topic, payload, 0, false);
  }

  /** Publish the last status again on `broker` (our own will overwrote it there). */
  protected restoreStatus(broker: string, topic: string): void {
    if (this.lastStatus === '' || !this.transport.isUp(broker) || !this.managementBrokers().has(broker)) return;
    this.log.info({ broker }, 'own will seen on a live run: status published again');
    this.transport.publish(broker, topic, this.lastStatus, { qos: 1, retain: true });
  }

  protected publishAll(topic: string, payload: string, qos: 0 | 1, retain: boolean): void {
    for (const key of this.managementBrokers()) {
      if (this.transport.isUp(key)) this.transport.publish(key, topic, payload, { qos, retain });
    }
  }

  protected status(): StatusPayload {
    const s = this.s;
    // Versions as on flash: after a failed save, what a power cut would leave (retries run meanwhile).
    const storage = this.d.store.storage;
    const flashed = storage === 'unsaved' ? (this.d.store.flashed ?? { pointersVersion: 0, configVersion: 0 }) : null;
    return {
      online: true,
      home: s.home,
      services: this.services?.shown ?? null,
      state: phaseOf(s),
      pointersVersion: flashed?.pointersVersion ?? s.listVersion,
      configVersion: flashed?.configVersion ?? this.configVersion,
      ...(storage !== undefined ? { storage } : {}),
      rehomes: s.rehomes,
      pointers: s.list.map((p) => p.id),
      busy: s.busy,
      stateWrites: this.d.store.writes,
      // Another phone uses this id (a cloned image): brokers keep handing our session to it.
      duplicateId: duplicateId(s),
      instance: this.dup.instance,
      ...(this.sip !== null ? { sip: this.sip.status() } : {}),
    };
  }

  protected hr(): number {
    return this.d.hrNow?.() ?? this.d.clock.elapsed();
  }

  protected afterStep(): void {
    if (!this.running) return;
    this.services.update(this.s.list, this.s.home);
    this.sip?.update(this.s.list, this.s.home, this.s.move !== null);
    const status = JSON.stringify(this.status());
    // A failover's QoS 1 status waits for the new home's first ack (critical-path.ts).
    if (status !== this.lastStatus && !statusWaitsForAck(this.s, this.d.clock.elapsed())) {
      if (this.#saving > 0) {
        // The status names the list version as held: publish it only once that list is on
        // flash, so a power cut never takes back a version the phone reported.
        if (!this.#statusDeferred) {
          this.#statusDeferred = true;
          void this.persisting.then(() => {
            this.#statusDeferred = false;
            this.afterStep();
          });
        }
      } else {
        this.lastStatus = status;
        this.publishAll(this.t.phoneStatus(this.d.config.phoneId), status, 1, true);
      }
    }
    const ui = `${this.s.home}|${phaseOf(this.s)}`;
    if (ui !== this.#lastUi) {
      this.#lastUi = ui;
      this.ui.status(this.s.home, phaseOf(this.s));
      this.d.noServiceLed?.set(this.s.home === null);
    }
    this.reconfig.check();
  }
}
