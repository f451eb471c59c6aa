/**
 * A hook switch the kernel drives: a `gpio-keys` node reporting it as a key
 * (`KEY_PHONE`, value 1 while held) or as a switch (`EV_SW`, an `SW_*` code,
 * e.g. with `linux,input-type = <EV_SW>`). Either way the event carries the
 * new state, not a toggle: `value === offHookValue` means the handset is
 * lifted. Autorepeats of a key (value 2) say nothing new and are ignored.
 *
 * What the state is when no event says it — Node cannot issue the EVIOCGSW /
 * EVIOCGKEY ioctls that read it from the kernel without a native addon:
 *
 * - At start: on hook. A phone boots with its handset on the cradle; if it
 *   is lifted, the first change reports it. A lifted handset at boot reads as
 *   idle until it is replaced and lifted again.
 * - After SYN_DROPPED, or a device lost and reopened: the last known state
 *   is kept, marked {@link EvdevHookSwitch.stale}, and no change is invented.
 *   A change made up from nothing would answer or hang up a call; keeping the
 *   old state costs at most a voluntary move (rebalance, fallback) made or
 *   held back by mistake until the next hook event, which carries the true
 *   state and clears the mark. Failure moves never wait for the hook.
 */
import { IpphoneError, errorMessage } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { EvdevDevice } from './evdev.js';
import type { InputEvent } from './evdev-codec.js';
import { EV_KEY, parseInputCode, type InputCode } from './input-codes.js';
import type { HookSwitch } from './types.js';

export interface EvdevHookSwitchOptions {
  device: EvdevDevice;
  /** The event: a `KEY_*`/`BTN_*`/`SW_*` name, or an `EV_KEY` code number. */
  event: string | number;
  /** The event value meaning "handset lifted": 1 (default) or 0 (a switch closed while on the cradle). */
  offHookValue?: 0 | 1;
  log: Logger;
}

export class EvdevHookSwitch implements HookSwitch {
  readonly #o: EvdevHookSwitchOptions;
  readonly #log: Logger;
  readonly #handlers: Array<(offHook: boolean) => void> = [];
  #code: InputCode | null = null;
  #offHook = false;
  #stale = false;
  #started = false;
  #closed = false;

  constructor(opts: EvdevHookSwitchOptions) {
    this.#o = opts;
    this.#log = opts.log.child({ mod: 'hook' });
  }

  /** Resolve the event and start reading. Throws `BOARD_INVALID` for an unknown event name. */
  async start(): Promise<void> {
    if (this.#started) return;
    this.#started = true;
    const parsed = parseInputCode(this.#o.event);
    if (!parsed.ok) throw new IpphoneError(`hook/event: ${parsed.problem}`, 'BOARD_INVALID', { problems: [`hook/event: ${parsed.problem}`] });
    this.#code = parsed.value;
    this.#o.device.listen({ frame: (events) => this.#frame(events), lost: (why) => this.#lost(why) });
    await this.#o.device.start();
    this.#log.info({ path: this.#o.device.path, event: this.#o.event, offHook: this.#offHook }, 'hook started');
  }

  isOffHook(): boolean {
    return this.#offHook;
  }

  /** True from lost events until the next hook event: {@link isOffHook} is the last known state, which may be old. */
  get stale(): boolean {
    return this.#stale;
  }

  onChange(handler: (offHook: boolean) => void): void {
    this.#handlers.push(handler);
  }

  async close(): Promise<void> {
    if (this.#closed || !this.#started) return;
    this.#closed = true;
    await this.#o.device.close();
  }

  #lost(why: 'dropped' | 'resynced' | 'device-lost'): void {
    if (why === 'resynced' || this.#closed) return;
    if (!this.#stale) this.#log.warn({ why, offHook: this.#offHook }, 'hook events lost; keeping the last known state until the next hook event');
    this.#stale = true;
  }

  #frame(events: readonly InputEvent[]): void {
    const c = this.#code;
    if (c === null || this.#closed) return;
    // The last event for our code in the frame is the state the frame ends in.
    let value: number | undefined;
    for (const e of events) if (e.type === c.type && e.code === c.code && !(e.type === EV_KEY && e.value === 2)) value = e.value;
    if (value === undefined) return;
    this.#stale = false;
    const offHook = value === (this.#o.offHookValue ?? 1);
    if (offHook === this.#offHook) return;
    this.#offHook = offHook;
    this.#log.info({ offHook }, offHook ? 'off hook' : 'on hook');
    for (const h of this.#handlers) {
      try {
        h(offHook);
      } catch (err) {
        this.#log.warn({ err: errorMessage(err) }, 'hook handler threw');
      }
    }
  }
}
