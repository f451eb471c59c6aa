/**
 * Which peers of the group are online, from their verified `P/cm/{id}/state`
 * messages (peer-liveness.ts). A peer whose state was never seen counts as
 * online (a group comes up one CM at a time; its will marks it offline when it
 * dies). Pure.
 */

export type PeerUpdate =
  /** The offline set changed. */
  | 'changed'
  /** Valid state, nothing changed. */
  | 'same'
  /** Not a group peer (or this CM itself). */
  | 'ignored';

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

  /** True for a group peer (not this call manager, not a stranger). */
  has(cmId: string): boolean {
    return this.#peers.has(cmId);
  }

  /**
   * Apply the verified state of peer `cmId` (peer-liveness.ts judges the
   * message first: a refused one never reaches this).
   */
  update(cmId: string, online: boolean): PeerUpdate {
    if (!this.#peers.has(cmId)) return 'ignored';
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
