/**
 * The simulator's keypad and hook switch: keys typed in the terminal. Digits,
 * `*` and `#` are phone keys; the board's hook key (default `h`) lifts or
 * replaces the handset. Reads stdin in raw mode only when it is a TTY (a
 * phone under a service manager has none), and Ctrl-C still stops the agent.
 */
import type { Keypad } from './types.js';
import type { SoftHook } from './headless.js';

const PHONE_KEYS = /^[0-9*#]$/;

export class KeyboardKeypad implements Keypad {
  readonly #input: NodeJS.ReadStream;
  readonly #hook: SoftHook | null;
  readonly #hookKey: string;
  #handlers: ((key: string) => void)[] = [];
  #listening = false;
  readonly #onData = (buf: Buffer): void => {
    for (const ch of buf.toString('utf8')) {
      if (ch === '\u0003') {
        process.kill(process.pid, 'SIGINT');
        return;
      }
      if (this.#hook !== null && ch.toLowerCase() === this.#hookKey) this.#hook.set(!this.#hook.isOffHook());
      else if (PHONE_KEYS.test(ch)) for (const h of this.#handlers) h(ch);
    }
  };

  constructor(opts: { input?: NodeJS.ReadStream; hook?: SoftHook | null; hookKey?: string } = {}) {
    this.#input = opts.input ?? process.stdin;
    this.#hook = opts.hook ?? null;
    this.#hookKey = (opts.hookKey ?? 'h').toLowerCase();
  }

  async start(): Promise<void> {
    if (!this.#input.isTTY || this.#listening) return;
    this.#listening = true;
    this.#input.setRawMode(true);
    this.#input.on('data', this.#onData);
    this.#input.resume();
  }

  onKey(handler: (key: string) => void): void {
    this.#handlers.push(handler);
  }

  async close(): Promise<void> {
    if (!this.#listening) return;
    this.#listening = false;
    this.#input.off('data', this.#onData);
    this.#input.setRawMode(false);
    this.#input.pause();
  }

  /** Feed keys as if typed (tests, and non-TTY input). */
  type(text: string): void {
    this.#onData(Buffer.from(text));
  }
}
