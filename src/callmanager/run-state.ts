/**
 * This call manager's own liveness: the signed state of its current run
 * (format: protocol/cm-state.ts) and the guard of its own state topic.
 *
 * - Each MQTT connection attempt gets a fresh nonce and the next connection
 *   number; {@link CmRun.connect} returns the pre-signed offline of that
 *   connection (`will: true`) to set as its will, so the will, the offline
 *   published on a clean stop and the online are all of one run.
 * - Every state the run signs carries the next `seq` (the connection's will
 *   and online, an offline reported while the process lives — its SIP server
 *   silent — and the online after it): receivers take only what is strictly
 *   newer (cm-liveness.ts), so no state of the run can be replayed to them.
 *   The will's bytes are published by no one while the process lives: an
 *   offline it reports is its own, newer, signed message, and only a clean
 *   stop publishes the will (the process ends with it).
 * - {@link CmRun.answer} signs the current state again with a receiver's
 *   challenge (challenge-queue.ts bounds how often).
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
  /**
   * The group digest and floor every state announces, read when a state is
   * signed (group-floor.ts): a floor raised later rides on the next state signed
   * anyway (no signature of its own).
   */
  announce?: () => { group: string; floor: number } | undefined;
}

export class CmRun {
  readonly bdSeq: number;
  readonly #o: CmRunOptions;
  readonly #random: (n: number) => Buffer;
  #conn = 0;
  /** The last `seq` signed in this run. */
  #seq = 0;
  #nonce = '';
  /** The latest signed online of the current connection, or '' when it has had none (it began offline). */
  #online = '';
  /** The current connection's will. */
  #will = '';
  /** The signed state of now while the process lives: the online, or an offline it reports. */
  #state = '';
  #stateSeq = 0;
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

  /** The latest signed online of the current connection ('' while it has had none). */
  get online(): string {
    return this.#online;
  }

  /** The signed offline of the current connection: its will (final for the connection). */
  get offline(): string {
    return this.#will;
  }

  /** The last `seq` signed. */
  get seq(): number {
    return this.#seq;
  }

  /**
   * What we mean to have retained: while we live, our state (the online, or
   * the offline we report while the SIP server is silent); once stopping, the will.
   */
  get current(): string {
    return this.#live ? this.#state : this.#will;
  }

  /** False while this call manager reports itself offline though its process lives. */
  get available(): boolean {
    return this.#available;
  }

  /**
   * Report ourselves offline (`false`: our SIP server is silent) or online
   * again, while the process lives: a new state, signed with the next `seq`,
   * published at once (never the will: that one stays final). Returns true
   * when it changed.
   */
  setAvailable(available: boolean): boolean {
    if (available === this.#available) return false;
    this.#available = available;
    this.#cancel();
    if (this.#conn > 0) {
      this.#sign();
      if (this.#live) this.#o.publish(this.#state);
    }
    return true;
  }

  /**
   * Our current state signed again with `challenge` (its `seq` unchanged: it
   * says the same), for `P/cm/{cmId}/challenge/{from}/answer`; undefined before
   * the first connection and once stopping (a stopping process is not live).
   */
  answer(challenge: string): string | undefined {
    if (!this.#live || this.#conn === 0) return undefined;
    return encodeCmState({ ...this.#body(), online: this.#available, seq: this.#stateSeq, challenge }, this.#o.sign);
  }

  /** Times our state was published again because the topic said otherwise. */
  get republished(): number {
    return this.#republished;
  }

  /**
   * A new connection attempt: fresh nonce, next conn; its will and its state
   * (online, or offline while we report ourselves so) signed with the next
   * `seq`s. Returns the will.
   */
  connect(): string {
    this.#nonce = this.#random(NONCE_BYTES).toString('base64url');
    this.#conn++;
    this.#will = encodeCmState({ ...this.#body(), online: false, seq: ++this.#seq, will: true }, this.#o.sign);
    this.#online = '';
    this.#sign();
    return this.#will;
  }

  #body(): { cm: string; bdSeq: number; conn: number; nonce: string; group?: string; floor?: number } {
    const a = this.#o.announce?.();
    return { cm: this.#o.cmId, bdSeq: this.bdSeq, conn: this.#conn, nonce: this.#nonce, ...(a !== undefined ? { group: a.group, floor: a.floor } : {}) };
  }

  /** Sign our state of now with the next `seq`. */
  #sign(): void {
    this.#stateSeq = ++this.#seq;
    this.#state = encodeCmState({ ...this.#body(), online: this.#available, seq: this.#stateSeq }, this.#o.sign);
    if (this.#available) this.#online = this.#state;
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
    if (!this.#live || this.#conn === 0 || payload.toString('utf8') === this.current) return false;
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
