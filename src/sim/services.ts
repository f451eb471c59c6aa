/**
 * Services HTTP servers and users navigating them (issue 16: "services
 * navigation"). Each call manager's services URL is a small Cisco IP Phone
 * XML site: a top menu whose items are a page beside it in its directory, a
 * page under it, an absolute link beside it, a link the server answers 404
 * to, and a page one level further down. Phones fetch through the real
 * agent's paths: the top page by ServicesController (services.ts, failing over
 * with `services-timeout`), chosen items by PhoneUi → ServicesNavigator
 * (services-nav.ts, services-url.ts), the keys pressed on a {@link SimKeypad}.
 *
 * Ground truth: a call manager's services server answers while its process
 * runs and is not paused ({@link servicesAnswer}). The model follows it: a
 * request reaching a dead process is refused (the host's kernel sends RST),
 * one reaching a paused process waits on it (and times out at the phone's
 * deadline unless it resumes first), and an answer is sent 2..40 ms after the
 * request arrived, over a link of 1..maxDelay ms each way. A planted world
 * defect (`deafServices`) makes one server stop answering while the truth says
 * it answers: the checkers must catch the phone that then leaves it.
 */
import { IpphoneError } from '../lib/errors.js';
import type { Keypad } from '../hw/types.js';
import type { CmHost } from './hosts.js';
import type { ProcessClock } from './clock.js';
import type { CmSpec, Topology } from './group.js';
import { allCms } from './group.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

/** Whether a call manager's services server answers now (the world's ground truth, the checkers' too). */
export function servicesAnswer(h: CmHost | undefined): boolean {
  return h !== undefined && h.alive && !h.host.paused;
}

/** Keys a {@link SimKeypad} can be pressed with by the workload. */
export class SimKeypad implements Keypad {
  #fns: ((key: string) => void)[] = [];
  async start(): Promise<void> {}
  onKey(fn: (key: string) => void): void {
    this.#fns.push(fn);
  }
  press(key: string): void {
    for (const fn of this.#fns) fn(key);
  }
  /** A new boot registers its handler afresh. */
  reset(): void {
    this.#fns = [];
  }
  async close(): Promise<void> {}
}

const esc = (s: string): string => s.replaceAll('&', '&amp;').replaceAll('<', '&lt;');

function menu(title: string, items: [string, string][]): string {
  return `<CiscoIPPhoneMenu><Title>${esc(title)}</Title>${items.map(([n, u]) => `<MenuItem><Name>${esc(n)}</Name><URL>${esc(u)}</URL></MenuItem>`).join('')}</CiscoIPPhoneMenu>`;
}

function text(title: string, body: string): string {
  return `<CiscoIPPhoneText><Title>${esc(title)}</Title><Text>${esc(body)}</Text></CiscoIPPhoneText>`;
}

/**
 * The page a call manager's services server gives for `url`, or null (404).
 * The top page is its services URL; the others live beside it (its
 * directory) or under it, as a CUCM-style layout does.
 */
export function servicesPage(cm: CmSpec, url: string): string | null {
  const base = new URL(cm.services);
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    return null;
  }
  if (u.origin !== base.origin) return null;
  const dir = base.pathname.slice(0, base.pathname.lastIndexOf('/') + 1);
  const path = u.pathname;
  if (path === base.pathname) {
    return menu(`${cm.id} services`, [
      ['Directory', 'xmldirectory.jsp'],
      ['News', `${base.pathname}/news`],
      ['Weather', `${base.origin}${dir}weather.jsp?city=${cm.id}`],
      ['Retired', 'retired.jsp'],
    ]);
  }
  if (path === `${dir}xmldirectory.jsp`) {
    return u.search === '?page=2' ? text(`${cm.id} directory 2`, 'more people') : menu(`${cm.id} directory`, [['More', 'xmldirectory.jsp?page=2']]);
  }
  if (path === `${base.pathname}/news`) return text(`${cm.id} news`, 'nothing new');
  if (path === `${dir}weather.jsp`) return text(`${cm.id} weather`, `fine in ${u.searchParams.get('city') ?? '?'}`);
  return null;
}

/** A services request as it leaves the phone's path (`outcome` absent), and again when it ends (services-relative.ts). */
export interface FetchRecord {
  phone: string;
  url: string;
  /** `answered`: a page or an HTTP error status (a live server's word); `failed`: timed out, refused or cut short (what fails over). */
  outcome?: 'answered' | 'failed';
}

/**
 * A services server of the world that no phone's list names (an old site's, a lab's): its pages sit
 * at the same places as the group's; the services-relative checker knows it, so a request reaching it
 * is judged. Nothing routes there but the plant `stray-services`.
 */
export const STRAY_SERVICES = { id: 'cm-z', broker: 'mqtt://10.0.8.1:1883', services: 'http://10.0.8.11:8080/ccmcip/menu.jsp' } as const;

/** The group's services servers as phones reach them. */
export class ServicesWorld {
  /** Told of every request and its end (the services-relative checker). */
  readonly observers: ((r: FetchRecord) => void)[] = [];
  /**
   * Planted (`misplaced-nav`): a proxy in the phones' path that sends every request for a page other
   * than a top page to a server other than `keep` to that server's top page (it drops the path).
   */
  misplace: { keep: string } | null = null;
  /**
   * Planted (`stray-services`): a proxy in the phones' path that sends every request for a page other
   * than a top page, to a server other than `keep`, to the same place on {@link STRAY_SERVICES}, a
   * services server no list of the phones names (it answers nothing: the phone's deadline ends it).
   */
  stray: { keep: string } | null = null;
  /** Planted: servers that stop answering although their process runs and the truth says they answer (`deaf-services`). */
  readonly deaf = new Set<string>();
  /** Servers in an outage now: the HTTP server hangs while the rest of its call manager runs (part of the truth). */
  readonly outage = new Set<string>();
  /**
   * Phone ↔ services server paths cut now (`phone cm`), apart from the phone's broker link
   * (a firewall rule, a proxy between the phone and the web server): a request or an
   * answer crossing a cut path is lost without RST, so the phone's deadline ends it.
   */
  readonly cut = new Set<string>();
  /** When each path was last cut or healed (ms): see {@link wholeSince}. */
  readonly #cutChanged = new Map<string, number>();
  /** Requests answered, refused, timed out (figures, tests). */
  answered = 0;
  failed = 0;
  readonly #specs: CmSpec[];

  constructor(
    readonly world: World,
    readonly cms: Map<string, CmHost>,
    topo: Topology,
    readonly rng: Rng,
    readonly maxDelayMs: number,
  ) {
    this.#specs = allCms(topo);
  }

  /** The truth the checkers judge by: the process runs, is not paused, and its HTTP server is not in an outage. */
  answers(cm: string): boolean {
    return servicesAnswer(this.cms.get(cm)) && !this.outage.has(cm);
  }

  /**
   * 0..2 services outages between 5 s and 110 s, 2..30 s each, on any call
   * manager: its HTTP server stops answering (an overloaded or hung web
   * container) while it keeps serving keep-alives. Not a contract fault kind
   * (the schedule of those is drawn elsewhere and stays as it was); it is what
   * makes `services-timeout` happen apart from a dead process.
   */
  scheduleOutages(): void {
    const r = this.rng;
    const n = r.int(0, 2);
    for (let i = 0; i < n; i++) {
      const cm = r.pick(this.#specs).id;
      const at = r.int(5_000, 110_000);
      const len = r.int(2_000, 30_000);
      this.world.at(at, () => {
        if (this.outage.has(cm)) return;
        this.outage.add(cm);
        this.world.trace(`${cm} services outage`);
        this.world.after(len, () => {
          this.outage.delete(cm);
          this.world.trace(`${cm} services answer again`);
        });
      });
    }
  }

  /** Since when the path from `phone` to `cm`'s services server has been whole (Infinity while cut; -Infinity: never cut). */
  wholeSince(phone: string, cm: string): number {
    const k = `${phone} ${cm}`;
    return this.cut.has(k) ? Infinity : (this.#cutChanged.get(k) ?? -Infinity);
  }

  /**
   * 0..2 cuts of one phone's path to one services server between 5 s and 110 s,
   * 2..30 s each (fork `http-cuts`): the phone keeps its broker link and its
   * home, only its services fetches there fail — a services move the checkers
   * must tell from a forged one.
   */
  scheduleCuts(rng: Rng, phones: readonly string[]): void {
    const n = rng.int(0, 2);
    for (let i = 0; i < n; i++) {
      const phone = rng.pick(phones);
      const cm = rng.pick(this.#specs).id;
      const at = rng.int(5_000, 110_000);
      const len = rng.int(2_000, 30_000);
      const k = `${phone} ${cm}`;
      this.world.at(at, () => {
        if (this.cut.has(k)) return;
        this.cut.add(k);
        this.#cutChanged.set(k, this.world.now);
        this.world.trace(`${phone} services path to ${cm} cut`);
        this.world.after(len, () => {
          this.cut.delete(k);
          this.#cutChanged.set(k, this.world.now);
          this.world.trace(`${phone} services path to ${cm} healed`);
        });
      });
    }
  }

  /** The URL the planted proxy sends `url` to (itself without the plant). */
  #proxied(url: string): string {
    if (this.stray !== null) {
      const s = this.#serverOf(url);
      if (s !== undefined && s.id !== this.stray.keep && url !== s.services) return new URL(url.slice(new URL(s.services).origin.length), new URL(STRAY_SERVICES.services).origin).href;
    }
    const cm = this.misplace === null ? undefined : this.#serverOf(url);
    if (cm === undefined || cm.id === this.misplace!.keep || url === cm.services) return url;
    return cm.services;
  }

  #serverOf(url: string): CmSpec | undefined {
    let origin: string;
    try {
      origin = new URL(url).origin;
    } catch {
      return undefined;
    }
    return this.#specs.find((c) => new URL(c.services).origin === origin);
  }

  /**
   * The agent's ServicesFetcher for a phone whose process runs on `clock`:
   * resolves with the page, or rejects as http-services.ts does (TRANSPORT
   * with the status for a 404, TRANSPORT for a refused connection, TIMEOUT at
   * the deadline). Nothing settles once the phone's process is gone.
   */
  fetch(clock: ProcessClock, phone: string, asked: string, timeoutMs: number): Promise<string> {
    const url = this.#proxied(asked);
    for (const o of this.observers) o({ phone, url });
    return new Promise<string>((resolve, reject) => {
      let settled = false;
      const settle = (err: IpphoneError | null, page?: string): void => {
        if (settled || clock.dead) return;
        settled = true;
        const answered = err === null || typeof err.context?.status === 'number';
        for (const o of this.observers) o({ phone, url, outcome: answered ? 'answered' : 'failed' });
        if (err === null) {
          this.answered++;
          resolve(page!);
        } else {
          this.failed++;
          reject(err);
        }
      };
      const ctx = { url };
      this.world.after(timeoutMs, () => settle(new IpphoneError(`services request got no complete answer within ${timeoutMs} ms`, 'TIMEOUT', { ...ctx, timeoutMs })));
      const cm = this.#serverOf(url);
      const there = this.rng.int(1, this.maxDelayMs);
      this.world.after(there, () => {
        const h = cm === undefined ? undefined : this.cms.get(cm.id);
        // No such host answers at all (an address outside the group), or the path is cut: the deadline decides.
        if (cm === undefined || h === undefined || this.cut.has(`${phone} ${cm.id}`)) return;
        if (!h.alive) {
          this.world.trace(`${phone} services ${cm.id} refused`);
          this.world.after(this.rng.int(1, this.maxDelayMs), () => settle(new IpphoneError('services request failed: connect ECONNREFUSED', 'TRANSPORT', ctx)));
          return;
        }
        // An outage (or the planted deaf server) answers nothing: the phone's deadline decides.
        if (this.deaf.has(cm.id) || this.outage.has(cm.id)) return;
        const work = this.rng.int(2, 40);
        const back = this.rng.int(1, this.maxDelayMs);
        // Handled by the call manager's process: held while it is paused, lost if it dies meanwhile (RST).
        this.world.after(work, () =>
          h.host.run(() => {
            if (this.outage.has(cm.id)) return;
            if (!h.alive) {
              this.world.after(back, () => settle(new IpphoneError('services request failed: socket hang up', 'TRANSPORT', ctx)));
              return;
            }
            const page = servicesPage(cm, url);
            // An answer sent over a cut path is lost too.
            if (this.cut.has(`${phone} ${cm.id}`)) return;
            this.world.after(back, () => (page === null ? settle(new IpphoneError('services request answered HTTP 404', 'TRANSPORT', { ...ctx, status: 404 })) : settle(null, page)));
          }),
        );
      });
    });
  }
}

/**
 * The navigation workload: every phone's user presses a key every 3..25 s
 * until `until` — a menu item's number (1..4, the fourth a 404) most of the
 * time, `*` (back) otherwise. Drawn from its own fork, so the other workloads
 * keep their draws.
 */
export function navigate(world: World, rng: Rng, phones: Iterable<{ agent: unknown; keypad: SimKeypad }>, until: number): void {
  for (const p of phones) {
    for (let t = rng.int(3_000, 25_000); t < until; t += rng.int(3_000, 25_000)) {
      const key = rng.chance(0.75) ? String(rng.int(1, 4)) : '*';
      world.at(t, () => {
        if (p.agent !== null) p.keypad.press(key);
      });
    }
  }
}
