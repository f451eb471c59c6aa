/**
 * Board profiles (`hw/boards/*.json`): which display, keypad and hook switch a
 * phone has. This module picks the adapter for each; a profile naming
 * hardware this build cannot drive is refused with the reason.
 */
import { readFileSync } from 'node:fs';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { HeadlessDisplay, NoKeypad, SoftHook } from './headless.js';
import { TerminalDisplay } from './terminal-display.js';
import type { PhoneHardware } from './types.js';

export interface BoardProfile {
  name: string;
  display: { driver: string; cols?: number; rows?: number; [k: string]: unknown };
  keypad: { driver: string; [k: string]: unknown };
  hook: null | { [k: string]: unknown };
  [k: string]: unknown;
}

/** Read and check a board profile; every problem is named. */
export function loadBoardFile(path: string): BoardProfile {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, 'utf8'));
  } catch (err) {
    throw new IpphoneError(`board ${path}: ${errorMessage(err)}`, 'BOARD_INVALID', { problems: [errorMessage(err)] });
  }
  const problems: string[] = [];
  const o = raw as Partial<BoardProfile>;
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) problems.push('must be a JSON object');
  else {
    if (typeof o.name !== 'string' || o.name === '') problems.push('name: must be a non-empty string');
    if (typeof o.display !== 'object' || o.display === null || typeof o.display.driver !== 'string') problems.push('display/driver: must be serial-lcd, terminal or none');
    else if (!['serial-lcd', 'terminal', 'none'].includes(o.display.driver)) problems.push(`display/driver: must be serial-lcd, terminal or none (got ${JSON.stringify(o.display.driver)})`);
    if (typeof o.keypad !== 'object' || o.keypad === null || typeof o.keypad.driver !== 'string') problems.push('keypad/driver: must be gpio-matrix, keyboard or none');
    else if (!['gpio-matrix', 'keyboard', 'none'].includes(o.keypad.driver)) problems.push(`keypad/driver: must be gpio-matrix, keyboard or none (got ${JSON.stringify(o.keypad.driver)})`);
    if (!('hook' in o) || (o.hook !== null && typeof o.hook !== 'object')) problems.push('hook: must be an object or null');
  }
  if (problems.length > 0) throw new IpphoneError(problems.map((p) => `board ${path}: ${p}`).join('\n'), 'BOARD_INVALID', { problems });
  return o as BoardProfile;
}

/**
 * Adapters for a profile. `none` parts are headless; the terminal and
 * keyboard drivers are the simulator's. Real serial and GPIO drivers are not
 * part of this build yet: such a profile is refused as unusable.
 */
export function hardwareFor(board: BoardProfile | null): PhoneHardware {
  if (board === null) return { display: new HeadlessDisplay(), keypad: new NoKeypad(), hook: new SoftHook() };
  const unusable: string[] = [];
  if (board.display.driver === 'serial-lcd') unusable.push('display driver serial-lcd is not available in this build');
  if (board.keypad.driver === 'gpio-matrix') unusable.push('keypad driver gpio-matrix is not available in this build');
  if (unusable.length > 0) throw new IpphoneError(`board ${board.name}: ${unusable.join('; ')}`, 'HW_UNAVAILABLE', { problems: unusable });
  const cols = typeof board.display.cols === 'number' ? board.display.cols : 20;
  const rows = typeof board.display.rows === 'number' ? board.display.rows : 4;
  // The simulated LCD draws on stderr: stdout carries the JSON log lines.
  const display =
    board.display.driver === 'terminal'
      ? new TerminalDisplay({ cols, rows, out: process.stderr, isTTY: process.stderr.isTTY === true, title: board.name })
      : new HeadlessDisplay(cols, rows);
  return { display, keypad: new NoKeypad(), hook: new SoftHook() };
}
