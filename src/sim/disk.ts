/**
 * Flash or disk in memory, under the real A/B slot store (src/store/ab-slots.ts)
 * through its DurableFs port. Each operation takes simulated time (a few ms),
 * so a power cut can land in the middle of a save. What a cut leaves of a file
 * written since its last fsync is drawn from the seed: the old bytes, nothing,
 * a torn prefix of the new bytes, or all of them — what NAND with no
 * guarantees beyond fsync may do.
 */
import * as path from 'node:path';
import type { DurableFs, FsHandle } from '../store/durable-file.js';
import type { Rng } from './rng.js';
import type { World } from './world.js';

interface SimFile {
  /** What survives a power cut for certain. */
  durable: Buffer | null;
  /** What reads see now. */
  live: Buffer | null;
}

interface Handle extends FsHandle {
  file: string;
  epoch: number;
}

function enoent(file: string): Error {
  return Object.assign(new Error(`ENOENT: no such file or directory, open '${file}'`), { code: 'ENOENT' });
}

export class SimDisk {
  readonly #files = new Map<string, SimFile>();
  readonly #dirs = new Set<string>();
  /** Bumped by a power cut or process death: operations of the old epoch never complete. */
  #epoch = 0;
  #fd = 3;
  writes = 0;
  /** A disk whose fsync does nothing (a planted defect for the durable checker's self-test). */
  lyingFsync = false;

  constructor(
    readonly world: World,
    readonly rng: Rng,
  ) {}

  /** A DurableFs for the process now running; its pending operations die with {@link cut}/{@link revoke}. */
  fs(): DurableFs {
    const epoch = this.#epoch;
    const op = <T>(fn: () => T): Promise<T> =>
      new Promise<T>((resolve, reject) => {
        this.world.after(this.rng.int(1, 4), () => {
          if (epoch !== this.#epoch) return; // the process is gone: the promise never settles
          try {
            resolve(fn());
          } catch (err) {
            reject(err);
          }
        });
      });
    return {
      open: (file, flags) =>
        op(() => {
          let f = this.#files.get(file);
          if (flags.startsWith('r')) {
            if (this.#dirs.has(file)) return { fd: this.#fd++, file, epoch } as Handle;
            if (f === undefined || f.live === null) throw enoent(file);
          } else {
            if (!this.#dirs.has(path.dirname(file))) throw enoent(file);
            if (f === undefined) this.#files.set(file, (f = { durable: null, live: Buffer.alloc(0) }));
            if (flags.startsWith('w')) f.live = Buffer.alloc(0);
          }
          return { fd: this.#fd++, file, epoch } as Handle;
        }),
      write: (h, data, offset, length) =>
        op(() => {
          const armed = this.#armed;
          if (armed !== undefined) {
            // The power goes in the middle of this write: part of it reached the flash's cache.
            this.#armed = undefined;
            const f = this.#files.get((h as Handle).file)!;
            f.live = Buffer.concat([f.live ?? Buffer.alloc(0), Buffer.from(data.subarray(offset, offset + this.rng.int(0, length)))]);
            armed();
            return new Promise<number>(() => undefined) as unknown as number;
          }
          const f = this.#files.get((h as Handle).file)!;
          f.live = Buffer.concat([f.live ?? Buffer.alloc(0), Buffer.from(data.subarray(offset, offset + length))]);
          this.writes++;
          return length;
        }),
      fsync: (h) =>
        op(() => {
          const f = this.#files.get((h as Handle).file);
          if (f !== undefined && !this.lyingFsync) f.durable = f.live === null ? null : Buffer.from(f.live);
        }),
      close: () => op(() => undefined),
      readFile: (file) =>
        op(() => {
          const f = this.#files.get(file);
          if (f === undefined || f.live === null) throw enoent(file);
          return Buffer.from(f.live);
        }),
      unlink: (file) =>
        op(() => {
          const f = this.#files.get(file);
          if (f === undefined || f.live === null) throw enoent(file);
          f.live = null;
        }),
      readdir: (dir) =>
        op(() => {
          if (!this.#dirs.has(dir)) throw enoent(dir);
          return [...this.#files.entries()].filter(([p, f]) => path.dirname(p) === dir && f.live !== null).map(([p]) => path.basename(p)).sort();
        }),
      mkdir: (dir) =>
        op(() => {
          for (let d = dir; d !== path.dirname(d); d = path.dirname(d)) this.#dirs.add(d);
        }),
    };
  }

  #armed: (() => void) | undefined;

  /** Call `cut` in the middle of the next write (a power cut timed to a save); undefined disarms. */
  armCut(cut: (() => void) | undefined): void {
    this.#armed = cut;
  }

  /** The process died (kill -9): its pending operations never complete; what it wrote stays (the kernel has it). */
  revoke(): void {
    this.#epoch++;
  }

  /**
   * Power cut: pending operations die, and every file written since its last
   * fsync is left as the seed says: old, empty, torn or new.
   */
  cut(): number {
    this.#epoch++;
    let torn = 0;
    for (const f of this.#files.values()) {
      const live = f.live;
      if (live !== null && f.durable !== null && live.equals(f.durable)) continue;
      if (live === null && f.durable === null) continue;
      const r = this.lyingFsync ? 0 : this.rng.int(0, 3);
      if (r === 0) f.live = f.durable;
      else if (r === 1) f.live = Buffer.alloc(0);
      else if (r === 2 && live !== null) f.live = live.subarray(0, this.rng.int(0, live.length));
      // Torn: what survives is neither the old bytes nor nothing (a prefix of a write, or a write cut short).
      if (f.live !== null && f.live.length > 0 && (f.durable === null || !f.live.equals(f.durable))) torn++;
      f.durable = f.live === null ? null : Buffer.from(f.live);
    }
    return torn;
  }

  /** Everything gone (a reinstalled call manager's empty state directory). */
  wipe(): void {
    this.#epoch++;
    this.#files.clear();
    this.#dirs.clear();
  }
}
