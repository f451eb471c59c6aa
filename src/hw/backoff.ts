import type { Random } from '../lib/clock.js';

/**
 * Delay before reopen attempt `attempt` (0-based) of a device that went away:
 * `random() × min(maxMs, baseMs × 2^attempt)` ms, "full jitter", so phones
 * that lost a device together (a power dip) do not retry in step. The serial
 * LCD, the evdev reader and the LED lamps use it.
 */
export function backoffDelay(attempt: number, baseMs: number, maxMs: number, random: Random): number {
  const ceiling = Math.min(maxMs, baseMs * 2 ** Math.min(attempt, 30));
  return Math.floor(random() * ceiling);
}
