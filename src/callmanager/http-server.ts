import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { IpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { METRICS_CONTENT_TYPE } from './metrics.js';
import { directoryPage, servicesMenu, statusPage, type DirectoryEntry, type PageContext } from './services-page.js';

/**
 * The call manager's HTTP side: services pages, `/healthz`, `/metrics`.
 * {@link route} is pure (request in, answer out) and unit-tested; {@link HttpServer}
 * only binds it to node:http.
 */

const ID_RE = /^[A-Za-z0-9._-]{1,64}$/;
const XML_TYPE = 'text/xml; charset=utf-8';
const TEXT_TYPE = 'text/plain; charset=utf-8';

/** What the routes read from the running call manager. */
export interface HttpDeps {
  cmId: string;
  /** Absolute URL of this CM's `/services`, used for menu links. */
  servicesUrl: string;
  connected(): boolean;
  /** False while the paired SIP server does not answer (absent: no SIP server configured). */
  sipOnline?(): boolean;
  phonesHomed(): number;
  directory(): readonly DirectoryEntry[];
  metricsText(): string;
  /** Called once per services page served (for servicesRps and the counter). */
  onServicesRequest(): void;
  /** Serves the paths it knows (the operator console, console.ts) and returns true; else {@link route} answers. */
  raw?(req: IncomingMessage, res: ServerResponse): boolean;
}

export interface HttpAnswer {
  status: number;
  contentType: string;
  body: string;
  headers?: Record<string, string>;
}

function text(status: number, body: string, headers?: Record<string, string>): HttpAnswer {
  return headers === undefined ? { status, contentType: TEXT_TYPE, body } : { status, contentType: TEXT_TYPE, body, headers };
}

/** Answer one request. `rawUrl` is the request target (path and query). */
export function route(method: string, rawUrl: string, deps: HttpDeps): HttpAnswer {
  let url: URL;
  try {
    url = new URL(rawUrl, 'http://cm.invalid');
  } catch {
    return text(400, 'bad request target\n');
  }
  const path = url.pathname;
  const known = path === '/healthz' || path === '/metrics' || path === '/services' || path === '/services/directory' || path === '/services/status';
  if (!known) return text(404, 'not found\n');
  if (method !== 'GET' && method !== 'HEAD') return text(405, 'method not allowed\n', { allow: 'GET, HEAD' });

  if (path === '/healthz') {
    if (!deps.connected()) return text(503, 'broker not connected\n');
    return deps.sipOnline?.() === false ? text(503, 'sip registrar not answering\n') : text(200, 'ok\n');
  }
  if (path === '/metrics') return { status: 200, contentType: METRICS_CONTENT_TYPE, body: deps.metricsText() };

  const phones = url.searchParams.getAll('phone');
  const phone = phones[0];
  if (phones.length !== 1 || phone === undefined) return text(400, 'query parameter phone is required exactly once\n');
  if (!ID_RE.test(phone)) return text(400, 'phone must be 1-64 characters of A-Z a-z 0-9 . _ -\n');
  deps.onServicesRequest();
  const ctx: PageContext = { cmId: deps.cmId, phone, servicesUrl: deps.servicesUrl };
  if (path === '/services') return { status: 200, contentType: XML_TYPE, body: servicesMenu(ctx) };
  if (path === '/services/directory') return { status: 200, contentType: XML_TYPE, body: directoryPage(ctx, deps.directory()) };
  return { status: 200, contentType: XML_TYPE, body: statusPage(ctx, deps.phonesHomed()) };
}

/** node:http bound to {@link route}. */
export class HttpServer {
  readonly #host: string;
  readonly #port: number;
  readonly #deps: HttpDeps;
  readonly #log: Logger;
  #server: Server | undefined;

  constructor(host: string, port: number, deps: HttpDeps, log: Logger) {
    this.#host = host;
    this.#port = port;
    this.#deps = deps;
    this.#log = log;
  }

  /** Bind and listen. Throws TRANSPORT when the address cannot be bound. */
  async start(): Promise<void> {
    const server = createServer((req, res) => {
      if (this.#deps.raw?.(req, res) === true) return;
      let answer: HttpAnswer;
      try {
        answer = route(req.method ?? 'GET', req.url ?? '/', this.#deps);
      } catch (err) {
        this.#log.error({ err, url: req.url }, 'http handler failed');
        answer = text(500, 'internal error\n');
      }
      const body = Buffer.from(answer.body, 'utf8');
      res.writeHead(answer.status, { 'content-type': answer.contentType, 'content-length': body.length, ...answer.headers });
      res.end(req.method === 'HEAD' ? undefined : body);
    });
    server.keepAliveTimeout = 5000;
    await new Promise<void>((resolve, reject) => {
      const onError = (err: Error): void => {
        reject(new IpphoneError(`cannot listen on ${this.#host}:${this.#port}: ${err.message}`, 'TRANSPORT', { host: this.#host, port: this.#port }, { cause: err }));
      };
      server.once('error', onError);
      server.listen(this.#port, this.#host, () => {
        server.off('error', onError);
        resolve();
      });
    });
    server.on('error', (err) => this.#log.error({ err }, 'http server error'));
    this.#server = server;
    this.#log.info({ host: this.#host, port: this.port }, 'http listening');
  }

  /** The bound port (useful with port 0). */
  get port(): number {
    const addr = this.#server?.address() as AddressInfo | null | undefined;
    return addr?.port ?? this.#port;
  }

  /** Stop listening and drop idle keep-alive connections. Idempotent. */
  async stop(): Promise<void> {
    const server = this.#server;
    if (server === undefined) return;
    this.#server = undefined;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }
}
