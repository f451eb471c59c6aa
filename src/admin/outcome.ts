/**
 * Deciding when a sent message has had its effect, from what the phone
 * publishes. Pure: MQTT payloads in, an outcome (or "not yet") out.
 */
import { errorMessage } from '../lib/errors.js';
import { decodeConfigResult, decodeStatus, parseJsonPayload } from '../protocol/codec.js';

/** How a wait ended: `ok` → exit 0, otherwise exit 1 with `error`. */
export type Outcome = { ok: true; line: Record<string, unknown> } | { ok: false; line?: Record<string, unknown>; error: string };

/**
 * A message on `P/phone/{id}/config/result`: the outcome when it answers
 * `version`, undefined for another version. A malformed result is reported
 * through `onBad` and otherwise ignored (another sender may share the topic).
 */
export function configOutcome(version: number, payload: Buffer, onBad: (why: string) => void = () => {}): Outcome | undefined {
  let r;
  try {
    r = decodeConfigResult(payload);
  } catch (err) {
    onBad(errorMessage(err));
    return undefined;
  }
  if (r.version !== version) return undefined;
  if (r.ok) return { ok: true, line: r };
  return { ok: false, line: r, error: typeof r.error === 'string' && r.error !== '' ? r.error : 'the phone refused the change without saying why' };
}

/**
 * Waits for a pushed pointer list to take effect on a phone.
 *
 * A status that was already retained when we subscribed says what the phone
 * held BEFORE the push: if it already shows our version, the push is a
 * replay and the phone will reject it, so only a status published after
 * (not flagged retained on delivery) counts as acceptance — and none at all
 * once the retained one showed the phone holding our version already:
 * a phone republishes its status for its own reasons (a services move, a
 * reconnection), and such a status still shows the version it held, so it
 * arrived before the rejection and a replay exited 0 (a CI run).
 */
export class PointersWaiter {
  readonly #version: number;
  readonly #pointersTopic: string;
  /** The phone already holds our version: only its rejection can answer. */
  #replay = false;

  constructor(version: number, pointersTopic: string) {
    this.#version = version;
    this.#pointersTopic = pointersTopic;
  }

  /** A message on the phone's status topic; `retained` as delivered. */
  onStatus(payload: Buffer, retained: boolean): Outcome | undefined {
    let s;
    try {
      s = decodeStatus(payload);
    } catch {
      return undefined;
    }
    if (!('pointersVersion' in s)) return undefined;
    if (retained) {
      // Exactly ours: a newer one held means a rebase (--rebase signs below it), which the phone takes.
      if (s.pointersVersion === this.#version) this.#replay = true;
      return undefined;
    }
    return !this.#replay && s.pointersVersion === this.#version ? { ok: true, line: { ...s } } : undefined;
  }

  /** A message on the phone's event topic. */
  onEvent(payload: Buffer): Outcome | undefined {
    let e: Record<string, unknown>;
    try {
      e = parseJsonPayload(payload);
    } catch {
      return undefined;
    }
    if (e.type !== 'rejected' || e.topic !== this.#pointersTopic) return undefined;
    const error = typeof e.error === 'string' ? e.error : 'rejected without a reason';
    return { ok: false, line: e, error };
  }
}
