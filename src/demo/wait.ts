/**
 * Waiting for conditions in the demo: every step polls for what it expects
 * and fails with a sentence naming it, instead of sleeping a fixed time.
 */
import { IpphoneError } from '../lib/errors.js';

export interface WaitOptions {
  /** Give up after this many ms. */
  timeoutMs: number;
  /** What is awaited, for the error: "all phones homed on cm-a". */
  what: string;
  /** Poll period, ms. Default 5. */
  intervalMs?: number;
  /** Called on time-out; its text is appended to the error (e.g. the current homes). */
  detail?: () => string;
  /** Stop waiting (with an ABORTED-style TIMEOUT error) once this fires: Ctrl-C. */
  signal?: AbortSignal;
}

/** Throw if `signal` has fired: the demo is shutting down, the story must not go on. */
export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new IpphoneError('demo interrupted', 'TIMEOUT', { aborted: true });
}

/** Resolve once `pred()` is true; reject with a TIMEOUT error after `timeoutMs`. */
export async function waitUntil(pred: () => boolean | Promise<boolean>, o: WaitOptions): Promise<void> {
  const deadline = performance.now() + o.timeoutMs; // monotonic: a wall-clock step must not end or stretch the wait
  for (;;) {
    checkAborted(o.signal);
    if (await pred()) return;
    if (performance.now() >= deadline) {
      const detail = o.detail?.();
      throw new IpphoneError(`${o.what}: did not happen within ${(o.timeoutMs / 1000).toFixed(1)} s${detail ? ` (${detail})` : ''}`, 'TIMEOUT', { what: o.what });
    }
    await new Promise((r) => setTimeout(r, o.intervalMs ?? 5));
  }
}

/** `p`, or a TIMEOUT error after `ms` — for shutdown steps that must not hang. */
export async function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const limit = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new IpphoneError(`${what}: took longer than ${ms} ms`, 'TIMEOUT', { what })), ms);
  });
  try {
    return await Promise.race([p, limit]);
  } finally {
    clearTimeout(timer);
  }
}
