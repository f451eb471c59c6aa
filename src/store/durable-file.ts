/**
 * Crash-safe whole-file replacement, in the style of balena-supervisor's
 * `fs-utils.ts` `writeAndSyncFile` + `safeRename`: write a temp file next to
 * the target, fsync it, rename it over the target, fsync the directory. After
 * a power cut the target holds either the old or the new bytes, never a mix
 * (on filesystems where rename is atomic — ext4, f2fs, ubifs, jffs2).
 *
 * All file access goes through the small {@link DurableFs} facade so tests can
 * record the call order and inject failures (ENOSPC, EIO).
 */
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';

/** An open file or directory, as returned by {@link DurableFs.open}. Opaque to callers. */
export interface FsHandle {
  readonly fd: number;
}

/** The file operations the store uses; nothing else touches the disk. */
export interface DurableFs {
  /** `flags` as for `fs.open` (`'w'`, `'r'`); `mode` for created files. */
  open(file: string, flags: string, mode?: number): Promise<FsHandle>;
  /** Write `length` bytes of `data` from `offset`; returns how many were written (may be fewer). */
  write(handle: FsHandle, data: Uint8Array, offset: number, length: number): Promise<number>;
  fsync(handle: FsHandle): Promise<void>;
  close(handle: FsHandle): Promise<void>;
  rename(from: string, to: string): Promise<void>;
  readFile(file: string): Promise<Buffer>;
  unlink(file: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  /** Recursive; no error when it exists. */
  mkdir(dir: string, mode: number): Promise<void>;
}

/** The real {@link DurableFs}, on `node:fs/promises`. */
export const nodeDurableFs: DurableFs = {
  open: (file, flags, mode) => fsp.open(file, flags, mode),
  async write(handle, data, offset, length) {
    const { bytesWritten } = await (handle as fsp.FileHandle).write(data, offset, length);
    return bytesWritten;
  },
  fsync: (handle) => (handle as fsp.FileHandle).sync(),
  close: (handle) => (handle as fsp.FileHandle).close(),
  rename: (from, to) => fsp.rename(from, to),
  readFile: (file) => fsp.readFile(file),
  unlink: (file) => fsp.unlink(file),
  readdir: (dir) => fsp.readdir(dir),
  async mkdir(dir, mode) {
    await fsp.mkdir(dir, { recursive: true, mode });
  },
};

/** The marker in temp file names: `<target>.tmp-<pid>`. */
export const TEMP_MARKER = '.tmp-';

/** Error code of a Node system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Directory fsync is not possible everywhere (Windows: EISDIR/EPERM; some FUSE
 * filesystems: EINVAL). There the rename is as durable as the platform allows,
 * so these codes are not failures.
 */
const DIR_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'ENOTSUP']);

/**
 * Replace `file` with `data` durably: open `file.tmp-<pid>` (mode 0600,
 * truncating), write all bytes, fsync, close, rename over `file`, then open and
 * fsync the directory so the rename itself survives power loss.
 *
 * On failure the temp file is removed (best effort), `file` is untouched unless
 * the rename already happened, and the original error is rethrown.
 */
export async function writeFileDurable(file: string, data: Uint8Array, fs: DurableFs = nodeDurableFs): Promise<void> {
  const tmp = `${file}${TEMP_MARKER}${process.pid}`;
  let renamed = false;
  try {
    const handle = await fs.open(tmp, 'w', 0o600);
    try {
      let offset = 0;
      while (offset < data.length) {
        const n = await fs.write(handle, data, offset, data.length - offset);
        // A zero-byte write would loop forever; the disk is not taking data.
        if (n <= 0) throw Object.assign(new Error(`short write to ${tmp}`), { code: 'EIO' });
        offset += n;
      }
      await fs.fsync(handle);
    } catch (err) {
      // Keep the first error; a failing close after it adds nothing.
      await fs.close(handle).catch(() => undefined);
      throw err;
    }
    await fs.close(handle);
    await fs.rename(tmp, file);
    renamed = true;
    await fsyncDir(path.dirname(file), fs);
  } catch (err) {
    if (!renamed) await fs.unlink(tmp).catch(() => undefined);
    throw err;
  }
}

/** fsync a directory so entries created/renamed in it are durable. */
export async function fsyncDir(dir: string, fs: DurableFs = nodeDurableFs): Promise<void> {
  let handle: FsHandle;
  try {
    handle = await fs.open(dir, 'r');
  } catch (err) {
    if (DIR_FSYNC_UNSUPPORTED.has(errnoCode(err) ?? '')) return;
    throw err;
  }
  try {
    await fs.fsync(handle);
  } catch (err) {
    await fs.close(handle).catch(() => undefined);
    if (DIR_FSYNC_UNSUPPORTED.has(errnoCode(err) ?? '')) return;
    throw err;
  }
  await fs.close(handle);
}

/**
 * Delete temp files left by an interrupted {@link writeFileDurable}: every entry
 * of `dir` whose name starts with `prefix` and contains `.tmp-`. Call at boot,
 * before any write of this process. A missing `dir` is not an error.
 * @returns the names removed
 */
export async function removeStaleTemps(dir: string, prefix: string, fs: DurableFs = nodeDurableFs): Promise<string[]> {
  let names: string[];
  try {
    names = await fs.readdir(dir);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return [];
    throw err;
  }
  const removed: string[] = [];
  for (const name of names) {
    if (!name.startsWith(prefix) || !name.slice(prefix.length).includes(TEMP_MARKER)) continue;
    try {
      await fs.unlink(path.join(dir, name));
      removed.push(name);
    } catch (err) {
      // Someone else removed it meanwhile: that is the outcome we wanted.
      if (errnoCode(err) !== 'ENOENT') throw err;
    }
  }
  return removed;
}
