/**
 * This call manager's own liveness: the signed state of its current run
 * (format: protocol/cm-state.ts) and the guard of its own state topic.
 *
 * - Each MQTT connection attempt gets a fresh nonce and the next connection
 *   number; {@link CmRun.connect} returns the pre-signed offline of that
 *   connection to set as its will, so the will, the offline published on a
 *   clean stop and the online are all of one run.
 * - The call manager subscribes to its own state topic. Anything there that
 *   is not what it means to have retained — a forged or replayed offline, an
 *   empty message clearing it, a will of its own earlier connection arriving
 *   late — is answered by publishing its current state again (retained), at
 *   most once per {@link REPUBLISH_GAP_MS}, the last one always sent: a flood
 *   costs at most one publish per gap and the retained state ends as ours.
 */
import { randomBytes as cryptoRandomBytes } from 'node:crypto';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { encodeCmState } from '../protocol/cm-state.js';
import type { Envelope } from '../protocol/types.js';

/** Least time between two republishes of our state (ms). */
export const REPUBLISH_GAP_MS = 200;
/** At most one log line about our own topic per this many ms. */
export const OWN_STATE_LOG_GAP_MS = 10_000;
/** Nonce length in random bytes (base64url: 22 characters). */
const NONCE_BYTES = 16;

export interface CmRunOptions {
  cmId: string;
  /** This run's boot sequence (boot-seq.ts). */
  bdSeq: number;
  /** Signs a state body (the call manager's key, its `keyId`). */
  sign: (body: unknown) => Envelope;
  clock: Clock;
  /** Publishes a state payload retained, QoS 1, on our state topic. */
  publish: (payload: string) => void;
  /** Default node:crypto `randomBytes`. */
  randomBytes?: (n: number) => Buffer;
  /** Where a foreign state on our topic is reported, at most once per {@link OWN_STATE_LOG_GAP_MS}. */
  log?: Logger;
}

export class CmRun {
  readonly bdSeq: number;
  readonly #o: CmRunOptions;
  readonly #random: (n: number) => Buffer;
  #conn = 0;
  #online = '';
  #offline = '';
  #live = true;
  /** False while the call manager reports itself offline though it lives (its SIP server is silent). */
  #available = true;
  #lastRepublishAt = -Infinity;
  #timer: TimerHandle | undefined;
  #republished = 0;
  #lastLogAt = -Infinity;
  #unlogged = 0;

  constructor(o: CmRunOptions) {
    this.#o = o;
    this.bdSeq = o.bdSeq;
    this.#random = o.randomBytes ?? cryptoRandomBytes;
  }

  /** Connection number of the current (or last) connection attempt; 0 before the first. */
  get conn(): number {
    return this.#conn;
  }

  /** The signed online of the current connection. */
  get online(): string {
    return this.#online;
  }

  /** The signed offline of the current connection: its will. */
  get offline(): string {
    return this.#offline;
  }

  /** What we mean to have retained: the online while we live and are available, else the offline. */
  get current(): string {
    return this.#live && this.#available ? this.#online : this.#offline;
  }

  /** False while this call manager reports itself offline though its process lives. */
  get available(): boolean {
    return this.#available;
  }

  /**
   * Report ourselves offline (`false`: our SIP server is silent) or online
   * again, while the process lives. Publishes the signed offline/online of the
   * current connection at once (phones and peers accept an online of the run
   * they saw again: cm-liveness.ts). Returns true when it changed.
   */
  setAvailable(available: boolean): boolean {
    if (available === this.#available) return false;
    this.#available = available;
    this.#cancel();
    if (this.#live && this.#online !== '') this.#o.publish(this.current);
    return true;
  }

  /** Times our state was published again because the topic said otherwise. */
  get republished(): number {
    return this.#republished;
  }

  /** A new connection attempt: fresh nonce, next conn. Returns the will (its signed offline). */
  connect(): string {
    const nonce = this.#random(NONCE_BYTES).toString('base64url');
    const body = { cm: this.#o.cmId, bdSeq: this.bdSeq, conn: ++this.#conn, nonce };
    this.#online = encodeCmState({ ...body, online: true }, this.#o.sign);
    this.#offline = encodeCmState({ ...body, online: false }, this.#o.sign);
    return this.#offline;
  }

  /** Stopping: from now on our state is the offline; pending republishes are dropped. */
  stopping(): void {
    this.#live = false;
    this.#cancel();
  }

  /**
   * A message arrived on our own state topic. Returns true when it is not our
   * current state (and a republish is sent or scheduled).
   */
  onOwnState(payload: Buffer): boolean {
    if (!this.#live || this.#online === '' || payload.toString('utf8') === this.current) return false;
    const now = this.#o.clock.elapsed();
    if (now - this.#lastLogAt >= OWN_STATE_LOG_GAP_MS) {
      this.#o.log?.warn({ bytes: payload.length, unlogged: this.#unlogged, available: this.#available }, 'own state topic says otherwise: republishing our state');
      this.#lastLogAt = now;
      this.#unlogged = 0;
    } else this.#unlogged++;
    const wait = this.#lastRepublishAt + REPUBLISH_GAP_MS - now;
    if (wait <= 0) this.#republish();
    else this.#timer ??= this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#republish();
    }, wait);
    return true;
  }

  /** Connection lost: a scheduled republish has nowhere to go (the next connection publishes online). */
  disconnected(): void {
    this.#cancel();
  }

  #republish(): void {
    if (!this.#live) return;
    this.#lastRepublishAt = this.#o.clock.elapsed();
    this.#republished++;
    this.#o.publish(this.current);
  }

  #cancel(): void {
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
  }
}
