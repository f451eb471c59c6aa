/**
 * How a call manager judges its peers' `state` messages before they may
 * change the offline set (and so the pointer lists it signs and pushes): the
 * shared {@link LivenessVerifier}, with a refusal logged at most once per
 * peer per {@link REFUSAL_LOG_GAP_MS} (with how many were not logged) — a
 * flood of forged states must not flood the journal either. A refused state
 * changes nothing; only a verified one returns a value. An online it cannot
 * order (a reinstalled peer with a lower boot sequence, or a replay) is
 * challenged: `challenge(peer, value)` publishes it, and only the peer's
 * signed answer ({@link PeerLiveness.answer}) is believed.
 */
import type { KeyObject } from 'node:crypto';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { LivenessVerifier, type LivenessVerdict } from '../protocol/cm-liveness.js';
import { trustedKeys, type TrustedKeys } from '../protocol/envelope.js';

/** At most one log line about refused states per peer per this many ms. */
export const REFUSAL_LOG_GAP_MS = 10_000;

/**
 * The keys a call manager trusts for its peers' states: `trust.keys` of its
 * config, and always its own signing key's public half under its own
 * `keyId` (so a group sharing one key needs no trust section).
 */
export function cmTrustedKeys(configured: Record<string, string>, keyId: string, ownPublic: KeyObject | undefined): TrustedKeys {
  const keys = new Map(trustedKeys(configured));
  if (ownPublic !== undefined) keys.set(keyId, ownPublic);
  return keys;
}

export class PeerLiveness {
  readonly #verifier: LivenessVerifier;
  readonly #clock: Clock;
  readonly #log: Logger;
  readonly #lastLog = new Map<string, { at: number; unlogged: number }>();
  #refused = 0;

  readonly #challenge: (peer: string, value: string) => void;
  readonly #timers = new Map<string, TimerHandle>();

  /** Told the group digest and floor a verified state of `peer` announces (group-floor.ts). */
  readonly #announced: (peer: string, group: string, floor: number) => void;

  constructor(o: {
    keys: TrustedKeys;
    clock: Clock;
    log: Logger;
    challenge?: (peer: string, value: string) => void;
    announced?: (peer: string, group: string, floor: number) => void;
    randomBytes?: (n: number) => Buffer;
  }) {
    this.#verifier = new LivenessVerifier(o.keys, { clock: o.clock, ...(o.randomBytes ? { randomBytes: o.randomBytes } : {}) });
    this.#clock = o.clock;
    this.#log = o.log;
    this.#challenge = o.challenge ?? (() => {});
    this.#announced = o.announced ?? (() => {});
  }

  /** States refused so far. */
  get refused(): number {
    return this.#refused;
  }

  /** The verified `online` of peer `id`'s state, or undefined when it was refused (logged, rate-limited). */
  judge(id: string, payload: Buffer): boolean | undefined {
    return this.#verdict(id, this.#verifier.check(id, payload));
  }

  /** The verified `online` of peer `id`'s answer to our challenge, or undefined when refused (logged, rate-limited). */
  answer(id: string, payload: Buffer): boolean | undefined {
    const v = this.#verifier.answer(id, payload);
    if (v.ok) this.#log.info({ peer: id, bdSeq: v.run.bdSeq, seq: v.run.seq, online: v.online }, 'peer answered our challenge: its run is believed');
    return this.#verdict(id, v);
  }

  /** Stop asking again (the call manager stops). */
  stop(): void {
    for (const t of this.#timers.values()) this.#clock.clearTimeout(t);
    this.#timers.clear();
  }

  /** Ask peer `id` again in `ms` unless it answered meanwhile (LivenessVerifier.retry); one timer per peer. */
  #retry(id: string, ms: number): void {
    if (this.#timers.has(id)) return;
    this.#timers.set(
      id,
      this.#clock.setTimeout(() => {
        this.#timers.delete(id);
        const r = this.#verifier.retry(id);
        if (r.challenge !== undefined) this.#challenge(id, r.challenge);
        if (r.retryInMs !== undefined) this.#retry(id, r.retryInMs);
      }, Math.max(1, ms)),
    );
  }

  #verdict(id: string, v: LivenessVerdict): boolean | undefined {
    if (v.ok) {
      // Only a verified state (trusted key, the peer's run, strictly newer) announces anything.
      if (v.announced !== undefined) this.#announced(id, v.announced.group, v.announced.floor);
      return v.online;
    }
    if (v.challenge !== undefined) this.#challenge(id, v.challenge);
    if (v.retryInMs !== undefined) this.#retry(id, v.retryInMs);
    this.#refused++;
    const now = this.#clock.elapsed();
    const last = this.#lastLog.get(id);
    if (last !== undefined && now - last.at < REFUSAL_LOG_GAP_MS) {
      last.unlogged++;
      return undefined;
    }
    const fields = { peer: id, code: v.code, reason: v.reason, unlogged: last?.unlogged ?? 0 };
    if (v.quiet) this.#log.info(fields, 'peer state ignored');
    else this.#log.warn(fields, 'peer state refused');
    this.#lastLog.set(id, { at: now, unlogged: 0 });
    return undefined;
  }
}
