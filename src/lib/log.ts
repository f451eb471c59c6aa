import { pino, type Logger, type LevelWithSilent } from 'pino';

export type { Logger };

/**
 * The one pino root of a process: JSON lines to stdout (journald collects
 * them), no transports (each is a worker thread of ~10 MiB on the device).
 * Modules take `log.child({ mod: '…' })`.
 */
export function createLogger(level: LevelWithSilent = 'info', base: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { ...base }, timestamp: pino.stdTimeFunctions.epochTime });
}

/** A logger that drops everything, for unit tests. */
export function silentLogger(): Logger {
  return pino({ level: 'silent' });
}
