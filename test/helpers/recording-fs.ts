/**
 * A real filesystem (node:fs) for store tests that records each call as
 * `op name` (names relative to `dir`) and fails chosen operations with an
 * injected errno, to check call order and fault handling of flash writes.
 */
import * as path from 'node:path';
import { nodeDurableFs, type DurableFs, type FsHandle } from '../../src/store/durable-file.js';

export type Op = keyof DurableFs;

/** Real fs that records `op name` lines (names relative to `dir`) and fails chosen ops. */
export function recordingFs(dir: string, opts: { maxWrite?: number } = {}) {
  const calls: string[] = [];
  const faults = new Map<Op, string>();
  const names = new Map<FsHandle, string>();
  const rel = (p: string) => (p === dir ? 'DIR' : path.relative(dir, p));
  const check = (op: Op) => {
    const code = faults.get(op);
    if (code !== undefined) throw Object.assign(new Error(`${code}: injected on ${op}`), { code });
  };
  const fs: DurableFs = {
    async open(file, flags, mode) {
      calls.push(`open ${rel(file)}`);
      check('open');
      const h = await nodeDurableFs.open(file, flags, mode);
      names.set(h, rel(file));
      return h;
    },
    async write(h, data, offset, length) {
      calls.push(`write ${names.get(h)}`);
      check('write');
      return nodeDurableFs.write(h, data, offset, Math.min(length, opts.maxWrite ?? length));
    },
    async fsync(h) {
      calls.push(`fsync ${names.get(h)}`);
      check('fsync');
      return nodeDurableFs.fsync(h);
    },
    async close(h) {
      calls.push(`close ${names.get(h)}`);
      return nodeDurableFs.close(h);
    },
    readFile: (f) => nodeDurableFs.readFile(f),
    async unlink(f) {
      calls.push(`unlink ${rel(f)}`);
      return nodeDurableFs.unlink(f);
    },
    readdir: (d) => nodeDurableFs.readdir(d),
    mkdir: (d, m) => nodeDurableFs.mkdir(d, m),
  };
  return { fs, calls, faults };
}

