/**
 * The agent core: runs the pure failover machine (`machine.ts`) and performs
 * its effects through injected ports — transport, store, clock, random,
 * services fetcher, display. One instance is one phone; the CLI, the fleet
 * and the demo all build it the same way.
 *
 * Layers: `agent-core.ts` holds the state and runs the machine's effects,
 * `agent-messages.ts` decodes and verifies what arrives; this file adds the
 * lifecycle and hosts the Reconfigurator.
 */
import type { AgentConfig } from '../config/agent-config.js';
import { trustedKeys } from '../protocol/envelope.js';
import type { ConfigResultPayload } from '../protocol/types.js';
import { brokerKey } from '../protocol/pointers.js';
import type { AgentState } from './ports.js';
import { provisioningHash, reconcileWithFile } from './boot-config.js';
import { initialState, type MachineState } from './machine.js';
import { ServicesController } from './services.js';
import { PhoneUi } from './phone-ui.js';
import { parseCiscoXml } from '../ui/cisco-xml.js';
import { changedPaths, Reconfigurator, type HeldList } from './reconfig.js';
import { machineConfig } from './agent-core.js';
import { AgentMessages, rebaseKey } from './agent-messages.js';
import { MAX_REBASES_TAKEN } from '../store/agent-state-store.js';
import { KeepaliveTopics, keepaliveTopicKind } from './keepalive-topic.js';
import { SipPhone } from './sip-phone.js';

export { machineConfig, type AgentDeps } from './agent-core.js';
import type { AgentDeps } from './agent-core.js';

/** The wake-up timer overdue this long means the agent's loop is wedged (ms). */
const WEDGED_AFTER_MS = 10_000;

/** Upper bound of the spread of services fetches after a home change (ms). */
const SERVICES_JITTER_MAX_MS = 2000;

export class Agent extends AgentMessages {
  #stopped = false;
  #fileHash = '';

  /** The machine state, read-only, for status, tests and the fleet. */
  get state(): Readonly<MachineState> {
    return this.s;
  }

  get home(): string | null {
    return this.s?.home ?? null;
  }

  get servicesShown(): string | null {
    return this.services?.shown ?? null;
  }

  async start(): Promise<void> {
    const d = this.d;
    // The store answers null (storage 'unavailable') for a state directory it cannot use: run from the file.
    const boot = reconcileWithFile(d.config, await d.store.load(), this.log);
    const saved = boot.state;
    this.#fileHash = provisioningHash(d.config);
    if (saved === null) this.log.warn({ pointers: d.config.pointers.map((p) => p.id) }, 'no saved pointer list; using the config file list');
    this.configVersion = saved?.configVersion ?? 0;
    for (const r of saved?.rebasesTaken ?? []) this.rebasesTaken.set(rebaseKey(r.rebase, r.version, r.expires), r);
    this.reconfig = new Reconfigurator({
      file: d.config,
      overlay: saved?.configOverlay ?? {},
      clock: d.clock,
      log: d.log.child({ mod: 'reconfig' }),
      host: {
        apply: (next, overlay, version, restore, setsPointers) => this.#applyConfig(next, overlay, version, restore, setsPointers),
        heldList: () => ({ pointers: this.s.list.map((p) => ({ ...p })), version: this.s.listVersion }),
        persist: () => this.persist(),
        confirmed: () => {
          const s = this.s;
          return s.home !== null && s.move === null && s.list.some((p) => p.id === s.home);
        },
        publishResult: (r) => this.publishResult(r),
      },
    });
    const cfg = (this.cfg = this.reconfig.boot(saved?.pendingConfig));
    this.keys = cfg === d.config ? d.keys : trustedKeys(cfg.trust.keys);
    this.kaTopics = new KeepaliveTopics(this.t, d.config.phoneId, keepaliveTopicKind(cfg));
    this.s = initialState(machineConfig(cfg), saved?.pointers ?? cfg.pointers, saved?.pointersVersion ?? 0);
    d.store.onChange?.(() => this.afterStep());
    const statusTopic = this.t.phoneStatus(d.config.phoneId);
    this.transport = d.transport(
      {
        up: (b) => this.#onUp(b),
        down: (b, reason, detail) => this.input({ type: 'broker-down', broker: b, serverReference: detail.serverReference, reasonCode: detail.reasonCode }),
        message: (b, topic, payload) => this.onMessage(b, topic, payload),
      },
      { topic: statusTopic, payload: JSON.stringify({ online: false, instance: this.dup.instance }), qos: 1, retain: true },
      cfg,
    );
    this.services = new ServicesController({
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
          this.event({ type: 'rehomed', from: c.from ?? this.home, to: c.to, reason: 'services-timeout', detectMs: c.detectMs, rehomeMs: c.rehomeMs, scope: 'services' });
        }
        this.log.info({ from: c.from, to: c.to, reason: c.reason }, 'services source changed');
        this.afterStep();
      },
      validate: (page) => void parseCiscoXml(page),
      onPage: (page, from, url) => this.ui.page(page, from, url),
    });
    if (d.sip && cfg.sip) this.sip = this.#sipPhone(d.sip, cfg.sip);
    this.ui = new PhoneUi({ display: this.sip?.display ?? d.display, keypad: this.sip?.keypad ?? d.keypad ?? null, clock: d.clock, log: d.log.child({ mod: 'ui' }), phoneId: d.config.phoneId, fetch: d.fetchServices, timeoutMs: cfg.services.timeoutMs, pointers: () => ({ list: this.s.list, home: this.s.home }) });
    this.ui.start();
    // With SIP, busy is off hook or a call not idle (sip-phone.ts), and the hook drives calls.
    if (this.sip === null) d.hook?.onChange((offHook) => this.input({ type: 'busy', busy: offHook }));
    this.running = true;
    // The file won over the saved list (boot-config.ts): put that on flash with the new hash.
    if (boot.fileWon) this.persist();
    this.syncSubscriptions();
    this.input({ type: 'start' });
    if (this.sip !== null) this.sip.start();
    else if (d.hook?.isOffHook()) this.input({ type: 'busy', busy: true });
  }

  #sipPhone(ua: NonNullable<AgentDeps['sip']>, sip: NonNullable<AgentConfig['sip']>): SipPhone {
    const d = this.d;
    return new SipPhone({
      ua,
      cfg: { user: sip.user, regintS: sip.regintS, timeoutMs: sip.registerTimeoutMs, credentials: sip.passwordFile !== undefined, authRetryMs: sip.authRetryMs },
      clock: d.clock,
      log: d.log.child({ mod: 'sip' }),
      display: d.display,
      keypad: d.keypad ?? null,
      hook: d.hook,
      lamp: d.messageLed ?? null,
      host: {
        sipFailed: (cm, reason) => this.input({ type: 'sip-failed', cm, reason }),
        busy: (busy) => this.input({ type: 'busy', busy }),
        event: (e) => this.event(e),
        changed: () => this.afterStep(),
      },
    });
  }

  /**
   * True while the agent's own loop works: its single wake-up timer is not
   * overdue. Unreachable call managers or brokers do not make it unhealthy —
   * riding those out is the agent's job, and a restart would not help.
   */
  healthy(): boolean {
    if (!this.running || this.s === undefined) return false;
    const at = this.s.wakeAt;
    return at === null || this.d.clock.elapsed() - at < WEDGED_AFTER_MS;
  }

  async stop(): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.running = false;
    this.clearWake();
    this.services?.close();
    this.ui?.close();
    await this.sip?.close();
    this.reconfig?.close();
    await this.persisting;
    this.d.store.close?.();
    if (this.s === undefined) return;
    // A graceful stop says so: the will only fires on an unclean loss.
    this.publishAll(this.t.phoneStatus(this.d.config.phoneId), JSON.stringify({ ...this.status(), online: false, state: 'stopped' }), 1, true);
    await this.transport?.close();
  }

  #onUp(broker: string): void {
    this.input({ type: 'broker-up', broker });
    // The last status published, not the live one: a list still being saved is not reported yet.
    // Only while still up: the step above may have left this broker (not wanted any more), and a
    // QoS 1 publish would wait in the offline queue and reach it stale at the next connection.
    if (this.running && this.transport.isUp(broker)) this.transport.publish(broker, this.t.phoneStatus(this.d.config.phoneId), this.lastStatus || JSON.stringify(this.status()), { qos: 1, retain: true });
  }

  protected override stateExtras(): Partial<AgentState> {
    const pending = this.reconfig?.pendingRecord;
    // The rebases taken (newest last), as many as a state may hold: each expires within minutes.
    const rebases = [...this.rebasesTaken.values()].slice(-MAX_REBASES_TAKEN);
    return { fileHash: this.#fileHash, ...(pending !== undefined ? { pendingConfig: pending } : {}), ...(rebases.length > 0 ? { rebasesTaken: rebases } : {}) };
  }

  /** Apply an effective config live and persist it (Reconfigurator host); `restore` puts a held list back (rollback). */
  async #applyConfig(next: AgentConfig, overlay: Record<string, unknown>, version: number, restore?: HeldList, setsPointers = false): Promise<void> {
    const prev = this.cfg;
    this.cfg = next;
    this.configVersion = Math.max(this.configVersion, version);
    this.keys = trustedKeys(next.trust.keys);
    const d = this.d;
    const kind = keepaliveTopicKind(next);
    if (kind !== this.kaTopics.kind) this.kaTopics = new KeepaliveTopics(this.t, d.config.phoneId, kind);
    if (next.log.level !== prev.log.level) for (const l of [d.log, this.log]) l.level = next.log.level;
    this.services.setTiming(next.services.timeoutMs, next.services.refreshMs);
    this.ui.setTimeout(next.services.timeoutMs);
    const mc = machineConfig(next);
    if (JSON.stringify(mc) !== JSON.stringify(this.s.cfg)) this.input({ type: 'config', cfg: mc });
    if (restore !== undefined) {
      // A rollback: the list held before the change, at its own version — not the file's list at a fresh one.
      if (restore.version !== this.s.listVersion || changedPaths(restore.pointers, this.s.list).length > 0) {
        this.input({ type: 'list', version: restore.version, reason: 'admin', list: restore.pointers, via: 'push' });
        this.syncSubscriptions();
      }
    } else if (setsPointers ? changedPaths(next.pointers, this.s.list).length > 0 : changedPaths(prev.pointers, next.pointers).length > 0) {
      // New pointers from a config change act like an admin push at the next version — never one
      // taken from this phone's clock: a clock ahead at boot (no RTC, before NTP) would version the
      // list into the future and every call manager's list after it would be refused as stale.
      this.input({ type: 'list', version: this.s.listVersion + 1, reason: 'admin', list: next.pointers, via: 'push' });
      this.syncSubscriptions();
    }
    this.persist(overlay);
    await this.persisting;
    this.afterStep();
  }

  /**
   * To every broker of the list, queued (QoS 1) where one is down: a rollback
   * after a boot happens before any broker of the restored list is up, and its
   * result must still reach the operator.
   */
  protected publishResult(result: ConfigResultPayload): void {
    const topic = this.t.phoneConfigResult(this.d.config.phoneId);
    const payload = JSON.stringify(result);
    for (const key of new Set(this.s.list.map((p) => brokerKey(p.broker)))) this.transport.publish(key, topic, payload, { qos: 1, retain: false });
    this.afterStep();
  }
}
