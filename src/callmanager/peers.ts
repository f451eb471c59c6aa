/**
 * Which peers of the group are online, from their retained
 * `P/cm/{id}/state` messages. A peer whose state was never seen counts as
 * online (a group comes up one CM at a time; its will marks it offline when it
 * dies). Only `{ "online": false }` marks a peer offline and
 * `{ "online": true }` brings it back; anything else is ignored. Pure.
 */

export type PeerUpdate =
  /** The offline set changed. */
  | 'changed'
  /** Valid state, nothing changed. */
  | 'same'
  /** Not a group peer (or this CM itself). */
  | 'ignored'
  /** Payload was not a `{ online: boolean }` object. */
  | 'invalid';

export class PeerTracker {
  readonly #peers: ReadonlySet<string>;
  readonly #offline = new Set<string>();
  /** Peers whose state said offline; `#offline` also holds peers on an unreachable broker. */
  readonly #stateOffline = new Set<string>();
  readonly #unreachable = new Set<string>();

  /**
   * @param selfId this call manager's id (never tracked)
   * @param groupIds every group member's id
   */
  constructor(selfId: string, groupIds: Iterable<string>) {
    this.#peers = new Set([...groupIds].filter((id) => id !== selfId));
  }

  /** Peers currently offline. */
  get offline(): ReadonlySet<string> {
    return this.#offline;
  }

  /** True for a group peer whose last state was `online: false`. */
  isOffline(id: string): boolean {
    return this.#offline.has(id);
  }

  /** Apply a state message of peer `cmId`. An empty payload (retained state cleared) counts as unknown, i.e. online. */
  update(cmId: string, payload: Buffer): PeerUpdate {
    if (!this.#peers.has(cmId)) return 'ignored';
    let online: boolean;
    if (payload.length === 0) {
      online = true;
    } else {
      let v: unknown;
      try {
        v = JSON.parse(payload.toString('utf8'));
      } catch {
        return 'invalid';
      }
      if (typeof v !== 'object' || v === null || typeof (v as { online?: unknown }).online !== 'boolean') return 'invalid';
      online = (v as { online: boolean }).online;
    }
    if (online) this.#stateOffline.delete(cmId);
    else this.#stateOffline.add(cmId);
    return this.#recompute(cmId) ? 'changed' : 'same';
  }

  /**
   * Peers whose broker this call manager cannot reach count as offline: phones
   * could not reach them either. Returns true when the offline set changed.
   */
  setUnreachable(ids: Iterable<string>, unreachable: boolean): boolean {
    let changed = false;
    for (const id of ids) {
      if (!this.#peers.has(id)) continue;
      if (unreachable) this.#unreachable.add(id);
      else this.#unreachable.delete(id);
      changed = this.#recompute(id) || changed;
    }
    return changed;
  }

  #recompute(id: string): boolean {
    const off = this.#stateOffline.has(id) || this.#unreachable.has(id);
    if (off === this.#offline.has(id)) return false;
    if (off) this.#offline.add(id);
    else this.#offline.delete(id);
    return true;
  }
}
