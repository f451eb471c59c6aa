// Stands in for node:zlib where src/store/crc32.ts imports it (scripts/bundle.mjs),
// only to use `zlib.crc32` when this Node has it: without it crc32.ts uses its
// table-driven CRC-32, bit for bit the same (test/unit/store/crc32.test.ts), and
// a state slot is a few hundred bytes, so the difference is microseconds a write.
// Loading node:zlib costs about 1.3 MiB of RSS on Node 20 under --jitless.
export const crc32 = undefined;
