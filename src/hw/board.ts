/**
 * Board profiles (`hw/boards/*.json`): which display, keypad and hook switch a
 * phone has. This module picks the adapter for each; a profile naming
 * hardware this build cannot drive is refused with the reason.
 */
import { readJsonFile } from '../config/problems.js';
import { IpphoneError } from '../lib/errors.js';
import { validateBoard, type BoardProfile } from './board-schema.js';
import { HeadlessDisplay, NoKeypad, SoftHook } from './headless.js';
import { TerminalDisplay } from './terminal-display.js';
import type { PhoneHardware } from './types.js';

export type { BoardProfile } from './board-schema.js';

/**
 * Read and check a board profile against the board schema (src/hw/board-schema.ts)
 * and fill its defaults. Throws BOARD_INVALID whose message is every problem,
 * one per line as `board PATH: field: what is wrong`; context `{ problems, path }`.
 */
export function loadBoardFile(path: string): BoardProfile {
  const read = readJsonFile(path);
  const result = read.ok ? validateBoard(read.value) : { ok: false as const, problems: read.problems };
  if (!result.ok) {
    throw new IpphoneError(result.problems.map((p) => `board ${path}: ${p}`).join('\n'), 'BOARD_INVALID', { problems: result.problems, path });
  }
  return result.board;
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
  const { cols, rows } = board.display;
  // The simulated LCD draws on stderr: stdout carries the JSON log lines.
  const display =
    board.display.driver === 'terminal'
      ? new TerminalDisplay({ cols, rows, out: process.stderr, isTTY: process.stderr.isTTY === true, title: board.name })
      : new HeadlessDisplay(cols, rows);
  return { display, keypad: new NoKeypad(), hook: new SoftHook() };
}
