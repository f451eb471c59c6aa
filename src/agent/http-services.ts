/**
 * Fetches a phone's services page from a call manager. Built on node:http and
 * node:https rather than the global fetch: undici costs several MiB of RSS, and
 * a phone has little to spare.
 */
import type { ClientRequest } from 'node:http';
import { createRequire } from 'node:module';
import type { Clock, TimerHandle } from '../lib/clock.js';
import { systemClock } from '../lib/clock.js';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { ServicesFetcher } from './ports.js';

/*
 * node:http and node:https through require(), not `import`: on Node 22 run
 * --jitless (the agent's unit), the ES module facade of node:http reads every
 * export once, its lazy `WebSocket` getter among them; that loads undici,
 * whose HTTP parser is WebAssembly, which --jitless removes, and the rejected
 * compile kills the agent at start ("ReferenceError: WebAssembly is not
 * defined", an unhandled rejection). require() returns the same module without
 * a facade. Node 20 and 24 do not touch the getter; test/integration/unit-exec
 * runs the unit on all three.
 */
const nodeRequire = createRequire(import.meta.url);
/**
 * node:http on the first services fetch: a phone whose call managers publish no
 * services page never loads it (bench/results-footprint.md, "What was cut").
 */
let httpModule: typeof import('node:http') | undefined;
const http = (): typeof import('node:http') => (httpModule ??= nodeRequire('node:http') as typeof import('node:http'));
/**
 * node:https (and node:tls under it) on the first `https:` services URL only: most
 * call managers serve the page over http:, and loading them at start cost an `mqtt:`
 * agent about 1.1 MiB of RSS on Node 20 under --jitless (bench/results-footprint.md).
 */
let httpsModule: typeof import('node:https') | undefined;
const https = (): typeof import('node:https') => (httpsModule ??= nodeRequire('node:https') as typeof import('node:https'));

/** Largest services page accepted, bytes (256 KiB). */
export const SERVICES_MAX_BYTES = 256 * 1024;

export interface ServicesFetcherOptions {
  /** Drives the overall deadline. Default {@link systemClock}. */
  clock?: Clock;
  /** Body cap, bytes. Default {@link SERVICES_MAX_BYTES}. */
  maxBytes?: number;
}

/**
 * `url` with `phone=ID` appended to its query (before any fragment, which is
 * dropped) — unless the query names a `phone` already: a call manager's menu
 * links carry it, and the call manager refuses a second one (HTTP 400).
 */
export function servicesUrl(url: string, phoneId: string): string {
  const hash = url.indexOf('#');
  const base = hash === -1 ? url : url.slice(0, hash);
  const q = base.indexOf('?');
  if (q !== -1 && new URLSearchParams(base.slice(q + 1)).has('phone')) return base;
  return `${base}${base.includes('?') ? '&' : '?'}phone=${encodeURIComponent(phoneId)}`;
}

/**
 * A {@link ServicesFetcher}: GET `url?phone=ID` (or `&phone=ID`), resolving with
 * the body as UTF-8 text. One deadline of `timeoutMs` covers connect, headers
 * and body. Rejects with {@link IpphoneError}:
 * - `TIMEOUT` when the deadline passes,
 * - `TRANSPORT` on a non-2xx status (`context.status`) or a network error,
 * - `PAYLOAD_TOO_LARGE` when the body exceeds `maxBytes`,
 * - `CONFIG_INVALID` when `url` is not an http:/https: URL.
 * No connection is pooled (`agent: false`); the socket is destroyed on every outcome.
 */
export function createServicesFetcher(opts: ServicesFetcherOptions = {}): ServicesFetcher {
  const clock = opts.clock ?? systemClock;
  const maxBytes = opts.maxBytes ?? SERVICES_MAX_BYTES;

  return (url, phoneId, timeoutMs) =>
    new Promise<string>((resolve, reject) => {
      const target = servicesUrl(url, phoneId);
      let parsed: URL;
      try {
        parsed = new URL(target);
      } catch {
        reject(new IpphoneError(`services URL is not a URL: ${JSON.stringify(url)}`, 'CONFIG_INVALID', { url }));
        return;
      }
      const lib = parsed.protocol === 'https:' ? https() : parsed.protocol === 'http:' ? http() : undefined;
      if (!lib) {
        reject(new IpphoneError(`services URL must be http: or https:, got ${parsed.protocol}`, 'CONFIG_INVALID', { url }));
        return;
      }

      let settled = false;
      let timer: TimerHandle | undefined;
      let req: ClientRequest | undefined;
      const settle = (err: IpphoneError | null, body?: string): void => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clock.clearTimeout(timer);
        req?.destroy();
        if (err) reject(err);
        else resolve(body ?? '');
      };
      const ctx = { url: target };

      timer = clock.setTimeout(() => {
        settle(new IpphoneError(`services request got no complete answer within ${timeoutMs} ms`, 'TIMEOUT', { ...ctx, timeoutMs }));
      }, timeoutMs);

      try {
        req = lib.get(parsed, { agent: false, headers: { accept: 'text/xml, application/xml;q=0.9, */*;q=0.5' } }, (res) => {
          const status = res.statusCode ?? 0;
          if (status < 200 || status > 299) {
            res.resume();
            settle(new IpphoneError(`services request answered HTTP ${status}`, 'TRANSPORT', { ...ctx, status }));
            return;
          }
          const tooLarge = (): IpphoneError =>
            new IpphoneError(`services page is larger than ${maxBytes} bytes`, 'PAYLOAD_TOO_LARGE', { ...ctx, maxBytes });
          const declared = Number(res.headers['content-length']);
          if (Number.isFinite(declared) && declared > maxBytes) {
            settle(tooLarge());
            return;
          }
          const chunks: Buffer[] = [];
          let size = 0;
          res.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > maxBytes) settle(tooLarge());
            else chunks.push(chunk);
          });
          res.on('end', () => {
            if (res.complete) settle(null, Buffer.concat(chunks).toString('utf8'));
            else settle(new IpphoneError('services response ended early', 'TRANSPORT', ctx));
          });
          res.on('error', (err) => settle(new IpphoneError(`services response failed: ${errorMessage(err)}`, 'TRANSPORT', ctx, { cause: err })));
          res.on('close', () => settle(new IpphoneError('services response ended early', 'TRANSPORT', ctx)));
        });
        req.on('error', (err) => settle(new IpphoneError(`services request failed: ${errorMessage(err)}`, 'TRANSPORT', ctx, { cause: err })));
      } catch (err) {
        settle(new IpphoneError(`services request failed: ${errorMessage(err)}`, 'TRANSPORT', ctx, { cause: err }));
      }
    });
}

/** The default {@link ServicesFetcher} (system clock, 256 KiB cap). */
export const fetchServices: ServicesFetcher = createServicesFetcher();
