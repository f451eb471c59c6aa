/**
 * `services-relative` (CONTRACT.md, "Behaviour that tests observe", the
 * services rule): when a page's services server times out, the phone fetches
 * the page from the next pointer's services URL, and so does every page
 * reached from it — at the same place relative to the next pointers' services
 * URLs. This checker judges the pages reached from a services page (links
 * under or beside a services URL, src/agent/services-url.ts), from what the
 * services servers see (src/sim/services.ts records every request as it
 * leaves the phone's path) and the world's truth, never from the navigator's
 * code:
 *
 * - *safety*: a request sent at the instant a request of the same phone for a
 *   page (not a top page) failed over — timed out, refused, cut short — for
 *   the same place on another server is sent to a server that is a pointer of
 *   the phone (in a list it held since the chain could have begun): never to
 *   a server that is not;
 * - *liveness*: after such a failure at time t, when some other pointer of the
 *   phone (in the list it held, unchanged, all through) has answered services
 *   and the phone's path to it has been whole from `t − window` to
 *   `t + window`, and the phone's process ran all through, some request of the
 *   phone for that same place was answered (a page or a 404: a live server's
 *   word) within `window` of t. `window` = pointers × the longest services
 *   deadline + 1000 ms (the chain tries every pointer once, each within its
 *   deadline; links ≤ 30 ms each way, the server's 2..40 ms, and the checker's
 *   sampling), the same `servicesWindowMs` the services part of
 *   `no-forged-effect` uses. The healthy pointer must have been healthy since
 *   before the chain could have begun: a chain that tried it while it failed
 *   ends without it.
 */
import { ownerOf, type ServicesPlace } from '../agent/services-url.js';
import type { Pointer } from '../protocol/types.js';
import type { PhoneHost } from './hosts.js';
import type { FetchRecord } from './services.js';

interface Pending {
  phone: string;
  place: string;
  server: string;
  at: number;
  /** The phone's process run (its boot time) when the failure happened. */
  boot: number | null;
  /** Pointers (other than the failed server) that were healthy since `at − window` and the list then. */
  healthy: string[];
  listKey: string;
}

export class ServicesRelative {
  readonly #servers: Pointer[];
  /** Per cm: since when its services server has answered continuously. */
  readonly #answerSince = new Map<string, number>();
  /** Per phone: the list it holds (ids joined) and since when, and the lists it held within the window. */
  readonly #list = new Map<string, { key: string; ids: string[]; since: number; recent: { ids: string[]; until: number }[] }>();
  /** Per phone: the failed-over requests at the instant they failed (place, server). */
  readonly #failedAt = new Map<string, { at: number; place: string; server: string }[]>();
  readonly #pending: Pending[] = [];
  /** Failures judged by the liveness rule and found answered in time (figures). */
  judged = 0;
  /** Per phone × place: when a request for it was last answered. */
  readonly #answered = new Map<string, number>();

  constructor(
    servers: readonly { id: string; broker: string; services: string }[],
    readonly phones: Map<string, PhoneHost>,
    readonly windowMs: number,
    readonly answers: (cm: string) => boolean,
    readonly wholeSince: (phone: string, cm: string) => number,
    readonly violate: (detail: string) => void,
    readonly counted: () => void,
  ) {
    this.#servers = servers.map((s) => ({ id: s.id, broker: s.broker, services: s.services }));
  }

  /** The server and the place of a request's URL; null for an address of no services server. */
  #where(url: string): { server: string; place: string; top: boolean } | null {
    const o = ownerOf(url, this.#servers);
    if (o === null) return null;
    const p: ServicesPlace = o;
    return { server: o.pointer.id, place: `${p.how} ${p.rest}`, top: p.how === 'under' && p.rest === '' };
  }

  /** Every request and its end (services.ts `observers`). */
  onFetch(r: FetchRecord, now: number): void {
    const w = this.#where(r.url);
    if (w === null || w.top) return;
    if (r.outcome === undefined) {
      // A request leaving the phone: is it a failover hop (the same instant a request for the same place failed over)?
      const hops = (this.#failedAt.get(r.phone) ?? []).filter((f) => f.at === now && f.place === w.place && f.server !== w.server);
      if (hops.length === 0) return;
      this.counted();
      const held = this.#heldWithin(r.phone, now - this.windowMs);
      if (!held.has(w.server)) this.violate(`${r.phone} fetched ${r.url} from ${w.server}, not a pointer of its (lists held: ${[...held].join(',') || 'none'}), after ${hops[0]!.server} failed at the same place`);
      return;
    }
    if (r.outcome === 'answered') {
      this.#answered.set(`${r.phone} ${w.place}`, now);
      return;
    }
    const list = this.#failedAt.get(r.phone) ?? [];
    this.#failedAt.set(r.phone, [...list.filter((f) => f.at === now), { at: now, place: w.place, server: w.server }]);
    const l = this.#list.get(r.phone);
    const p = this.phones.get(r.phone);
    if (l === undefined || p === undefined || p.agent === null) return;
    const from = now - this.windowMs;
    const healthy = l.ids.filter((id) => id !== w.server && l.since <= from && (this.#answerSince.get(id) ?? Infinity) <= from && this.wholeSince(r.phone, id) <= from);
    if (healthy.length === 0) return;
    this.#pending.push({ phone: r.phone, place: w.place, server: w.server, at: now, boot: p.bootedAt, healthy, listKey: l.key });
  }

  /** The pointer ids the phone held at any time since `from`. */
  #heldWithin(phone: string, from: number): Set<string> {
    const l = this.#list.get(phone);
    if (l === undefined) return new Set();
    return new Set([...l.ids, ...l.recent.filter((x) => x.until >= from).flatMap((x) => x.ids)]);
  }

  /** After every event: sample the truth, judge what is due. */
  tick(now: number): void {
    for (const s of this.#servers) {
      if (!this.answers(s.id)) this.#answerSince.delete(s.id);
      else if (!this.#answerSince.has(s.id)) this.#answerSince.set(s.id, now);
    }
    for (const [id, p] of this.phones) {
      const ids = p.agent === null || (p.agent.state as unknown) === undefined ? [] : p.agent.state.list.map((x) => x.id);
      const key = `${p.bootedAt ?? '-'} ${ids.join(',')}`;
      const l = this.#list.get(id);
      if (l === undefined) this.#list.set(id, { key, ids, since: now, recent: [] });
      else if (l.key !== key) this.#list.set(id, { key, ids, since: now, recent: [...l.recent.filter((x) => x.until >= now - 2 * this.windowMs), { ids: l.ids, until: now }] });
    }
    for (let i = this.#pending.length - 1; i >= 0; i--) {
      const q = this.#pending[i]!;
      const p = this.phones.get(q.phone)!;
      const l = this.#list.get(q.phone)!;
      const stillHealthy = q.healthy.filter((id) => this.answers(id) && this.wholeSince(q.phone, id) <= q.at - this.windowMs);
      // Not judged: the phone's process ended, its list changed, or no pointer stayed healthy all through.
      if (p.agent === null || p.bootedAt !== q.boot || l.key !== q.listKey || stillHealthy.length === 0) {
        this.#pending.splice(i, 1);
        continue;
      }
      q.healthy = stillHealthy;
      const got = this.#answered.get(`${q.phone} ${q.place}`);
      if (got !== undefined && got >= q.at) {
        this.#pending.splice(i, 1);
        this.counted();
        this.judged++;
        continue;
      }
      if (now - q.at > this.windowMs) {
        this.#pending.splice(i, 1);
        this.counted();
        this.violate(`${q.phone}: its request for the page at ${q.place} on ${q.server} failed at ${q.at} ms, and no request for that place was answered within ${this.windowMs} ms though ${stillHealthy.join(',')} answered services and was reachable all through`);
      }
    }
  }
}
