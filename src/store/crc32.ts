/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320) — the zlib/PNG/gzip one.
 * Check value: `crc32("123456789") === 0xCBF43926`.
 *
 * Node gained `zlib.crc32` only in 20.15 / 22.2; we use it when present (it is
 * native and faster) and fall back to a table-driven implementation otherwise.
 * Both agree bit for bit, including the running-value (`seed`) convention, so
 * slots written on one Node version verify on another.
 */
import * as zlib from 'node:zlib';

const TABLE: Uint32Array = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function toBytes(data: Uint8Array | string): Uint8Array {
  return typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
}

/**
 * Table-driven CRC-32, always available.
 * @param data bytes, or a string taken as UTF-8
 * @param seed the CRC of the preceding bytes when computing incrementally (default 0),
 *   so `crc32Table(b, crc32Table(a)) === crc32Table(a ‖ b)` — the zlib convention
 * @returns unsigned 32-bit CRC
 */
export function crc32Table(data: Uint8Array | string, seed = 0): number {
  const bytes = toBytes(data);
  let c = (seed ^ 0xffffffff) >>> 0;
  for (let i = 0; i < bytes.length; i++) {
    c = (TABLE[(c ^ bytes[i]!) & 0xff]! ^ (c >>> 8)) >>> 0;
  }
  return (c ^ 0xffffffff) >>> 0;
}

type NativeCrc32 = (data: string | NodeJS.ArrayBufferView, value?: number) => number;

/** `zlib.crc32` when this Node has it (≥ 20.15 / 22.2), else undefined. */
export const nativeCrc32: NativeCrc32 | undefined =
  typeof (zlib as { crc32?: unknown }).crc32 === 'function' ? (zlib as { crc32: NativeCrc32 }).crc32 : undefined;

/**
 * CRC-32 of `data` (same contract as {@link crc32Table}); native when available.
 * @returns unsigned 32-bit CRC
 */
export function crc32(data: Uint8Array | string, seed = 0): number {
  if (nativeCrc32 !== undefined) return nativeCrc32(toBytes(data), seed) >>> 0;
  return crc32Table(data, seed);
}
