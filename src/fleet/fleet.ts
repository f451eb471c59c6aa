/**
 * N phones in one process: each the real agent core (`composeAgent`) with its
 * own MQTT connection and state directory, on headless hardware with a
 * software hook switch. Used by `ipphone-fleet` for load and failover tests
 * of call managers, and in-process by tests.
 *
 * Per-phone memory is what limits a fleet (2,000 phones beside mosquitto and
 * call managers on a small box): the fleet adds nothing per phone beyond the
 * agent itself — no timers, one pino child of one root, no per-phone history.
 */
import type { Agent } from '../agent/agent.js';
import { composeAgent } from '../agent/compose.js';
import type { ServicesFetcher } from '../agent/ports.js';
import type { AgentConfig } from '../config/agent-config.js';
import type { Clock, Random } from '../lib/clock.js';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { HeadlessDisplay, NoKeypad, SoftHook } from '../hw/headless.js';
import { DEFAULT_PREFIX, assertFleetShape, fleetPhoneConfig } from './phones.js';
import { assertNumbers } from './split.js';

export interface FleetOptions {
  /** The agent config every phone starts from; its `phoneId` is ignored and its `board` unused (always headless). */
  config: AgentConfig;
  /** Number of phones, 1 to `MAX_COUNT`. */
  count: number;
  /** Phone ids are `{prefix}1` … `{prefix}{count}`. Default `sim-`. */
  prefix?: string;
  /** Parent of the phones' state dirs (`{stateDir}/{phoneId}`). Default `config.stateDir`. */
  stateDir?: string;
  /** Each phone's own client certificate: `{certDir}/{phoneId}.crt` and `.key` (fleetPhoneCert). Default: the config's `mqtt.cert`/`key`. */
  certDir?: string;
  /** The one root logger; each phone logs through `log.child({ phone })`. */
  log: Logger;
  clock?: Clock;
  random?: Random;
  /** Services page fetcher for every phone. Default the HTTP fetcher. */
  fetch?: ServicesFetcher;
  /** Phones 1 … `busy` start off-hook (busy). Default 0. */
  busy?: number;
  /** Phones started together before yielding to the event loop. Default 100. */
  batchSize?: number;
  /**
   * The phone numbers this fleet runs, ascending, each from 1 to `count`: one
   * worker thread's slice of a larger fleet ({@link fleetSlices}). Default all,
   * 1 … `count`. Ids, state dirs and `busy` are as in the whole fleet.
   */
  numbers?: readonly number[];
  /** Called with each phone once it is built, before its agent starts (a worker's event trace). */
  onBuilt?: (phone: FleetPhone) => void;
}

/** One phone of the fleet. */
export interface FleetPhone {
  readonly id: string;
  readonly agent: Agent;
  readonly hook: SoftHook;
  readonly display: HeadlessDisplay;
}

/** A snapshot of the fleet, from the agents' machine states. */
export interface FleetSummary {
  /** Phones built so far (equals the requested count once started). */
  count: number;
  /** Phones with a home call manager. */
  homed: number;
  /** Homed phones per call manager id. */
  byHome: Record<string, number>;
  /** Phones without a home (starting, searching, or no service). */
  noService: number;
  /** Sum of the phones' completed rehomes. */
  rehomes: number;
  /** Phones off-hook. */
  busy: number;
}

const DEFAULT_BATCH = 100;

export class Fleet {
  readonly #o: FleetOptions;
  readonly #phones: FleetPhone[] = [];
  readonly #byId = new Map<string, FleetPhone>();
  #started = false;
  #stopping: Promise<void> | undefined;
  /** The batch being started: stop() waits for it (an agent stopped mid-start would connect afterwards). */
  #batch: Promise<unknown> = Promise.resolve();

  constructor(opts: FleetOptions) {
    this.#o = opts;
  }

  /**
   * Build and start the phones, `batchSize` at a time, awaiting each batch
   * (state load, first connect) and yielding to the event loop between
   * batches, so startup is not one synchronous burst of thousands of sockets.
   * Throws USAGE on a bad count/prefix/busy or a second call; if a phone
   * fails to start (e.g. STORE_IO on its state dir), stops every phone built
   * so far and rethrows that phone's error.
   */
  async start(): Promise<void> {
    const o = this.#o;
    const prefix = o.prefix ?? DEFAULT_PREFIX;
    if (this.#started) throw new IpphoneError('the fleet was already started', 'USAGE');
    this.#started = true;
    assertFleetShape(o.count, prefix);
    const busy = o.busy ?? 0;
    if (!Number.isSafeInteger(busy) || busy < 0 || busy > o.count) throw new IpphoneError(`busy must be an integer from 0 to count (${o.count}) (got ${busy})`, 'USAGE');
    const numbers = o.numbers ?? Array.from({ length: o.count }, (_, i) => i + 1);
    if (o.numbers !== undefined) assertNumbers(o.numbers, o.count);
    const batchSize = Math.max(1, o.batchSize ?? DEFAULT_BATCH);
    const fleetLog = o.log.child({ mod: 'fleet' });
    fleetLog.info({ count: numbers.length, prefix, batchSize }, 'fleet starting');
    for (let first = 0; first < numbers.length; first += batchSize) {
      if (this.#stopping) return;
      const batch: FleetPhone[] = [];
      for (const n of numbers.slice(first, first + batchSize)) batch.push(this.#build(prefix, n, n <= busy));
      const settling = Promise.allSettled(batch.map((p) => p.agent.start()));
      this.#batch = settling;
      const results = await settling;
      const failed = results.findIndex((r) => r.status === 'rejected');
      if (failed >= 0) {
        const reason = (results[failed] as PromiseRejectedResult).reason;
        fleetLog.error({ phone: batch[failed]?.id, err: errorMessage(reason) }, 'phone failed to start; stopping the fleet');
        await this.stop();
        throw reason;
      }
      await new Promise<void>((resolve) => setImmediate(resolve));
    }
    fleetLog.info({ count: this.#phones.length }, 'fleet started');
  }

  #build(prefix: string, n: number, offHook: boolean): FleetPhone {
    const o = this.#o;
    const config = fleetPhoneConfig(o.config, prefix, n, o.stateDir, o.certDir);
    const hook = new SoftHook();
    // Set before start: the agent reads the hook once at start, so the phone is busy from its first keep-alive.
    if (offHook) hook.set(true);
    const display = new HeadlessDisplay();
    const agent = composeAgent({
      config,
      log: o.log.child({ phone: config.phoneId }),
      hardware: { display, keypad: new NoKeypad(), hook },
      // Thousands of clients in one process: the 6 MiB number cache pays for itself.
      writeCache: true,
      // One bad --state-dir would otherwise run thousands of phones without flash.
      stateDirRequired: true,
      ...(o.clock ? { clock: o.clock } : {}),
      ...(o.random ? { random: o.random } : {}),
      ...(o.fetch ? { fetch: o.fetch } : {}),
    });
    const phone: FleetPhone = { id: config.phoneId, agent, hook, display };
    this.#phones.push(phone);
    this.#byId.set(phone.id, phone);
    o.onBuilt?.(phone);
    return phone;
  }

  /**
   * Stop every phone (each publishes its offline status and closes its
   * connections). Idempotent: later calls return the same promise. A start
   * still in progress builds no further batches.
   */
  stop(): Promise<void> {
    this.#stopping ??= (async () => {
      await this.#batch;
      await Promise.all(this.#phones.map((p) => p.agent.stop().catch(() => {})));
      this.#o.log.child({ mod: 'fleet' }).info({ count: this.#phones.length }, 'fleet stopped');
    })();
    return this.#stopping;
  }

  /** The phones built so far, in number order (`{prefix}1` first, or the slice's first). */
  phones(): ReadonlyArray<FleetPhone> {
    return this.#phones;
  }

  /** Lift (true) or replace (false) the handset of phone `id`. Throws USAGE for an unknown id. */
  setBusy(id: string, offHook: boolean): void {
    const p = this.#byId.get(id);
    if (!p) throw new IpphoneError(`no phone ${JSON.stringify(id)} in this fleet`, 'USAGE', { phone: id });
    p.hook.set(offHook);
  }

  summary(): FleetSummary {
    const byHome: Record<string, number> = {};
    let homed = 0;
    let rehomes = 0;
    let busy = 0;
    for (const p of this.#phones) {
      const s = p.agent.state;
      if (p.hook.isOffHook()) busy++;
      if (s === undefined) continue; // built, not yet started
      rehomes += s.rehomes;
      if (s.home === null) continue;
      homed++;
      byHome[s.home] = (byHome[s.home] ?? 0) + 1;
    }
    return { count: this.#phones.length, homed, byHome, noService: this.#phones.length - homed, rehomes, busy };
  }
}
