/**
 * A keypad the kernel drives (device-tree `matrix-keypad` or `gpio-keys`, a
 * USB keypad): `EV_KEY` presses from an evdev device, mapped to phone keys by
 * the board's keymap. A key is reported once, on press (value 1); releases
 * (0) and autorepeats (2) are not keys. The kernel has already debounced.
 * Codes the keymap does not name are ignored (the same device may carry the
 * hook switch, src/hw/evdev-hook.ts).
 */
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { EvdevDevice } from './evdev.js';
import type { InputEvent } from './evdev-codec.js';
import { DEFAULT_EVDEV_KEYMAP, EV_KEY, parseInputCode } from './input-codes.js';
import type { Keypad } from './types.js';

/**
 * Resolve a board keymap (`{ "KEY_1": "1", "257": "*" }`) to `EV_KEY` code →
 * phone key. Every problem is returned, as `keypad/keymap/NAME: …`.
 */
export function resolveKeymap(keymap: Readonly<Record<string, string>>): { ok: true; codes: Map<number, string> } | { ok: false; problems: string[] } {
  const codes = new Map<number, string>();
  const problems: string[] = [];
  const seen = new Map<number, string>();
  for (const [name, key] of Object.entries(keymap)) {
    const parsed = parseInputCode(name);
    if (!parsed.ok) problems.push(`keypad/keymap/${name}: ${parsed.problem}`);
    else if (parsed.value.type !== EV_KEY) problems.push(`keypad/keymap/${name}: is a switch (EV_SW), not a key; a switch can be the hook (hook.event)`);
    else if (seen.has(parsed.value.code)) problems.push(`keypad/keymap/${name}: code ${parsed.value.code} is already mapped by ${seen.get(parsed.value.code)}`);
    else {
      seen.set(parsed.value.code, name);
      codes.set(parsed.value.code, key);
    }
  }
  return problems.length > 0 ? { ok: false, problems } : { ok: true, codes };
}

export interface EvdevKeypadOptions {
  device: EvdevDevice;
  /** Input code name or number → phone key (`0`–`9`, `*`, `#` or a soft key). Default {@link DEFAULT_EVDEV_KEYMAP}. */
  keymap?: Readonly<Record<string, string>>;
  log: Logger;
}

export class EvdevKeypad implements Keypad {
  readonly #o: EvdevKeypadOptions;
  readonly #log: Logger;
  readonly #handlers: Array<(key: string) => void> = [];
  #codes = new Map<number, string>();
  #started = false;
  #closed = false;

  constructor(opts: EvdevKeypadOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'keypad' });
  }

  onKey(handler: (key: string) => void): void {
    this.#handlers.push(handler);
  }

  /** Resolve the keymap and start reading. Throws `BOARD_INVALID` for a keymap naming unknown codes. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const r = resolveKeymap(this.#o.keymap ?? DEFAULT_EVDEV_KEYMAP);
    if (!r.ok) throw new IpphoneError(r.problems.join('\n'), 'BOARD_INVALID', { problems: r.problems });
    this.#codes = r.codes;
    this.#o.device.listen({ frame: (events) => this.#frame(events) });
    await this.#o.device.start();
    this.#log.info({ path: this.#o.device.path, keys: this.#codes.size }, 'keypad started');
  }

  async close(): Promise<void> {
    if (this.#closed || !this.#started) return;
    this.#closed = true;
    await this.#o.device.close();
  }

  #frame(events: readonly InputEvent[]): void {
    if (this.#closed) return;
    for (const e of events) {
      if (e.type !== EV_KEY || e.value !== 1) continue;
      const key = this.#codes.get(e.code);
      if (key === undefined) continue;
      this.#log.debug({ key, code: e.code }, 'key pressed');
      for (const h of this.#handlers) {
        try {
          h(key);
        } catch (err) {
          this.#log.warn({ key, err: errorMessage(err) }, 'key handler threw');
        }
      }
    }
  }
}
