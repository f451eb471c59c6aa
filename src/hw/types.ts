/**
 * The phone hardware as the agent core sees it. Real adapters (serial LCD,
 * GPIO keypad and hook switch), the terminal simulator and headless no-ops
 * all implement these; only composition roots pick one.
 */

export interface Display {
  /** Character cells per row and number of rows (e.g. 20 × 4). */
  readonly cols: number;
  readonly rows: number;
  /** Characters the display can show: `ascii` (character LCDs, the default) or `unicode` (terminal). */
  readonly charset?: 'ascii' | 'unicode';
  start(): Promise<void>;
  /**
   * Show `lines` (row 0 first; missing rows blank, long rows cut). Never
   * blocks and never throws: a display fault must not stall failover.
   */
  show(lines: readonly string[]): void;
  /** Idempotent. */
  close(): Promise<void>;
}

export interface Keypad {
  start(): Promise<void>;
  /** Register the key handler (`0`–`9`, `*`, `#`, or a named soft key). */
  onKey(handler: (key: string) => void): void;
  close(): Promise<void>;
}

export interface HookSwitch {
  start(): Promise<void>;
  /** True while the handset is lifted: the phone is busy. */
  isOffHook(): boolean;
  onChange(handler: (offHook: boolean) => void): void;
  close(): Promise<void>;
}

/** A lamp: the message-waiting lamp or the no-service indication. */
export interface Led {
  start(): Promise<void>;
  set(on: boolean): void;
  close(): Promise<void>;
}

export interface PhoneHardware {
  display: Display;
  keypad: Keypad;
  hook: HookSwitch | null;
  /** Lamps the board has. `noService` is lit while the phone has no home. */
  leds?: { message?: Led; noService?: Led };
}
