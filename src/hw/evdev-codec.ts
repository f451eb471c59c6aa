/**
 * `struct input_event` as the kernel writes it to `/dev/input/eventN`
 * (`include/uapi/linux/input.h`), and the frames it groups events into. Pure:
 * no I/O, so both layouts and every SYN rule are tested on byte buffers.
 *
 * Layout: a `struct timeval` (seconds and microseconds, each a C `long`:
 * `__kernel_ulong_t` since the y2038 rework, so still the word size), then
 * `__u16 type`, `__u16 code`, `__s32 value`. The kernel writes the layout of
 * the *reading process* (a 32-bit process on a 64-bit kernel gets the 16-byte
 * compat records), so the size follows Node's `process.arch`, not `uname -m`:
 * 24 bytes on 64-bit (2 × 8 + 2 + 2 + 4), 16 on 32-bit (2 × 4 + 2 + 2 + 4).
 * Debian armhf's move to a 64-bit `time_t` does not change it. Byte order is
 * the CPU's; every architecture in {@link ARCH_LAYOUTS} is little-endian
 * (ppc64 means ppc64le: Node ships no big-endian ppc64), and a big-endian one
 * (s390x, mips) is refused rather than misread.
 *
 * Frames: the kernel sends the events of one hardware change, then
 * `EV_SYN`/`SYN_REPORT`; a reader acts on whole frames. When a client's queue
 * overflows the kernel drops events and queues `SYN_DROPPED`; the rule
 * (Documentation/input/event-codes.rst) is to discard everything up to and
 * including the next `SYN_REPORT` and then re-read the device state
 * (EVIOCG* ioctls — which Node cannot issue without an addon; the hook switch
 * says what it does instead, src/hw/evdev-hook.ts).
 */
import { EV_SYN, SYN_DROPPED, SYN_REPORT } from './input-codes.js';

/** One input event, time left out (nothing here needs it). */
export interface InputEvent {
  type: number;
  code: number;
  value: number;
}

/** Bytes per record and where its fields start. */
export interface EvdevLayout {
  /** 24 (64-bit) or 16 (32-bit). */
  size: 16 | 24;
  /** Offset of `type` (after the timeval): 16 or 8. */
  typeOffset: 16 | 8;
}

const L64: EvdevLayout = { size: 24, typeOffset: 16 };
const L32: EvdevLayout = { size: 16, typeOffset: 8 };

/** The little-endian `process.arch` values the agent reads input on, by word size. */
export const ARCH_LAYOUTS: Readonly<Record<string, EvdevLayout>> = {
  x64: L64,
  arm64: L64,
  riscv64: L64,
  loong64: L64,
  ppc64: L64,
  arm: L32,
  ia32: L32,
};

/** The record layout for `arch` (default `process.arch`); null for an architecture this reader does not claim. */
export function layoutFor(arch: string = process.arch): EvdevLayout | null {
  return ARCH_LAYOUTS[arch] ?? null;
}

/**
 * Decode the whole records in `buf`; the bytes of a trailing partial record
 * (a FIFO may split one; the kernel never does) are returned as `rest`, to be
 * put in front of the next read.
 */
export function decodeEvents(buf: Buffer, layout: EvdevLayout): { events: InputEvent[]; rest: Buffer } {
  const events: InputEvent[] = [];
  let off = 0;
  for (; off + layout.size <= buf.length; off += layout.size) {
    const t = off + layout.typeOffset;
    events.push({ type: buf.readUInt16LE(t), code: buf.readUInt16LE(t + 2), value: buf.readInt32LE(t + 4) });
  }
  return { events, rest: Buffer.from(buf.subarray(off)) };
}

/**
 * Encode events as the kernel would for `layout` (tests, and the FIFO
 * feeders that stand in for a device). `sec`/`usec` fill the timeval.
 */
export function encodeEvents(events: readonly InputEvent[], layout: EvdevLayout, sec = 0, usec = 0): Buffer {
  const out = Buffer.alloc(events.length * layout.size);
  events.forEach((e, i) => {
    const off = i * layout.size;
    if (layout.size === 24) {
      out.writeBigUInt64LE(BigInt(sec), off);
      out.writeBigUInt64LE(BigInt(usec), off + 8);
    } else {
      out.writeUInt32LE(sec >>> 0, off);
      out.writeUInt32LE(usec >>> 0, off + 4);
    }
    out.writeUInt16LE(e.type, off + layout.typeOffset);
    out.writeUInt16LE(e.code, off + layout.typeOffset + 2);
    out.writeInt32LE(e.value, off + layout.typeOffset + 4);
  });
  return out;
}

/** What one event did to the frame being collected. */
export type FrameStep =
  | { kind: 'none' }
  /** A SYN_REPORT ended a frame: act on these events (never SYN events). */
  | { kind: 'frame'; events: InputEvent[] }
  /** SYN_DROPPED: the frame so far is gone, and so is everything up to the next SYN_REPORT. */
  | { kind: 'dropped' }
  /** The SYN_REPORT after a SYN_DROPPED: events flow again; state learnt before the drop may be stale. */
  | { kind: 'resynced' };

/**
 * Groups events into frames by the kernel's SYN rules. `reset()` is for a
 * reopened device: a frame cut by the loss is dropped as after SYN_DROPPED.
 */
export class EvdevFramer {
  #pending: InputEvent[] = [];
  #dropping = false;

  push(e: InputEvent): FrameStep {
    if (e.type === EV_SYN && e.code === SYN_DROPPED) {
      this.#pending = [];
      this.#dropping = true;
      return { kind: 'dropped' };
    }
    if (e.type === EV_SYN && e.code === SYN_REPORT) {
      const events = this.#pending;
      this.#pending = [];
      if (this.#dropping) {
        this.#dropping = false;
        return { kind: 'resynced' };
      }
      return events.length > 0 ? { kind: 'frame', events } : { kind: 'none' };
    }
    // SYN_CONFIG, SYN_MT_REPORT and other SYN codes carry nothing a keypad needs.
    if (e.type === EV_SYN || this.#dropping) return { kind: 'none' };
    this.#pending.push(e);
    return { kind: 'none' };
  }

  /** Forget a partial frame (the device went away mid-frame). */
  reset(): void {
    this.#pending = [];
    this.#dropping = false;
  }
}
