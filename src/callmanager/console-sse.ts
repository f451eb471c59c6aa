/**
 * Server-sent events for the operator console (`GET /console/events`): each
 * client gets a `snapshot` first, then the changes broadcast to all. Bounded:
 * at most `maxClients` at once (the next is answered 503), and a client that
 * does not read — its socket buffer above `maxBufferBytes` — is dropped
 * rather than buffered for (it reconnects and starts from a new snapshot).
 * A comment line every `heartbeatMs` keeps proxies and the browser from
 * timing the stream out. stop() ends every stream cleanly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock.js';

export interface SseHubOptions {
  clock: Clock;
  /** Default 16. */
  maxClients?: number;
  /** Bytes waiting for one client's socket above which it is dropped (default 256 KiB). */
  maxBufferBytes?: number;
  /** Default 15 000 ms. */
  heartbeatMs?: number;
  /** Response headers added to every stream (the console's security headers). */
  headers?: Record<string, string>;
}

/** One SSE frame: `event` then `data` (JSON on one line: it never holds a newline). */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

export class SseHub {
  readonly #o: Required<Omit<SseHubOptions, 'headers'>> & { headers: Record<string, string> };
  readonly #clients = new Set<ServerResponse>();
  #beat: TimerHandle | undefined;
  #stopped = false;
  /** Clients dropped for not reading, and refused for the limit. */
  dropped = 0;
  refused = 0;

  constructor(opts: SseHubOptions) {
    this.#o = { maxClients: 16, maxBufferBytes: 256 * 1024, heartbeatMs: 15_000, headers: {}, ...opts };
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Take a request: start its stream with `snapshot` (made now), or refuse it. */
  accept(req: IncomingMessage, res: ServerResponse, snapshot: () => unknown): void {
    if (this.#stopped || this.#clients.size >= this.#o.maxClients) {
      this.refused++;
      res.writeHead(503, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5', ...this.#o.headers });
      res.end(this.#stopped ? 'stopping\n' : 'too many console clients\n');
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', ...this.#o.headers });
    // The browser retries after 2 s when the call manager goes away and comes back.
    res.write(`retry: 2000\n${sseFrame('snapshot', snapshot())}`);
    this.#clients.add(res);
    const gone = (): void => {
      this.#clients.delete(res);
    };
    req.on('close', gone);
    res.on('close', gone);
    res.on('error', gone);
    this.#schedule();
  }

  /** Send one change to every client. */
  broadcast(event: string, data: unknown): void {
    if (this.#clients.size === 0) return;
    this.#write(sseFrame(event, data));
  }

  /** End every stream and refuse new ones. Idempotent. */
  stop(): void {
    this.#stopped = true;
    if (this.#beat !== undefined) this.#o.clock.clearTimeout(this.#beat);
    this.#beat = undefined;
    for (const res of this.#clients) res.end();
    this.#clients.clear();
  }

  #write(frame: string): void {
    for (const res of this.#clients) {
      if (res.writableLength > this.#o.maxBufferBytes) {
        this.dropped++;
        this.#clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(frame);
    }
  }

  #schedule(): void {
    if (this.#beat !== undefined || this.#stopped) return;
    this.#beat = this.#o.clock.setTimeout(() => {
      this.#beat = undefined;
      if (this.#clients.size === 0) return;
      this.#write(': heartbeat\n\n');
      this.#schedule();
    }, this.#o.heartbeatMs);
  }
}
