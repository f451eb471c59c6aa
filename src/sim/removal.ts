/**
 * `removed-gone` (docs/simulation.md): a member removed from the group leaves
 * the phones' lists. README: "a changed group reaches every phone"; the
 * product's way is the config's `retired` (src/callmanager/retired.ts): every
 * list a member restarted with it signs names the removed id in `owns` and
 * leaves it out, so the phone's merge drops it and keeps the remote site's.
 *
 * Judged per phone from the contract, not the code: once a phone has been
 * homed for the bound on a member whose running process started after the
 * operator's edit that retires the id, the list it holds does not name that id.
 * A phone homed on the remote site (its lists own only `cm-r`) or nowhere is
 * not judged: nothing of the group speaks to it. Nor is one whose wall clock
 * runs half a list lifetime (12 h) or more ahead of its home's: the lists it is
 * signed (`expires`, list-book.ts LIST_LIFETIME_MS) may have expired by its
 * clock, and it rightly refuses them (seed 22: a phone's clock stepped +30 h);
 * the bound runs again from when the clocks agree.
 *
 * The bound runs from the end of the rolling restart: every member of the new
 * group runs a process started after its edit. Before that a member still
 * running the old group signs lists naming the removed id at versions above the
 * floor of one already restarted; the members' signed states announce their
 * group digest and floor, and a member takes a peer's higher floor for the same
 * group (group-floor.ts; seed 600,012, once a known gap), so after the last
 * restart every member's floor is above every old-group list. The bound adds
 * the last state's delivery to its peers ({@link RemovalChecker} `stateMs`).
 * An operator's list naming the member, sent before the removal, stays
 * exempt while the phone holds it at or above its home's floor: it is the
 * operator's word, signed by the operator's clock, which no member observes
 * unless a phone reports it before the restart; the operator replaces it.
 */
import { LIST_LIFETIME_MS } from '../callmanager/list-book.js';
import type { CmHost, PhoneHost } from './hosts.js';
import { REACHABLE_AHEAD_MS } from './rebalance.js';

export class RemovalChecker {
  /** The removed id, and per member when the operator's edit retiring it was written (sim ms). */
  #removed: string | null = null;
  readonly #editedAt = new Map<string, number>();
  /** `phone version` of lists the operator signed (a pointers push, a config that sets `pointers`) before the removal. */
  readonly #operatorLists = new Set<string>();
  /** When every member of the new group first ran a process started after its edit (sampled), or null. */
  #restartOverAt: number | null = null;
  /** The members of the new group (every one is edited and restarted), set with the removal's plan. */
  newGroup: readonly string[] = [];
  /** Per phone: its home and since when, as last sampled. */
  readonly #homed = new Map<string, { home: string | null; since: number }>();
  checks = 0;

  constructor(
    readonly now: () => number,
    readonly cms: Map<string, CmHost>,
    readonly phones: Map<string, PhoneHost>,
    /** From when a phone homed on an edited member holds the new list: `round` + 2000 ms. */
    readonly boundMs: number,
    readonly violate: (detail: string) => void,
    /** A started member's signed state reaches its peers within this (ms): its connection and two crossings. */
    readonly stateMs = 0,
  ) {}

  /** The operator's edit: `cm`'s config file now retires `removed` (it applies at its next start). */
  edited(cm: string, removed: string): void {
    this.#removed = removed;
    this.#editedAt.set(cm, this.now());
  }

  /**
   * A list was published (a push, or an ack carrying one) for `phone`: noted when the
   * operator signed it (`cm` is no call manager). An operator's list naming the member was
   * sent before the removal (after it, the operator leaves it out).
   */
  onList(cm: string, phone: string, envelope: unknown): void {
    if (this.cms.has(cm)) return;
    try {
      const body = JSON.parse(Buffer.from((envelope as { body: string }).body, 'base64').toString('utf8')) as { version?: unknown };
      if (typeof body.version === 'number') this.#operatorLists.add(`${phone} ${body.version}`);
    } catch {
      // Not a list: nothing to note.
    }
  }

  /**
   * An operator's config that sets `pointers` was published for `phone` (before the removal: after it the
   * operator leaves the member out). The phone takes them as an admin list at its held version + 1
   * (agent.ts), so that version is noted, as an operator's list is, once the phone holds it.
   */
  onConfigPointers(phone: string, ids: readonly string[]): void {
    this.#configLists.add(`${phone} ${ids.join()}`);
  }

  readonly #configLists = new Set<string>();
  readonly #lastVersion = new Map<string, number>();

  tick(): void {
    for (const [pid, p] of this.phones) {
      if (p.agent === null || (p.agent.state as unknown) === undefined) continue;
      const v = p.agent.state.listVersion;
      const last = this.#lastVersion.get(pid);
      if (last !== undefined && v === last + 1 && this.#configLists.has(`${pid} ${p.agent.state.list.map((x) => x.id).join()}`)) this.#operatorLists.add(`${pid} ${v}`);
      this.#lastVersion.set(pid, v);
    }
    const removed = this.#removed;
    if (removed === null) return;
    const now = this.now();
    if (this.#restartOverAt === null && this.newGroup.length > 0 && this.newGroup.every((id) => this.#editedAt.has(id) && (this.cms.get(id)?.startedAt ?? -1) >= this.#editedAt.get(id)!)) this.#restartOverAt = now;
    for (const [pid, p] of this.phones) {
      const agent = p.agent;
      const home = agent === null || (agent.state as unknown) === undefined ? null : agent.home;
      const prev = this.#homed.get(pid);
      if (prev === undefined || prev.home !== home) {
        this.#homed.set(pid, { home, since: now });
        continue;
      }
      if (home === null) continue;
      const h = this.cms.get(home);
      const edited = this.#editedAt.get(home);
      if (h === undefined || edited === undefined || h.cm === null || h.startedAt === null || h.startedAt < edited) continue;
      if (p.host.wall() >= h.host.wall() + LIST_LIFETIME_MS / 2) {
        prev.since = now;
        continue;
      }
      // Homed on a member running the edited config: from the latest of its start, the phone's arrival
      // and the end of the rolling restart (with the last member's state delivered).
      if (this.#restartOverAt === null) continue;
      const from = Math.max(prev.since, h.startedAt, this.#restartOverAt + this.stateMs);
      if (now - from <= this.boundMs) continue;
      this.checks++;
      const ids = agent!.state.list.map((x) => x.id);
      const version = agent!.state.listVersion;
      // A version no member can issue above (beyond its wall + 12 h): the phone takes no list until rebased (as converge).
      if (version > h.host.wall() + REACHABLE_AHEAD_MS) {
        prev.since = now;
        continue;
      }
      // The operator's list from before the removal, at or above the home's floor: the home gives lists only
      // to phones below its floor (group-floor.ts), the operator replaces it.
      if (ids.includes(removed) && this.#operatorLists.has(`${pid} ${version}`) && version >= (h.cm.book?.floor ?? Infinity)) {
        prev.since = now;
        continue;
      }
      if (ids.includes(removed)) {
        this.violate(`${pid} still holds removed member ${removed} in [${ids.join(',')}] v${agent!.state.listVersion}, homed on ${home} (restarted without it at ${h.startedAt} ms, floor ${h.cm.book?.floor ?? '?'}; rolling restart over at ${this.#restartOverAt} ms) for ${now - prev.since} ms (bound ${this.boundMs} ms)`);
        this.#removed = null; // one report a run
        return;
      }
    }
  }
}
