/**
 * Remote reconfiguration, commit-confirmed.
 *
 * A signed, versioned body `{ version, config }` on `P/phone/{id}/config` is a
 * partial agent config. It is merged over the current overlay (the sum of all
 * accepted changes, kept in flash beside the pointer list), merged over the
 * config file, and validated against the schema. Fields that cannot change at
 * run time are either refused (identity and the management channel) or
 * persisted for the next start. The rest is applied live.
 *
 * Commit-confirmed: after applying, the phone must be homed on a pointer of
 * its list within `remoteConfig.confirmMs`; then the result `{ ok: true }` is
 * published. Otherwise the phone restores the previous config by itself and
 * publishes `{ ok: false, rolledBack: true, error }`. The version of a change
 * is consumed either way, so a rolled-back message cannot be replayed.
 *
 * Across a power cut (issue 10): the unconfirmed change is saved with its
 * rollback target — the last *confirmed* overlay and the list held before
 * the change — and the time left of its window (`remainingMs`). A boot with
 * such a record arms the window again and counts the remaining time from the
 * boot: no wall-clock deadline, because a board without a real-time clock
 * boots in 1970 and NTP steps it later, so a saved date would roll back at
 * once or never. Time without power counts for nothing, which is the safe
 * reading: the window asks "can the phone home with this config?", and an
 * unpowered phone has not tried. A second change while one is pending keeps
 * the first one's rollback target; a rollback restores the held list at its
 * own version (only when a change of the chain touched `pointers`).
 */
import { validateAgentConfig, type AgentConfig } from '../config/agent-config.js';
import { mergeConfig } from '../config/merge.js';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { ConfigResultPayload, Pointer } from '../protocol/types.js';
import type { PendingConfig } from './ports.js';
import { effectiveConfig } from './boot-config.js';

/** Fields a remote change may not touch: the phone's identity and the channel it is managed over. */
export const FIXED_FIELDS = ['phoneId', 'topicPrefix', 'stateDir'] as const;
/** Fields that take effect at the next start (the connections or hardware they shape are open). */
export const RESTART_FIELDS = ['board', 'mqtt.username', 'mqtt.password', 'mqtt.passwordFile', 'mqtt.ca', 'mqtt.cert', 'mqtt.key', 'mqtt.protocolVersion', 'mqtt.connectTimeoutMs', 'mqtt.keepaliveSec', 'mqtt.maxQueue', 'sip'] as const;

export interface HeldList {
  pointers: Pointer[];
  version: number;
}

export interface ReconfigHost {
  /**
   * Apply `next` live (everything but RESTART_FIELDS) and persist it with its
   * overlay, version and the pending record ({@link Reconfigurator.pendingRecord}).
   * `restore` (a rollback) is the list held before the change, to put back at its own version.
   * `setsPointers`: the change's patch names `pointers`, so they replace the held list even when
   * they equal the config's (an operator restoring the provisioned list after a call manager's).
   */
  apply(next: AgentConfig, overlay: Record<string, unknown>, version: number, restore?: HeldList, setsPointers?: boolean): Promise<void>;
  /** The list held now: what a rollback restores. */
  heldList(): HeldList;
  /** Persist the current state (a change was confirmed: its pending record goes). */
  persist(): void;
  /** True while the phone is homed on a pointer of its list with no move pending. */
  confirmed(): boolean;
  publishResult(result: ConfigResultPayload): void;
}

interface Pending {
  version: number;
  /** The last confirmed config and the list held before the first change of the chain. */
  prev: { config: AgentConfig; overlay: Record<string, unknown>; list: HeldList };
  restart: string[];
  pointersTouched: boolean;
  /** Clock time the window ends (this process's clock). */
  deadline: number;
  timer: TimerHandle;
}

/** Leaf paths (`a.b`) whose values differ between two configs. */
export function changedPaths(a: unknown, b: unknown, prefix = ''): string[] {
  const isObj = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
  if (isObj(a) && isObj(b)) {
    const keys = new Set([...Object.keys(a), ...Object.keys(b)]);
    return [...keys].flatMap((k) => changedPaths(a[k], b[k], prefix ? `${prefix}.${k}` : k));
  }
  return JSON.stringify(a) === JSON.stringify(b) ? [] : [prefix];
}

export class Reconfigurator {
  readonly #file: AgentConfig;
  readonly #host: ReconfigHost;
  readonly #clock: Clock;
  readonly #log: Logger;
  #config: AgentConfig;
  #overlay: Record<string, unknown>;
  #pending: Pending | null = null;
  #queue: Promise<void> = Promise.resolve();

  /**
   * @param file the config from the file (defaults filled)
   * @param overlay the accepted changes kept in flash ({} for none)
   */
  constructor(opts: { file: AgentConfig; overlay: Record<string, unknown>; host: ReconfigHost; clock: Clock; log: Logger }) {
    this.#file = opts.file;
    this.#host = opts.host;
    this.#clock = opts.clock;
    this.#log = opts.log;
    this.#overlay = opts.overlay;
    this.#config = opts.file;
  }

  /**
   * The effective config at boot: the file with the saved overlay, or the
   * file alone (with a warning) when the overlay no longer fits it.
   */
  boot(saved?: PendingConfig): AgentConfig {
    ({ config: this.#config, overlay: this.#overlay } = effectiveConfig(this.#file, this.#overlay, this.#log));
    if (saved !== undefined) {
      const prev = effectiveConfig(this.#file, saved.prev.overlay, this.#log);
      const ms = saved.remainingMs;
      this.#log.warn({ version: saved.version, remainingMs: ms }, 'unconfirmed remote config at boot: its confirmation window runs again from now');
      this.#pending = {
        version: saved.version,
        prev: { ...prev, list: { pointers: saved.prev.pointers, version: saved.prev.pointersVersion } },
        restart: saved.restart,
        pointersTouched: saved.pointersTouched,
        deadline: this.#clock.now() + ms,
        timer: this.#clock.setTimeout(() => this.#rollback(), ms),
      };
    }
    return this.#config;
  }

  /** The unconfirmed change as it goes to flash with every save, or undefined when none is pending. */
  get pendingRecord(): PendingConfig | undefined {
    const p = this.#pending;
    if (p === null) return undefined;
    return {
      version: p.version,
      remainingMs: Math.max(0, Math.round(p.deadline - this.#clock.now())),
      restart: p.restart,
      pointersTouched: p.pointersTouched,
      prev: { overlay: p.prev.overlay, pointers: p.prev.list.pointers, pointersVersion: p.prev.list.version },
    };
  }

  get config(): AgentConfig {
    return this.#config;
  }

  get overlay(): Record<string, unknown> {
    return this.#overlay;
  }

  /** A verified body (signature, version, expiry and phone already checked). Changes run one at a time. */
  change(version: number, patch: Record<string, unknown>): Promise<void> {
    this.#queue = this.#queue.then(() => this.#change(version, patch)).catch((err: unknown) => {
      this.#log.error({ err: errorMessage(err) }, 'remote config change failed');
      this.#host.publishResult({ version, ok: false, error: `could not apply: ${errorMessage(err)}` });
    });
    return this.#queue;
  }

  async #change(version: number, patch: Record<string, unknown>): Promise<void> {
    const fixed = FIXED_FIELDS.filter((f) => f in patch && JSON.stringify(patch[f]) !== JSON.stringify(this.#config[f]));
    if (fixed.length > 0) {
      this.#host.publishResult({ version, ok: false, error: `${fixed.join(', ')}: cannot be changed remotely` });
      return;
    }
    let overlay: Record<string, unknown>;
    try {
      overlay = mergeConfig(this.#overlay, patch);
    } catch (err) {
      this.#host.publishResult({ version, ok: false, error: errorMessage(err) });
      return;
    }
    const v = validateAgentConfig(mergeConfig(this.#file, overlay));
    if (!v.ok) {
      this.#host.publishResult({ version, ok: false, error: v.problems.join('; ') });
      return;
    }
    // A change while one is pending supersedes it but keeps its rollback target: the last confirmed config.
    const before = this.#pending;
    if (before !== null) this.#finish(true);
    const prev = before?.prev ?? { config: this.#config, overlay: this.#overlay, list: this.#host.heldList() };
    const changed = changedPaths(prev.config, v.config);
    const restart = changed.filter((p) => RESTART_FIELDS.some((f) => p === f || p.startsWith(`${f}.`)));
    const setsPointers = 'pointers' in patch;
    const pointersTouched = (before?.pointersTouched ?? false) || setsPointers || changedPaths(this.#config.pointers, v.config.pointers).length > 0;
    const was = { config: this.#config, overlay: this.#overlay };
    const confirmMs = v.config.remoteConfig.confirmMs;
    this.#config = v.config;
    this.#overlay = overlay;
    // Pending before the save, so the record goes to flash with the change itself.
    this.#pending = { version, prev, restart, pointersTouched, deadline: this.#clock.now() + confirmMs, timer: this.#clock.setTimeout(() => this.#rollback(), confirmMs) };
    try {
      await this.#host.apply(v.config, overlay, version, undefined, setsPointers);
    } catch (err) {
      this.#clock.clearTimeout(this.#pending.timer);
      this.#pending = null;
      ({ config: this.#config, overlay: this.#overlay } = was);
      throw err;
    }
    this.#log.info({ version, changed, restart }, 'remote config applied; waiting for confirmation');
    this.check();
  }

  /** Call after every state change: confirms a pending change once the phone is homed. */
  check(): void {
    if (this.#pending !== null && this.#host.confirmed()) this.#finish(false);
  }

  /** Confirmed (or superseded: its fate is then the superseding change's; the result says `superseded`). */
  #finish(superseded: boolean): void {
    const p = this.#pending;
    if (p === null) return;
    this.#clock.clearTimeout(p.timer);
    this.#pending = null;
    if (!superseded) this.#host.persist();
    const result: ConfigResultPayload = { version: p.version, ok: true };
    if (p.restart.length > 0) result.restartRequired = p.restart;
    if (superseded) result.superseded = true;
    this.#log.info({ version: p.version, superseded }, 'remote config confirmed');
    this.#host.publishResult(result);
  }

  #rollback(): void {
    const p = this.#pending;
    if (p === null) return;
    this.#pending = null;
    const secs = Math.round(this.#config.remoteConfig.confirmMs / 1000);
    this.#config = p.prev.config;
    this.#overlay = p.prev.overlay;
    this.#log.warn({ version: p.version }, 'remote config rolled back: not homed within the confirmation window');
    this.#queue = this.#queue
      .then(() => this.#host.apply(p.prev.config, p.prev.overlay, p.version, p.pointersTouched ? p.prev.list : undefined))
      .then(() =>
        this.#host.publishResult({
          version: p.version,
          ok: false,
          rolledBack: true,
          error: `rolled back: the phone could not home within ${secs} s after the change`,
        }),
      )
      .catch((err: unknown) => this.#log.error({ err: errorMessage(err) }, 'rollback failed'));
  }

  close(): void {
    if (this.#pending !== null) this.#clock.clearTimeout(this.#pending.timer);
    this.#pending = null;
  }
}
