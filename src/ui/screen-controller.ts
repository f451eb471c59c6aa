import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import { parseCiscoXml, type CiscoObject } from './cisco-xml.js';
import { menuNumberWidth, renderScreen, type Charset } from './render.js';

/**
 * What the phone's screen shows and how the keypad moves through services
 * pages. Owns no I/O: the agent feeds it the status row, the pages it
 * fetched and the keys pressed, draws {@link ScreenController.lines} on the
 * Display, and performs the fetches {@link ScreenController.key} asks for.
 *
 * Keys: digits choose a menu item by its number (menus of 10+ items take two
 * digits, `01`…; 100 items three); `*` cancels a half-typed number, else goes
 * back to the previous page, else to the first page of this one; `#` shows
 * the next page of a page that does not fit (after the last, the first).
 */

/** A fetch the agent should perform; its answer comes back through `setPage(xml, source)`. */
export interface NavigationRequest {
  /** Absolute http(s) URL of the chosen menu item (a relative one resolved against its page's URL). */
  fetch: string;
  /** `source` of the page the item was chosen on. */
  source: string;
}

export interface ScreenControllerOptions {
  /** Characters per row and rows of the display. */
  cols: number;
  rows: number;
  /** Default the system clock. */
  clock?: Clock;
  /** Default `ascii` (character LCDs); `unicode` for the terminal simulator. */
  charset?: Charset;
  /** Called when the lines change by themselves (a notice expired). Not called for changes the caller makes. */
  onChange?: () => void;
  /** ms a half-typed item number waits for its next digit before it is dropped; default 3000. */
  entryTimeoutMs?: number;
  /** Pages kept for `*` (back); default 8, the oldest is forgotten first. */
  historyLimit?: number;
  /** ms of the notice shown when a chosen item's URL is not http(s); default 3000. */
  unsupportedNoticeMs?: number;
}

interface Shown {
  obj: CiscoObject;
  source: string;
  /** The URL the page was fetched from (relative links resolve against it), or null when unknown. */
  url: string | null;
  page: number;
}

/** `href` as written in a page, resolved against the page's URL (RFC 3986); null when it is no URL. */
export function resolveHref(href: string, pageUrl: string | null): string | null {
  try {
    return (pageUrl === null ? new URL(href) : new URL(href, pageUrl)).href;
  } catch {
    return null;
  }
}

export class ScreenController {
  readonly #cols: number;
  readonly #rows: number;
  readonly #clock: Clock;
  readonly #charset: Charset;
  readonly #onChange: () => void;
  readonly #entryTimeoutMs: number;
  readonly #historyLimit: number;
  readonly #unsupportedMs: number;
  #status = '';
  #shown: Shown | null = null;
  #history: Shown[] = [];
  /** The top page's text and source, to tell a refresh that changed nothing. */
  #root: { xml: string; source: string } | null = null;
  #pending: NavigationRequest | null = null;
  #entry = '';
  #entryTimer: TimerHandle | null = null;
  #notice: { text: string; timer: TimerHandle } | null = null;

  constructor(opts: ScreenControllerOptions) {
    this.#cols = opts.cols;
    this.#rows = opts.rows;
    this.#clock = opts.clock ?? systemClock;
    this.#charset = opts.charset ?? 'ascii';
    this.#onChange = opts.onChange ?? (() => {});
    this.#entryTimeoutMs = opts.entryTimeoutMs ?? 3000;
    this.#historyLimit = opts.historyLimit ?? 8;
    this.#unsupportedMs = opts.unsupportedNoticeMs ?? 3000;
  }

  /** Text of row 0, e.g. `CM cm-a` or `No service`. */
  setStatus(line: string): void {
    this.#status = line;
  }

  /**
   * Show a services page. `source` names where it came from (the pointer id).
   * While a {@link NavigationRequest} from the same source is outstanding the
   * page is its answer: the current page goes on the back stack. Otherwise it
   * is a new top page (e.g. after a rehome) and the back stack is cleared —
   * unless it is the top page shown already, from the same source and
   * unchanged (a periodic refresh, or a retry that landed on the same
   * backup): then the user stays where they are. `url` is where the page was
   * fetched from (relative links in it resolve against it).
   * @throws IpphoneError PAYLOAD_INVALID / PAYLOAD_TOO_LARGE (see parseCiscoXml);
   *   the screen keeps what it showed, and an outstanding navigation is dropped.
   */
  setPage(xml: string, source: string, url: string | null = null): void {
    const child = this.#pending !== null && this.#pending.source === source;
    if (!child && this.#root !== null && this.#root.xml === xml && this.#root.source === source && this.#shown !== null) return;
    this.#pending = null;
    const obj = parseCiscoXml(xml);
    if (!child) this.#root = { xml, source };
    this.#clearEntry();
    if (child && this.#shown !== null) {
      this.#history.push(this.#shown);
      if (this.#history.length > this.#historyLimit) this.#history.shift();
    } else if (!child) {
      this.#history = [];
    }
    this.#shown = { obj, source, url, page: 0 };
  }

  /**
   * Show the answer to the outstanding {@link NavigationRequest}, whichever
   * server gave it (`source`, e.g. a backup after the home failed; `url`,
   * the URL it came from). The current page goes on the back stack. Returns
   * false, showing nothing, when no navigation is outstanding (a new top
   * page replaced it meanwhile).
   * @throws IpphoneError as {@link setPage}; the navigation is dropped.
   */
  setChildPage(xml: string, source: string, url: string | null): boolean {
    if (this.#pending === null) return false;
    this.#pending = null;
    const obj = parseCiscoXml(xml);
    this.#clearEntry();
    if (this.#shown !== null) {
      this.#history.push(this.#shown);
      if (this.#history.length > this.#historyLimit) this.#history.shift();
    }
    this.#shown = { obj, source, url, page: 0 };
    return true;
  }

  /** Forget an outstanding navigation (its fetch failed); the next page is a new top page. */
  cancelNavigation(): void {
    this.#pending = null;
  }

  /** The page shown, or null before the first one. */
  get current(): { obj: CiscoObject; source: string; url: string | null; page: number; depth: number } | null {
    return this.#shown === null ? null : { ...this.#shown, depth: this.#history.length };
  }

  /** Handle one key; returns the fetch to perform when a menu item was chosen. */
  key(k: string): NavigationRequest | null {
    if (k === '*') {
      if (this.#entry !== '') this.#clearEntry();
      else if (this.#history.length > 0) this.#shown = this.#history.pop()!;
      else if (this.#shown !== null) this.#shown.page = 0;
      return null;
    }
    if (k === '#') {
      this.#clearEntry();
      if (this.#shown !== null) {
        const { pages } = this.#render();
        this.#shown.page = (this.#shown.page + 1) % pages;
      }
      return null;
    }
    if (/^[0-9]$/.test(k)) return this.#digit(k);
    return null;
  }

  #digit(k: string): NavigationRequest | null {
    const shown = this.#shown;
    if (shown === null || shown.obj.kind !== 'menu') return null;
    const items = shown.obj.items;
    this.#entry += k;
    if (this.#entry.length < menuNumberWidth(items.length)) {
      if (this.#entryTimer !== null) this.#clock.clearTimeout(this.#entryTimer);
      this.#entryTimer = this.#clock.setTimeout(() => {
        this.#entryTimer = null;
        this.#entry = '';
      }, this.#entryTimeoutMs);
      return null;
    }
    const n = Number.parseInt(this.#entry, 10);
    this.#clearEntry();
    const item = items[n - 1];
    if (n < 1 || item === undefined) return null;
    const target = resolveHref(item.url, shown.url);
    if (target === null || !/^https?:\/\//i.test(target)) {
      this.notice('Not supported', this.#unsupportedMs);
      return null;
    }
    this.#pending = { fetch: target, source: shown.source };
    return { ...this.#pending };
  }

  #clearEntry(): void {
    this.#entry = '';
    if (this.#entryTimer !== null) this.#clock.clearTimeout(this.#entryTimer);
    this.#entryTimer = null;
  }

  /** Show `text` on row 1 for `ms` milliseconds (e.g. `Moved to cm-b`); a newer notice replaces it. */
  notice(text: string, ms: number): void {
    if (this.#notice !== null) this.#clock.clearTimeout(this.#notice.timer);
    const timer = this.#clock.setTimeout(() => {
      if (this.#notice?.timer !== timer) return;
      this.#notice = null;
      this.#onChange();
    }, ms);
    this.#notice = { text, timer };
  }

  #render() {
    return renderScreen(this.#shown?.obj ?? null, {
      cols: this.#cols,
      rows: this.#rows,
      status: this.#status,
      page: this.#shown?.page ?? 0,
      charset: this.#charset,
      ...(this.#notice === null ? {} : { notice: this.#notice.text }),
    });
  }

  /** The rows to draw: exactly `rows` lines of at most `cols` characters. */
  lines(): string[] {
    return this.#render().lines;
  }

  /** Cancel timers (notice, digit entry). Idempotent. */
  close(): void {
    this.#clearEntry();
    if (this.#notice !== null) this.#clock.clearTimeout(this.#notice.timer);
    this.#notice = null;
  }
}
