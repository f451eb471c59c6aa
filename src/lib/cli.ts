/** Small pieces every command-line entry point shares. */
import { errorMessage, isIpphoneError } from './errors.js';

/** Where a command writes; tests pass their own. */
export interface MainIo {
  stdout: (s: string) => void;
  stderr: (s: string) => void;
}

export const processIo: MainIo = { stdout: (s) => process.stdout.write(s), stderr: (s) => process.stderr.write(s) };

/** Every problem an error carries (`context.problems` of CONFIG_INVALID/BOARD_INVALID/…), else its message. */
export function problemsOf(err: unknown): string[] {
  if (isIpphoneError(err) && Array.isArray(err.context?.problems)) return (err.context.problems as unknown[]).map(String);
  return [errorMessage(err)];
}
