/** A pino logger whose JSON lines are kept in an array, for unit tests that check what was logged. */
import { pino, type Logger } from 'pino';

export function capturingLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const log = pino({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as Record<string, unknown>) });
  return { log, lines };
}
