/**
 * Server-sent events for the operator console (`GET /console/events`): each
 * client gets a `snapshot` first, then the changes broadcast to all.
 *
 * Bounded, so that no one can hold the operators out (issue 15 §4: 16 idle
 * `curl -N` used to take every slot). console.ts hands a stream only to an
 * authenticated request, so an unauthenticated client never holds one; among
 * authenticated ones ({@link admit}): at most `maxPerKey` streams per client
 * address (the next from it is answered 429 — a stuck script or a browser
 * with many tabs does not grow), and at most `maxClients` in all, where a
 * new stream ends the *oldest* one (an `ended` frame, why `evicted`) rather
 * than being refused: the operator who opens the page now is the one
 * looking. A stream also ends when the credential it was opened with expires
 * (`ended`, why `expired`: the page reloads to its login form), and a
 * client that does not read — its socket buffer above `maxBufferBytes` — is
 * dropped rather than buffered for (it reconnects and starts from a new
 * snapshot). A comment line every `heartbeatMs` keeps proxies and the
 * browser from timing the stream out, and is when expiries are checked.
 * stop() ends every stream cleanly.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock, TimerHandle } from '../lib/clock.js';

export interface SseHubOptions {
  clock: Clock;
  /** Streams at once (default 16); beyond it the oldest is ended. */
  maxClients?: number;
  /** Streams at once from one client key (its address; default 4); beyond it 429. */
  maxPerKey?: number;
  /** Bytes waiting for one client's socket above which it is dropped (default 256 KiB). */
  maxBufferBytes?: number;
  /** Default 15 000 ms. */
  heartbeatMs?: number;
  /** Response headers added to every stream (the console's security headers). */
  headers?: Record<string, string>;
}

/** Who opens a stream: the key it is limited under and when its credential expires (monotonic ms). */
export interface StreamOwner {
  key: string;
  until: number;
}

/** One SSE frame: `event` then `data` (JSON on one line: it never holds a newline). */
export function sseFrame(event: string, data: unknown): string {
  return `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`;
}

/**
 * Whether a stream for `key` may open beside `open` (oldest first): refused
 * when `key` already holds `maxPerKey`; else accepted, ending the oldest
 * stream (`evict`, its index in `open`) when all `maxClients` are taken.
 */
export function admit(open: readonly { key: string }[], key: string, limits: { maxClients: number; maxPerKey: number }): { accept: false } | { accept: true; evict?: number } {
  if (open.filter((c) => c.key === key).length >= limits.maxPerKey) return { accept: false };
  if (open.length >= limits.maxClients) return { accept: true, evict: 0 };
  return { accept: true };
}

export class SseHub {
  readonly #o: Required<Omit<SseHubOptions, 'headers'>> & { headers: Record<string, string> };
  /** Open streams, oldest first. */
  readonly #clients = new Map<ServerResponse, StreamOwner>();
  #beat: TimerHandle | undefined;
  #stopped = false;
  /** Clients dropped for not reading, refused for the per-key limit, ended for a newer one, ended at their credential's expiry. */
  dropped = 0;
  refused = 0;
  evicted = 0;
  expired = 0;

  constructor(opts: SseHubOptions) {
    this.#o = { maxClients: 16, maxPerKey: 4, maxBufferBytes: 256 * 1024, heartbeatMs: 15_000, headers: {}, ...opts };
  }

  /** Clients connected now. */
  get clients(): number {
    return this.#clients.size;
  }

  /** Take an authenticated request: start its stream with `snapshot` (made now), or refuse it. */
  accept(req: IncomingMessage, res: ServerResponse, snapshot: () => unknown, owner: StreamOwner = { key: '?', until: Infinity }): void {
    const verdict = this.#stopped ? undefined : admit([...this.#clients.values()], owner.key, this.#o);
    if (verdict === undefined || !verdict.accept) {
      this.refused++;
      res.writeHead(verdict === undefined ? 503 : 429, { 'content-type': 'text/plain; charset=utf-8', 'retry-after': '5', ...this.#o.headers });
      res.end(verdict === undefined ? 'stopping\n' : `too many console streams from this address (at most ${this.#o.maxPerKey})\n`);
      return;
    }
    if (verdict.evict !== undefined) {
      const oldest = [...this.#clients.keys()][verdict.evict]!;
      this.evicted++;
      this.#end(oldest, 'evicted');
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', 'cache-control': 'no-store', 'x-accel-buffering': 'no', ...this.#o.headers });
    // The browser retries after 2 s when the call manager goes away and comes back.
    res.write(`retry: 2000\n${sseFrame('snapshot', snapshot())}`);
    this.#clients.set(res, { ...owner });
    const gone = (): void => {
      this.#clients.delete(res);
    };
    req.on('close', gone);
    res.on('close', gone);
    res.on('error', gone);
    this.#schedule();
  }

  /** Streams open now per key (for tests and logs). */
  perKey(): Map<string, number> {
    const out = new Map<string, number>();
    for (const o of this.#clients.values()) out.set(o.key, (out.get(o.key) ?? 0) + 1);
    return out;
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
    for (const res of this.#clients.keys()) res.end();
    this.#clients.clear();
  }

  #write(frame: string): void {
    for (const res of this.#clients.keys()) {
      if (res.writableLength > this.#o.maxBufferBytes) {
        this.dropped++;
        this.#clients.delete(res);
        res.destroy();
        continue;
      }
      res.write(frame);
    }
  }

  /** End one stream with an `ended` frame saying why (the page does not reconnect on it). */
  #end(res: ServerResponse, why: 'evicted' | 'expired'): void {
    this.#clients.delete(res);
    res.end(sseFrame('ended', { why }));
  }

  #schedule(): void {
    if (this.#beat !== undefined || this.#stopped) return;
    this.#beat = this.#o.clock.setTimeout(() => {
      this.#beat = undefined;
      const now = this.#o.clock.elapsed();
      for (const [res, owner] of this.#clients) {
        if (owner.until > now) continue;
        this.expired++;
        this.#end(res, 'expired');
      }
      if (this.#clients.size === 0) return;
      this.#write(': heartbeat\n\n');
      this.#schedule();
    }, this.#o.heartbeatMs);
  }
}
