/**
 * Small helpers for integration tests on 127.0.0.1.
 */
import net from 'node:net';
import { claimPort } from './ports.js';
import type { EventEmitter } from 'node:events';

/**
 * A port on 127.0.0.1 for a child to listen on, held for this test process alone
 * (test/helpers/ports.ts): outside the kernel's ephemeral range, so no outgoing
 * connection takes it, and claimed by a lock file, so no other test process does.
 * `opts.udp`: the child listens on UDP too (SIP); `opts.span`: that many adjacent
 * ports (returns the first).
 */
export function freePort(opts: { udp?: boolean; span?: number } = {}): Promise<number> {
  return claimPort(opts);
}

/** Default deadline of {@link waitFor}, {@link once} and {@link waitForPort}. */
export const WAIT_DEFAULT_MS = 30_000;

/**
 * Poll `pred` every `intervalMs` (default 10) until it returns true; reject
 * after `timeoutMs` (default {@link WAIT_DEFAULT_MS}) with `what` in the message.
 * A deadline catches a hang; it is not a performance assertion: generous, so a
 * machine loaded with other tests' processes (load 9 per core measured) still
 * gets there. A test that means "this does not happen" waits a window of its own.
 */
export async function waitFor(
  pred: () => boolean | Promise<boolean>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<void> {
  const timeoutMs = opts.timeoutMs ?? WAIT_DEFAULT_MS;
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

/** Resolve with the arguments of the next `event` of `emitter`; reject after `timeoutMs` (default {@link WAIT_DEFAULT_MS}). */
export function once(emitter: EventEmitter, event: string, timeoutMs = WAIT_DEFAULT_MS): Promise<unknown[]> {
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
export async function waitForPort(port: number, timeoutMs = WAIT_DEFAULT_MS): Promise<void> {
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
