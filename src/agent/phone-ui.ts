/**
 * What the phone shows and how its keys act: the status row (home call
 * manager, or no service), the services page (Cisco IP Phone XML) navigated
 * with the keypad, and a short notice when the phone rehomes. Wraps the pure
 * ScreenController (src/ui/) with the display, the keypad and the fetcher.
 */
import type { Clock } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Display, Keypad } from '../hw/types.js';
import { ScreenController } from '../ui/screen-controller.js';
import type { ServicesFetcher } from './ports.js';

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
}

export class PhoneUi {
  readonly #o: PhoneUiOptions;
  readonly #screen: ScreenController;
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

  /** A services page arrived from pointer `source`. A bad page is logged; the screen keeps the last good one. */
  page(xml: string, source: string): void {
    try {
      this.#screen.setPage(xml, source);
    } catch (err) {
      this.#o.log.warn({ source, err: errorMessage(err) }, 'services page not shown');
    }
    this.#draw();
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
    const o = this.#o;
    o.fetch(req.fetch, o.phoneId, o.timeoutMs).then(
      (xml) => {
        if (!this.#closed) this.page(xml, req.source);
      },
      (err: unknown) => {
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
