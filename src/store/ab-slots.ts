/**
 * Two redundant copies of one small record, as U-Boot's redundant environment
 * keeps them: `<name>.a` and `<name>.b`, each with a sequence number and a
 * CRC-32. A write always replaces the slot that is NOT the newest valid one, so
 * a power cut mid-write can only damage the older copy; boot takes the newest
 * slot that verifies.
 *
 * Slot layout (little-endian):
 *
 * | offset | size | field |
 * | --- | --- | --- |
 * | 0 | 4 | magic `"IPST"` |
 * | 4 | 1 | format version = 1 |
 * | 5 | 3 | reserved, zero |
 * | 8 | 4 | seq (u32, wraps; compared by RFC 1982 serial arithmetic) |
 * | 12 | 4 | payload length in bytes |
 * | 16 | 4 | CRC-32 over bytes 0–15 followed by the payload |
 * | 20 | n | payload |
 */
import * as path from 'node:path';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { crc32 } from './crc32.js';
import { errnoCode, nodeDurableFs, overwriteFile, removeStaleTemps, type DurableFs } from './durable-file.js';

export type SlotName = 'a' | 'b';

export const SLOT_MAGIC = Buffer.from('IPST', 'ascii');
export const SLOT_FORMAT_VERSION = 1;
/** Header size in bytes; the payload follows. */
export const SLOT_HEADER_BYTES = 20;
const CRC_OFFSET = 16;
/** Default cap on a payload: 1 MiB. The agent state is a few KiB at most. */
export const DEFAULT_MAX_PAYLOAD_BYTES = 1024 * 1024;

export type SlotProblemKind =
  | 'missing'
  | 'unreadable'
  | 'short'
  | 'bad-magic'
  | 'bad-version'
  | 'bad-length'
  | 'bad-crc'
  | 'bad-content';

/** Why one slot could not be used. */
export interface SlotProblem {
  slot: SlotName;
  kind: SlotProblemKind;
  /** Human-readable reason, starting with the kind in words (e.g. "bad CRC (stored …, computed …)"). */
  detail: string;
}

export type DecodedSlot =
  | { ok: true; seq: number; payload: Buffer }
  | { ok: false; kind: Exclude<SlotProblemKind, 'missing' | 'unreadable' | 'bad-content'>; detail: string };

const hex = (n: number): string => `0x${n.toString(16).padStart(8, '0')}`;

/** Serialise one slot. `seq` is taken modulo 2^32. */
export function encodeSlot(seq: number, payload: Uint8Array): Buffer {
  const buf = Buffer.alloc(SLOT_HEADER_BYTES + payload.length);
  SLOT_MAGIC.copy(buf, 0);
  buf.writeUInt8(SLOT_FORMAT_VERSION, 4);
  buf.writeUInt32LE(seq >>> 0, 8);
  buf.writeUInt32LE(payload.length, 12);
  buf.set(payload, SLOT_HEADER_BYTES);
  const crc = crc32(buf.subarray(SLOT_HEADER_BYTES), crc32(buf.subarray(0, CRC_OFFSET)));
  buf.writeUInt32LE(crc, CRC_OFFSET);
  return buf;
}

/** Parse and verify one slot's bytes; never throws. */
export function decodeSlot(buf: Buffer, maxPayloadBytes = DEFAULT_MAX_PAYLOAD_BYTES): DecodedSlot {
  if (buf.length < SLOT_HEADER_BYTES) {
    return { ok: false, kind: 'short', detail: `short (${buf.length} bytes, header needs ${SLOT_HEADER_BYTES})` };
  }
  if (!buf.subarray(0, 4).equals(SLOT_MAGIC)) {
    return { ok: false, kind: 'bad-magic', detail: `bad magic (${JSON.stringify(buf.subarray(0, 4).toString('latin1'))})` };
  }
  const version = buf.readUInt8(4);
  if (version !== SLOT_FORMAT_VERSION) {
    return { ok: false, kind: 'bad-version', detail: `unsupported format version ${version}` };
  }
  const length = buf.readUInt32LE(12);
  const actual = buf.length - SLOT_HEADER_BYTES;
  if (length > maxPayloadBytes || length !== actual) {
    return { ok: false, kind: 'bad-length', detail: `bad length (header says ${length} payload bytes, file has ${actual})` };
  }
  const stored = buf.readUInt32LE(CRC_OFFSET);
  const payload = buf.subarray(SLOT_HEADER_BYTES);
  const computed = crc32(payload, crc32(buf.subarray(0, CRC_OFFSET)));
  if (stored !== computed) {
    return { ok: false, kind: 'bad-crc', detail: `bad CRC (stored ${hex(stored)}, computed ${hex(computed)})` };
  }
  return { ok: true, seq: buf.readUInt32LE(8), payload };
}

/**
 * RFC 1982 serial-number comparison for 32-bit sequence numbers: 1 when `a`
 * is newer than `b`, -1 when older, 0 when equal. So 0 is newer than
 * 0xFFFFFFFF. The undefined case (distance exactly 2^31) never arises between
 * our two slots (they differ by 1); it is decided by plain magnitude.
 */
export function seqCompare(a: number, b: number): -1 | 0 | 1 {
  a >>>= 0;
  b >>>= 0;
  if (a === b) return 0;
  const forward = (a - b) >>> 0; // how far a is ahead of b, modulo 2^32
  if (forward === 0x80000000) return a > b ? 1 : -1;
  return forward < 0x80000000 ? 1 : -1;
}

/** The sequence number after `seq`, wrapping at 2^32. */
export function seqNext(seq: number): number {
  return (seq + 1) >>> 0;
}

export interface SlotRecord {
  payload: Buffer;
  seq: number;
  slot: SlotName;
}

export type SlotLoadResult =
  | (SlotRecord & { problems: string[]; invalid: SlotProblem[] })
  | { payload: null; problems: string[]; invalid: SlotProblem[] };

export interface AbSlotsOptions {
  /** Directory holding the slots; created (mode 0700) by {@link AbSlots.open}. */
  dir: string;
  /** Base file name; the slots are `<name>.a` and `<name>.b`. */
  name: string;
  fs?: DurableFs;
  /**
   * Extra check of a CRC-valid payload; return a reason to treat the slot as
   * invalid (`bad-content`), or null to accept it.
   */
  validate?: (payload: Buffer) => string | null;
  /** Largest payload accepted on read and write, bytes; default 1 MiB. */
  maxPayloadBytes?: number;
}

const SLOTS: readonly SlotName[] = ['a', 'b'];
const other = (slot: SlotName): SlotName => (slot === 'a' ? 'b' : 'a');

/** A pair of A/B slot files. Reads and writes are serialised, never interleaved. */
export class AbSlots {
  readonly dir: string;
  readonly name: string;
  private readonly fs: DurableFs;
  private readonly validate: ((payload: Buffer) => string | null) | undefined;
  private readonly maxPayloadBytes: number;
  private opening: Promise<string[]> | undefined;
  /** Newest valid slot as last seen by a scan or written by us; undefined before the first scan. */
  private current: { slot: SlotName; seq: number } | null | undefined;
  /** Slot files known to exist (scan or our own writes): writing a new one also syncs the directory. */
  private readonly present = new Set<SlotName>();
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: AbSlotsOptions) {
    this.dir = opts.dir;
    this.name = opts.name;
    this.fs = opts.fs ?? nodeDurableFs;
    this.validate = opts.validate;
    this.maxPayloadBytes = opts.maxPayloadBytes ?? DEFAULT_MAX_PAYLOAD_BYTES;
  }

  /** Full path of one slot file. */
  path(slot: SlotName): string {
    return path.join(this.dir, `${this.name}.${slot}`);
  }

  /**
   * Create the directory (mode 0700) and delete temp files an interrupted
   * write of an earlier build (temp file + rename) left behind. Idempotent;
   * {@link load} and {@link write} call it.
   * @returns the names of the temp files removed when the slots were opened
   */
  open(): Promise<string[]> {
    this.opening ??= (async () => {
      await this.fs.mkdir(this.dir, 0o700);
      return removeStaleTemps(this.dir, `${this.name}.`, this.fs);
    })().catch((err: unknown) => {
      this.opening = undefined; // let a later call retry
      throw err;
    });
    return this.opening;
  }

  /** Read both slots and return the newest valid one, with the reason each invalid slot was skipped. */
  async load(): Promise<SlotLoadResult> {
    await this.open();
    return this.enqueue(() => this.scan());
  }

  /**
   * Write `payload` to the slot that is not the newest valid one, with seq =
   * newest + 1 (1 when none is valid), durably. Rejects with the fs error
   * (the newest valid slot is untouched either way), or with
   * `PAYLOAD_TOO_LARGE` when `payload` exceeds the cap.
   */
  async write(payload: Uint8Array): Promise<{ slot: SlotName; seq: number }> {
    if (payload.length > this.maxPayloadBytes) {
      throw new IpphoneError('state payload too large', 'PAYLOAD_TOO_LARGE', {
        bytes: payload.length,
        max: this.maxPayloadBytes,
      });
    }
    await this.open();
    return this.enqueue(async () => {
      if (this.current === undefined) await this.scan();
      const cur = this.current ?? null;
      const slot: SlotName = cur === null ? 'a' : other(cur.slot);
      const seq = cur === null ? 1 : seqNext(cur.seq);
      // In place: the slot written is never the newest valid one, so a torn write
      // costs nothing but this copy (its CRC fails; boot takes the other).
      await overwriteFile(this.path(slot), encodeSlot(seq, payload), { created: !this.present.has(slot) }, this.fs);
      this.present.add(slot);
      this.current = { slot, seq };
      return { slot, seq };
    });
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }

  private async scan(): Promise<SlotLoadResult> {
    const invalid: SlotProblem[] = [];
    let best: SlotRecord | null = null;
    for (const slot of SLOTS) {
      const res = await this.readSlot(slot);
      if (!('kind' in res) || res.kind !== 'missing') this.present.add(slot);
      else this.present.delete(slot);
      if ('kind' in res) {
        invalid.push(res);
        continue;
      }
      if (best === null || seqCompare(res.seq, best.seq) > 0) best = res;
    }
    const problems = invalid.map((p) => `${p.slot}: ${p.detail}`);
    this.current = best === null ? null : { slot: best.slot, seq: best.seq };
    return best === null ? { payload: null, problems, invalid } : { ...best, problems, invalid };
  }

  private async readSlot(slot: SlotName): Promise<SlotRecord | SlotProblem> {
    let buf: Buffer;
    try {
      buf = await this.fs.readFile(this.path(slot));
    } catch (err) {
      const code = errnoCode(err);
      if (code === 'ENOENT') return { slot, kind: 'missing', detail: 'missing' };
      return { slot, kind: 'unreadable', detail: `unreadable (${code ?? String(err)})` };
    }
    const dec = decodeSlot(buf, this.maxPayloadBytes);
    if (!dec.ok) return { slot, kind: dec.kind, detail: dec.detail };
    let rejected: string | null;
    try {
      rejected = this.validate?.(dec.payload) ?? null;
    } catch (err) {
      rejected = errorMessage(err);
    }
    if (rejected !== null) return { slot, kind: 'bad-content', detail: `invalid content (${rejected})` };
    return { slot, seq: dec.seq, payload: dec.payload };
  }
}

/**
 * The safe integer field `field` of a slot's JSON payload when it is at least
 * `min`, else null (not JSON, missing, fractional, out of range): the reader
 * of the call manager's one-number state files (boot sequence, version lease).
 */
export function slotInteger(payload: Buffer, field: string, min: number): number | null {
  try {
    const v = (JSON.parse(payload.toString('utf8')) as Record<string, unknown>)[field];
    return typeof v === 'number' && Number.isSafeInteger(v) && v >= min ? v : null;
  } catch {
    return null;
  }
}
