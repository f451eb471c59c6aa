import type { Display, HookSwitch, Keypad, PhoneHardware } from './types.js';

/** No display: remembers the last lines so status and tests can read them. */
export class HeadlessDisplay implements Display {
  readonly cols: number;
  readonly rows: number;
  lines: string[] = [];

  constructor(cols = 20, rows = 4) {
    this.cols = cols;
    this.rows = rows;
  }

  async start(): Promise<void> {}

  show(lines: readonly string[]): void {
    this.lines = lines.slice(0, this.rows).map((l) => l.slice(0, this.cols));
  }

  async close(): Promise<void> {}
}

/** No keys. */
export class NoKeypad implements Keypad {
  async start(): Promise<void> {}
  onKey(): void {}
  async close(): Promise<void> {}
}

/**
 * A hook switch driven by software: the fleet and tests set it; with nobody
 * setting it the phone stays on-hook (idle).
 */
export class SoftHook implements HookSwitch {
  #offHook = false;
  #handlers: ((offHook: boolean) => void)[] = [];

  async start(): Promise<void> {}

  isOffHook(): boolean {
    return this.#offHook;
  }

  onChange(handler: (offHook: boolean) => void): void {
    this.#handlers.push(handler);
  }

  /** Lift (true) or replace (false) the handset. */
  set(offHook: boolean): void {
    if (offHook === this.#offHook) return;
    this.#offHook = offHook;
    for (const h of this.#handlers) h(offHook);
  }

  async close(): Promise<void> {}
}

export function headlessHardware(): PhoneHardware {
  return { display: new HeadlessDisplay(), keypad: new NoKeypad(), hook: new SoftHook() };
}
