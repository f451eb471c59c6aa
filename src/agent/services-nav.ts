/**
 * Fetching a page the user chose (a menu item's URL) with the same failover
 * as the top services page: a link on one of the pointers' services servers —
 * under its services URL or beside it in its directory (services-url.ts) — is
 * tried there first, then at the same place relative to the other pointers'
 * services URLs — the home, then the pointers after it, wrapping, as
 * ServicesController orders the top page — until one answers with a page the
 * phone can show. An external link is fetched once, as before.
 *
 * What fails over (see {@link failsOver}): a time-out, a network error
 * (refused, reset, cut short), HTTP 5xx, 408 and 429 — the server is down or
 * overloaded — and a 200 whose body is not a Cisco XML object the phone can
 * show (malformed, unknown root, too large): a half-up server or a proxy's
 * error page is no answer. Other 4xx do not: a live server said no, and
 * asking its backup would show a page the home refused.
 *
 * A pointer that failed a navigation is tried last for `downMs` (its failures
 * are remembered here): with the home hanging, each further choice costs no
 * time-out, as the top page, once on a backup, stays there until a retry.
 */
import type { Clock } from '../lib/clock.js';
import { IpphoneError, errorMessage, isIpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Pointer } from '../protocol/types.js';
import { parseCiscoXml } from '../ui/cisco-xml.js';
import type { ServicesFetcher } from './ports.js';
import { ownerOf, placeOn } from './services-url.js';

/** A page fetched for a navigation. */
export interface FetchedPage {
  xml: string;
  /** The URL it was fetched from (relative links in it resolve against this). */
  url: string;
  /** Id of the pointer that answered, or null for an external link. */
  source: string | null;
  /** Pointers that failed before it, in order. */
  failed: string[];
}

export interface ServicesNavOptions {
  phoneId: string;
  fetch: ServicesFetcher;
  clock: Clock;
  log: Logger;
  /** Per-fetch deadline, ms. */
  timeoutMs: number;
  /** The pointer list and home now (the agent's state). */
  pointers(): { list: readonly Pointer[]; home: string | null };
  /** How long a pointer that failed a navigation is tried last, ms (default 10 000). */
  downMs?: number;
}

/** Whether a failed fetch (or an unusable page) should be retried on the next pointer. */
export function failsOver(err: unknown): boolean {
  if (!isIpphoneError(err)) return true;
  switch (err.code) {
    case 'CONFIG_INVALID':
      return false;
    case 'TRANSPORT': {
      const status = err.context?.status;
      if (typeof status !== 'number') return true;
      return status >= 500 || status === 408 || status === 429;
    }
    default:
      return true;
  }
}

/** Candidate order for a link owned by `owner`: it first, then the home, the pointers after it, wrapping. */
export function candidateOrder(list: readonly Pointer[], home: string | null, owner: string): Pointer[] {
  const i = Math.max(0, list.findIndex((p) => p.id === home));
  const ring = [...list.slice(i), ...list.slice(0, i)];
  const first = ring.find((p) => p.id === owner);
  return first === undefined ? ring : [first, ...ring.filter((p) => p.id !== owner)];
}

export class ServicesNavigator {
  readonly #o: ServicesNavOptions;
  /** Pointer id → monotonic ms of its last navigation failure (cleared by a success). */
  readonly #down = new Map<string, number>();

  constructor(opts: ServicesNavOptions) {
    this.#o = opts;
  }

  setTimeout(timeoutMs: number): void {
    this.#o.timeoutMs = timeoutMs;
  }

  /** The pointers to try for `url` in order, and the same page on each; null for an external link. */
  plan(url: string): Array<{ pointer: Pointer; url: string }> | null {
    const { list, home } = this.#o.pointers();
    const owner = ownerOf(url, list);
    if (owner === null) return null;
    const now = this.#o.clock.elapsed();
    const downMs = this.#o.downMs ?? 10_000;
    const isDown = (p: Pointer): boolean => {
      const at = this.#down.get(p.id);
      return at !== undefined && now - at < downMs;
    };
    const order = candidateOrder(list, home, owner.pointer.id);
    return [...order.filter((p) => !isDown(p)), ...order.filter(isDown)].map((p) => ({
      pointer: p,
      url: p.id === owner.pointer.id ? url : placeOn(owner, p.services),
    }));
  }

  /**
   * Fetch the page at `url`, failing over as the module says.
   * @throws the last fetch's error when no candidate answered with a usable page.
   */
  async fetch(url: string): Promise<FetchedPage> {
    const o = this.#o;
    const plan = this.plan(url);
    if (plan === null) {
      const xml = await o.fetch(url, o.phoneId, o.timeoutMs);
      return { xml, url, source: null, failed: [] };
    }
    const failed: string[] = [];
    let last: unknown = new IpphoneError('services link has no candidate server', 'TRANSPORT', { url });
    for (const { pointer, url: target } of plan) {
      try {
        const xml = await o.fetch(target, o.phoneId, o.timeoutMs);
        parseCiscoXml(xml);
        this.#down.delete(pointer.id);
        if (failed.length > 0) o.log.info({ url, from: pointer.id, failed }, 'services page failed over');
        return { xml, url: target, source: pointer.id, failed };
      } catch (err) {
        last = err;
        o.log.warn({ pointer: pointer.id, url: target, err: errorMessage(err) }, 'services page fetch failed');
        if (!failsOver(err)) throw err;
        this.#down.set(pointer.id, o.clock.elapsed());
        failed.push(pointer.id);
      }
    }
    throw last;
  }
}
