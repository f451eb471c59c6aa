/**
 * The operator console of one call manager (issue 12, shared/CONTRACT.md
 * `GET /`), wired by call-manager.ts: the model (console-model.ts) fed from
 * what the call manager already follows — its peers' states and loads, its
 * own measures, its rebalancer — and from phones' `status` and `event` on its
 * own broker; the page (console-page.ts); the live stream (console-sse.ts).
 * Read-only: nothing here changes the call manager.
 *
 * HTTP: `GET /` the page, `GET /console/events` the stream, `GET
 * /console/phone?id=ID` what is known of one phone as JSON, `POST
 * /console/login` (form field `token`) and `POST /console/logout`.
 *
 * Only for operators (issue 15 §4): without a token (`console.tokenFile`)
 * every console path answers 404 — the call manager still follows the
 * phones' events for `/metrics` — and with one, every answer that holds
 * group data needs the token as `Authorization: Bearer` or the session
 * cookie of a login (console-auth.ts); without it `GET /` is the login form
 * (401) and the rest 401 with no data. The session cookie is HttpOnly,
 * SameSite=Strict, Path=/, and Secure when the page is served over https
 * (this call manager's services URL is https:, or the request came over
 * TLS). The two POSTs are the only state-changing requests, and they refuse
 * a cross-site request (an `Origin` of another host, `Sec-Fetch-Site`
 * cross-site) besides SameSite. Streams are limited per client address and
 * in all (console-sse.ts).
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { addressKey, SESSION_COOKIE, type ConsoleAuth } from './console-auth.js';
import { cleanText, ConsoleModel, type MoveView, type SelfMeasure } from './console-model.js';
import { CONSOLE_HEADERS, consolePage, LOGIN_HEADERS, loginPage } from './console-page.js';
import { SseHub } from './console-sse.js';
import { REHOME_REASONS } from '../protocol/types.js';

const KNOWN_REASONS: ReadonlySet<string> = new Set(REHOME_REASONS);

/** How often this call manager's own figures and the moves are refreshed and, when changed, sent (ms). */
const REFRESH_MS = 1000;

/** What the console reads from the running call manager. */
export interface ConsoleHost {
  measure(): SelfMeasure;
  moves(): { moves: MoveView[]; queued: number };
  /** The list this call manager would give the phone now. */
  pointers(phone: string): { version: number; reason: string; list: string[] };
  /** True while the phone is homed here. */
  homedHere(phone: string): boolean;
}

export interface CmConsoleOptions {
  cmId: string;
  group: readonly { id: string; capacity: number }[];
  /** Topic prefix without a trailing `/`. */
  prefix: string;
  clock: Clock;
  host: ConsoleHost;
  log: Logger;
  /** Who may see the console; absent (no `console.tokenFile`): every console path is 404. */
  auth?: ConsoleAuth;
  /** Mark the session cookie Secure (the console is reached over https). */
  secureCookie?: boolean;
  /** SSE limits (tests use small ones). */
  maxClients?: number;
  maxPerKey?: number;
  heartbeatMs?: number;
}

/** Largest login or logout form body read (bytes). */
const FORM_MAX = 4096;

export class CmConsole {
  readonly #o: CmConsoleOptions;
  readonly #model: ConsoleModel;
  readonly #hub: SseHub;
  readonly #phoneHead: string;
  #timer: TimerHandle | undefined;
  #lastGroupKey = '';
  #lastSummaryKey = '';
  #stopped = false;
  /**
   * Completed rehomes *to this call manager*, by reason, as the phones report
   * them (`/metrics` `ipphone_cm_rehomes_total`). A reason outside the
   * contract's list counts as `other`: label values must not come unbounded
   * from the network.
   */
  readonly rehomesHere = new Map<string, number>(REHOME_REASONS.map((r) => [r, 0]));

  constructor(opts: CmConsoleOptions) {
    this.#o = opts;
    this.#model = new ConsoleModel({ cmId: opts.cmId, group: opts.group, clock: opts.clock });
    this.#hub = new SseHub({
      clock: opts.clock,
      headers: CONSOLE_HEADERS,
      ...(opts.maxClients !== undefined ? { maxClients: opts.maxClients } : {}),
      ...(opts.maxPerKey !== undefined ? { maxPerKey: opts.maxPerKey } : {}),
      ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    });
    this.#phoneHead = `${opts.prefix}/phone/`;
  }

  /** Phones' `rehomed` events not believed: over their phone's rate limit (`/metrics`). */
  get rehomesLimited(): number {
    return this.#model.rehomesLimited;
  }

  /** The phone topics the console subscribes to on the call manager's own broker. */
  get filters(): string[] {
    return [`${this.#phoneHead}+/event`, `${this.#phoneHead}+/status`];
  }

  /** True for a topic this console takes ({@link onMessage}). */
  wants(topic: string): boolean {
    return topic.startsWith(this.#phoneHead);
  }

  /** A phone's event or status. Bad JSON is ignored (the console shows, it does not judge). */
  onMessage(topic: string, payload: Buffer): void {
    const rest = topic.slice(this.#phoneHead.length);
    const slash = rest.indexOf('/');
    if (slash <= 0) return;
    const phone = rest.slice(0, slash);
    const kind = rest.slice(slash + 1);
    if (kind !== 'event' && kind !== 'status') return;
    let body: unknown = null;
    if (payload.length > 0) {
      try {
        body = JSON.parse(payload.toString('utf8'));
      } catch {
        return;
      }
    }
    if (kind === 'status') {
      this.#model.phoneStatus(phone, body);
      return;
    }
    const rehome = this.#model.phoneEvent(phone, body);
    if (rehome === undefined) return;
    this.#hub.broadcast('rehome', rehome);
    this.#sendSummaryIfChanged();
    if (rehome.to === this.#o.cmId) {
      const reason = KNOWN_REASONS.has(rehome.reason) ? rehome.reason : 'other';
      this.rehomesHere.set(reason, (this.rehomesHere.get(reason) ?? 0) + 1);
    }
  }

  /** A peer's decoded load. */
  peerLoad(id: string, load: { phones: number; servicesRps: number }): void {
    this.#model.peerLoad(id, load);
    this.#sendGroupIfChanged();
  }

  /** The peers counted offline changed. */
  setOffline(offline: ReadonlySet<string>): void {
    this.#model.setOffline(offline);
    this.#sendGroupIfChanged();
  }

  /** Start refreshing the call manager's own figures. */
  start(): void {
    this.#refresh();
  }

  /** End every stream and the refresh. Idempotent. */
  stop(): void {
    this.#stopped = true;
    if (this.#timer !== undefined) this.#o.clock.clearTimeout(this.#timer);
    this.#timer = undefined;
    this.#hub.stop();
  }

  /** Serve a console path; false when `req` is not one (the services routes take it). */
  handle(req: IncomingMessage, res: ServerResponse): boolean {
    let url: URL;
    try {
      url = new URL(req.url ?? '/', 'http://cm.invalid');
    } catch {
      return false;
    }
    const path = url.pathname;
    const post = path === '/console/login' || path === '/console/logout';
    if (path !== '/' && path !== '/console/events' && path !== '/console/phone' && !post) return false;
    const auth = this.#o.auth;
    if (auth === undefined) {
      send(req, res, 404, 'text/plain; charset=utf-8', 'not found\n');
      return true;
    }
    if (post) {
      if (req.method !== 'POST') send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'POST' });
      else this.#post(req, res, path, auth);
      return true;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
      return true;
    }
    const who = auth.authorize({ authorization: req.headers.authorization, cookie: req.headers.cookie }, req.socket.remoteAddress);
    if (!who.ok) {
      const challenge = { 'www-authenticate': 'Bearer realm="ipphone console"' };
      if (who.status === 429) {
        const body = `too many wrong tokens from this address; try again in ${who.retryAfterS} s`;
        if (path === '/') sendPage(req, res, 429, loginPage(this.#o.cmId, body), { 'retry-after': String(who.retryAfterS) });
        else send(req, res, 429, 'application/json', JSON.stringify({ error: body }), { 'retry-after': String(who.retryAfterS) });
      } else if (path === '/') {
        sendPage(req, res, 401, loginPage(this.#o.cmId, who.why === 'expired' ? 'Your session expired: log in again.' : who.why === 'wrong' ? 'Wrong token.' : ''), challenge);
      } else {
        send(req, res, 401, 'application/json', JSON.stringify({ error: 'the console needs the operators\' token: Authorization: Bearer TOKEN, or log in at /' }), challenge);
      }
      return true;
    }
    if (path === '/') {
      send(req, res, 200, 'text/html; charset=utf-8', consolePage(this.#o.cmId));
    } else if (path === '/console/events') {
      if (req.method === 'HEAD') send(req, res, 200, 'text/event-stream; charset=utf-8', '');
      else {
        this.#measure();
        this.#hub.accept(req, res, () => this.#model.snapshot(), { key: addressKey(req.socket.remoteAddress), until: who.until });
      }
    } else {
      const ids = url.searchParams.getAll('id');
      const id = ids.length === 1 ? cleanText(ids[0]) : null;
      if (id === null || id === '') {
        send(req, res, 400, 'application/json', JSON.stringify({ error: 'query parameter id is required exactly once' }));
      } else {
        const known = this.#model.phone(id);
        const homedHere = this.#o.host.homedHere(id);
        if (known === undefined && !homedHere) send(req, res, 404, 'application/json', JSON.stringify({ error: `nothing heard of phone ${id}` }));
        else send(req, res, 200, 'application/json', JSON.stringify({ id, homedHere, pointers: this.#o.host.pointers(id), status: known?.status ?? null, statusAt: known?.statusAt ?? null, events: known?.events ?? [] }));
      }
    }
    return true;
  }

  /** `POST /console/login` or `/console/logout`: a same-origin form, at most {@link FORM_MAX} bytes. */
  #post(req: IncomingMessage, res: ServerResponse, path: string, auth: ConsoleAuth): void {
    const site = req.headers['sec-fetch-site'];
    const origin = req.headers.origin;
    let crossSite = site !== undefined && site !== 'same-origin' && site !== 'none';
    if (origin !== undefined && origin !== 'null') {
      try {
        crossSite ||= new URL(origin).host !== req.headers.host;
      } catch {
        crossSite = true;
      }
    }
    if (crossSite) {
      req.resume();
      send(req, res, 403, 'text/plain; charset=utf-8', 'cross-site request refused\n');
      return;
    }
    const type = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    if (path === '/console/login' && type !== 'application/x-www-form-urlencoded') {
      req.resume();
      send(req, res, 415, 'text/plain; charset=utf-8', 'send the login form (application/x-www-form-urlencoded)\n');
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    req.on('data', (b: Buffer) => {
      if (done) return;
      size += b.length;
      if (size > FORM_MAX) {
        done = true;
        send(req, res, 413, 'text/plain; charset=utf-8', 'form too large\n', { connection: 'close' });
        req.destroy();
        return;
      }
      chunks.push(b);
    });
    req.on('error', () => undefined);
    req.on('end', () => {
      if (done) return;
      done = true;
      const secure = this.#o.secureCookie === true || (req.socket as { encrypted?: boolean }).encrypted === true;
      const attrs = `Path=/; HttpOnly; SameSite=Strict${secure ? '; Secure' : ''}`;
      if (path === '/console/logout') {
        auth.logout(req.headers.cookie);
        send(req, res, 303, 'text/plain; charset=utf-8', 'logged out\n', { location: '/', 'set-cookie': `${SESSION_COOKIE}=; ${attrs}; Max-Age=0` });
        return;
      }
      const token = new URLSearchParams(Buffer.concat(chunks).toString('utf8')).get('token') ?? '';
      const address = req.socket.remoteAddress;
      const r = auth.login(token, address);
      if (r.ok) {
        this.#o.log.info({ address }, 'console login');
        send(req, res, 303, 'text/plain; charset=utf-8', 'logged in\n', { location: '/', 'set-cookie': `${SESSION_COOKIE}=${r.cookie}; ${attrs}; Max-Age=${r.maxAgeS}` });
      } else if (r.status === 429) {
        sendPage(req, res, 429, loginPage(this.#o.cmId, `Too many wrong tokens from this address: try again in ${r.retryAfterS} s.`), { 'retry-after': String(r.retryAfterS) });
      } else {
        this.#o.log.warn({ address }, 'console login with a wrong token');
        sendPage(req, res, 401, loginPage(this.#o.cmId, 'Wrong token.'));
      }
    });
  }

  /** Streams open now (for tests). */
  get clients(): number {
    return this.#hub.clients;
  }

  #measure(): void {
    this.#model.measureSelf(this.#o.host.measure());
    const m = this.#o.host.moves();
    this.#model.setMoves(m.moves, m.queued);
  }

  #refresh(): void {
    if (this.#stopped) return;
    this.#measure();
    this.#sendGroupIfChanged();
    // Rehomes leave the summary's window with time alone.
    this.#sendSummaryIfChanged();
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#refresh();
    }, REFRESH_MS);
  }

  /** Send the rehome summary by reason when it changed (a rehome came, or one left the window). */
  #sendSummaryIfChanged(): void {
    const summary = this.#model.summary();
    const key = JSON.stringify(summary);
    if (key === this.#lastSummaryKey) return;
    this.#lastSummaryKey = key;
    this.#hub.broadcast('summary', summary);
  }

  /** Send the members and moves when anything but the times changed. */
  #sendGroupIfChanged(): void {
    const g = this.#model.group();
    const key = JSON.stringify({ ...g, members: g.members.map((m) => ({ ...m, loadAt: null })), moves: g.moves.map((m) => m.phone + m.to) });
    if (key === this.#lastGroupKey) return;
    this.#lastGroupKey = key;
    this.#hub.broadcast('members', g);
  }
}

/** The login form, with its own headers (no script allowed). */
function sendPage(req: IncomingMessage, res: ServerResponse, status: number, html: string, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(html, 'utf8');
  res.writeHead(status, { ...LOGIN_HEADERS, 'content-type': 'text/html; charset=utf-8', 'content-length': buf.length, ...extra });
  res.end(req.method === 'HEAD' ? undefined : buf);
}

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...CONSOLE_HEADERS, 'content-type': type, 'content-length': buf.length, ...extra });
  res.end(req.method === 'HEAD' ? undefined : buf);
}
