/**
 * What the phone shows and how its keys act: the status row (home call
 * manager, or no service), the services page (Cisco IP Phone XML) navigated
 * with the keypad, and a short notice when the phone rehomes. Wraps the pure
 * ScreenController (src/ui/) with the display, the keypad and the fetcher.
 *
 * A chosen item's page fails over as the top page does (ServicesNavigator):
 * when a server other than the home answers — for the top page or any page
 * under it — the screen says so with a notice, `From cm-b`, in the style of
 * the rehome notice, and the page's own relative links resolve against the
 * server that gave it.
 */
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Display, Keypad } from '../hw/types.js';
import { ScreenController } from '../ui/screen-controller.js';
import type { Pointer } from '../protocol/types.js';
import type { ServicesFetcher } from './ports.js';
import { ServicesNavigator } from './services-nav.js';

/** How long a rehome notice stays on screen (ms). */
export const NOTICE_MS = 4000;

export interface PhoneUiOptions {
  display: Display;
  keypad: Keypad | null;
  clock: Clock;
  log: Logger;
  phoneId: string;
  fetch: ServicesFetcher;
  timeoutMs: number;
  /** The pointer list and home now; without it every link is fetched as is, without failover. */
  pointers?: () => { list: readonly Pointer[]; home: string | null };
}

/** The notice naming the server that gave a page, when it is not the home. */
export function fromNotice(source: string): string {
  return `From ${source}`;
}

export class PhoneUi {
  readonly #o: PhoneUiOptions;
  readonly #screen: ScreenController;
  readonly #nav: ServicesNavigator;
  /** Sequence of the latest navigation; an older one's answer is dropped. */
  #navSeq = 0;
  #closed = false;

  constructor(opts: PhoneUiOptions) {
    this.#o = opts;
    this.#screen = new ScreenController({
      cols: opts.display.cols,
      rows: opts.display.rows,
      clock: opts.clock,
      charset: opts.display.charset ?? 'ascii',
      onChange: () => this.#draw(),
    });
    this.#nav = new ServicesNavigator({
      phoneId: opts.phoneId,
      fetch: opts.fetch,
      clock: opts.clock,
      log: opts.log,
      timeoutMs: opts.timeoutMs,
      pointers: opts.pointers ?? (() => ({ list: [], home: null })),
    });
  }

  start(): void {
    this.#o.keypad?.onKey((k) => this.#key(k));
    this.#draw();
  }

  /** Row 0: the home call manager, or that there is no service. */
  status(home: string | null, phase: string): void {
    this.#screen.setStatus(home !== null ? `CM ${home}${phase === 'moving' ? ' >' : ''}` : phase === 'starting' ? 'Starting...' : 'No service');
    this.#draw();
  }

  /**
   * A top services page arrived from pointer `source`, fetched from `url`.
   * A bad page is logged; the screen keeps the last good one. A page from
   * another pointer than the home puts up a {@link fromNotice}.
   */
  page(xml: string, source: string, url: string | null = null): void {
    const before = this.#screen.current?.source;
    try {
      this.#screen.setPage(xml, source, url);
      if (source !== before && source !== this.#home()) this.#screen.notice(fromNotice(source), NOTICE_MS);
    } catch (err) {
      this.#o.log.warn({ source, err: errorMessage(err) }, 'services page not shown');
    }
    this.#draw();
  }

  /** New per-fetch deadline (remote reconfiguration), ms. */
  setTimeout(timeoutMs: number): void {
    this.#o.timeoutMs = timeoutMs;
    this.#nav.setTimeout(timeoutMs);
  }

  #home(): string | null {
    return this.#o.pointers?.().home ?? null;
  }

  notice(text: string): void {
    this.#screen.notice(text, NOTICE_MS);
    this.#draw();
  }

  /** The lines on screen now (for tests and the status). */
  lines(): string[] {
    return this.#screen.lines();
  }

  close(): void {
    this.#closed = true;
    this.#screen.close();
  }

  #key(k: string): void {
    const req = this.#screen.key(k);
    this.#draw();
    if (req === null) return;
    const seq = ++this.#navSeq;
    const o = this.#o;
    this.#nav.fetch(req.fetch).then(
      (got) => {
        if (this.#closed || seq !== this.#navSeq) return;
        // An external page keeps the source of the page it was chosen on.
        const source = got.source ?? req.source;
        try {
          if (!this.#screen.setChildPage(got.xml, source, got.url)) return;
          if (got.source !== null && (got.failed.length > 0 || got.source !== this.#home())) this.#screen.notice(fromNotice(got.source), NOTICE_MS);
        } catch (err) {
          o.log.warn({ url: got.url, err: errorMessage(err) }, 'services page not shown');
          this.#screen.notice('Not available', NOTICE_MS);
        }
        this.#draw();
      },
      (err: unknown) => {
        if (seq !== this.#navSeq) return;
        this.#screen.cancelNavigation();
        o.log.warn({ url: req.fetch, err: errorMessage(err) }, 'services item fetch failed');
        if (!this.#closed) this.notice('Not available');
      },
    );
  }

  #draw(): void {
    if (!this.#closed) this.#o.display.show(this.#screen.lines());
  }
}
