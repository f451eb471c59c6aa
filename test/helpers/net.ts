/**
 * Small helpers for integration tests on 127.0.0.1.
 */
import net from 'node:net';
import type { EventEmitter } from 'node:events';

/** A TCP port that was free on 127.0.0.1 a moment ago (listen on :0, read, close). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const addr = server.address();
      if (addr === null || typeof addr === 'string') {
        server.close();
        reject(new Error('freePort: no TCP address'));
        return;
      }
      const { port } = addr;
      server.close(() => resolve(port));
    });
  });
}

/**
 * Poll `pred` every `intervalMs` (default 10) until it returns true; reject
 * after `timeoutMs` (default 5000) with `what` in the message.
 */
export async function waitFor(
  pred: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? 5000;
  const intervalMs = opts.intervalMs ?? 10;
  const start = Date.now();
  for (;;) {
    if (await pred()) return;
    if (Date.now() - start >= timeoutMs) {
      throw new Error(`waitFor: ${opts.what ?? 'condition'} not met within ${timeoutMs} ms`);
    }
    await delay(intervalMs);
  }
}

/** Resolve with the arguments of the next `event` of `emitter`; reject after `timeoutMs` (default 5000). */
export function once(emitter: EventEmitter, event: string, timeoutMs = 5000): Promise<unknown[]> {
  return new Promise((resolve, reject) => {
    const onEvent = (...args: unknown[]): void => {
      clearTimeout(timer);
      resolve(args);
    };
    const timer = setTimeout(() => {
      emitter.removeListener(event, onEvent);
      reject(new Error(`once: no '${event}' event within ${timeoutMs} ms`));
    }, timeoutMs);
    emitter.once(event, onEvent);
  });
}

/** Wait `ms` of real time. Integration tests only: e.g. to show that nothing more arrives. */
export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Resolve once something accepts TCP connections on 127.0.0.1:`port`; reject after `timeoutMs`. */
export async function waitForPort(port: number, timeoutMs = 5000): Promise<void> {
  await waitFor(
    () =>
      new Promise<boolean>((resolve) => {
        const socket = net.connect(port, '127.0.0.1');
        socket.once('connect', () => {
          socket.destroy();
          resolve(true);
        });
        socket.once('error', () => {
          socket.destroy();
          resolve(false);
        });
      }),
    { timeoutMs, intervalMs: 20, what: `TCP port ${port} accepting` },
  );
}
