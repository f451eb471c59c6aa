/**
 * The operator console of one call manager (issue 12, shared/CONTRACT.md
 * `GET /`), wired by call-manager.ts: the model (console-model.ts) fed from
 * what the call manager already follows — its peers' states and loads, its
 * own measures, its rebalancer — and from phones' `status` and `event` on its
 * own broker; the page (console-page.ts); the live stream (console-sse.ts).
 * Read-only: nothing here changes the call manager.
 *
 * HTTP: `GET /` the page, `GET /console/events` the stream, `GET
 * /console/phone?id=ID` what is known of one phone as JSON.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { cleanText, ConsoleModel, type MoveView, type SelfMeasure } from './console-model.js';
import { CONSOLE_HEADERS, consolePage } from './console-page.js';
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
  /** SSE limits (tests use small ones). */
  maxClients?: number;
  heartbeatMs?: number;
}

export class CmConsole {
  readonly #o: CmConsoleOptions;
  readonly #model: ConsoleModel;
  readonly #hub: SseHub;
  readonly #phoneHead: string;
  #timer: TimerHandle | undefined;
  #lastGroupKey = '';
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
      ...(opts.heartbeatMs !== undefined ? { heartbeatMs: opts.heartbeatMs } : {}),
    });
    this.#phoneHead = `${opts.prefix}/phone/`;
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
    if (path !== '/' && path !== '/console/events' && path !== '/console/phone') return false;
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(req, res, 405, 'text/plain; charset=utf-8', 'method not allowed\n', { allow: 'GET, HEAD' });
      return true;
    }
    if (path === '/') {
      send(req, res, 200, 'text/html; charset=utf-8', consolePage(this.#o.cmId));
    } else if (path === '/console/events') {
      if (req.method === 'HEAD') send(req, res, 200, 'text/event-stream; charset=utf-8', '');
      else {
        this.#measure();
        this.#hub.accept(req, res, () => this.#model.snapshot());
      }
    } else {
      const ids = url.searchParams.getAll('id');
      const id = ids.length === 1 ? cleanText(ids[0]) : null;
      if (id === null || id === '') {
        send(req, res, 400, 'application/json', JSON.stringify({ error: 'query parameter id is required exactly once' }));
      } else {
        const known = this.#model.phone(id);
        const body = { id, homedHere: this.#o.host.homedHere(id), pointers: this.#o.host.pointers(id), status: known?.status ?? null, statusAt: known?.statusAt ?? null, events: known?.events ?? [] };
        send(req, res, known === undefined && !body.homedHere ? 404 : 200, 'application/json', JSON.stringify(known === undefined && !body.homedHere ? { ...body, error: `nothing heard of phone ${id}` } : body));
      }
    }
    return true;
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
    this.#timer = this.#o.clock.setTimeout(() => {
      this.#timer = undefined;
      this.#refresh();
    }, REFRESH_MS);
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

function send(req: IncomingMessage, res: ServerResponse, status: number, type: string, body: string, extra: Record<string, string> = {}): void {
  const buf = Buffer.from(body, 'utf8');
  res.writeHead(status, { ...CONSOLE_HEADERS, 'content-type': type, 'content-length': buf.length, ...extra });
  res.end(req.method === 'HEAD' ? undefined : buf);
}
