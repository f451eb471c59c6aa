/**
 * Durable file writes for the A/B slot store: overwrite a slot in place and
 * fsync it (and its directory when the file is new); clean up temp files that
 * earlier builds (temp file + rename) may have left.
 *
 * All file access goes through the small {@link DurableFs} facade so tests can
 * record the call order and inject failures (ENOSPC, EIO).
 */
import * as fs from 'node:fs';
import * as fsp from 'node:fs/promises';
import * as path from 'node:path';
import { promisify } from 'node:util';

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
  readFile(file: string): Promise<Buffer>;
  unlink(file: string): Promise<void>;
  readdir(dir: string): Promise<string[]>;
  /** Recursive; no error when it exists. */
  mkdir(dir: string, mode: number): Promise<void>;
}

const openFd = promisify(fs.open);
const writeFd = promisify(fs.write);
const fsyncFd = promisify(fs.fsync);
const closeFd = promisify(fs.close);

/**
 * The real {@link DurableFs}. Descriptors through node:fs's callback API, not
 * fs/promises FileHandles (an EventEmitter and a finalizer each), which were
 * a visible part of a 2,000-phone fleet's CPU when every phone saved at once.
 */
export const nodeDurableFs: DurableFs = {
  open: async (file, flags, mode) => ({ fd: await openFd(file, flags, mode) }),
  write: async (handle, data, offset, length) => (await writeFd(handle.fd, data, offset, length, null)).bytesWritten,
  fsync: (handle) => fsyncFd(handle.fd),
  close: (handle) => closeFd(handle.fd),
  readFile: (file) => fsp.readFile(file),
  unlink: (file) => fsp.unlink(file),
  readdir: (dir) => fsp.readdir(dir),
  async mkdir(dir, mode) {
    await fsp.mkdir(dir, { recursive: true, mode });
  },
};

/** The marker in the temp file names of earlier builds: `<target>.tmp-<pid>`. */
export const TEMP_MARKER = '.tmp-';

/** Error code of a Node system error, if any. */
export function errnoCode(err: unknown): string | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

/**
 * Directory fsync is not possible everywhere (Windows: EISDIR/EPERM; some FUSE
 * filesystems: EINVAL). There a new entry is as durable as the platform
 * allows, so these codes are not failures.
 */
const DIR_FSYNC_UNSUPPORTED = new Set(['EISDIR', 'EINVAL', 'EPERM', 'ENOTSUP']);

/**
 * Overwrite `file` with `data` in place and make it durable: open it
 * (creating it with mode 0600, truncating), write every byte, fsync, close;
 * then, when `created` says the directory entry may be new, fsync the
 * directory so the entry survives power loss too.
 *
 * NOT atomic: a crash or power cut mid-way leaves `file` empty or torn. That is
 * the A/B slot store's design (ab-slots.ts): every copy carries a CRC, the
 * write goes to the copy that is not the newest valid one, and a torn copy is
 * simply skipped at boot. Against temp-file-and-rename it spares a new inode,
 * a rename and a directory fsync per write — fewer flash metadata writes, and
 * half the system calls.
 *
 * On failure the file is closed and the first error rethrown.
 */
export async function overwriteFile(file: string, data: Uint8Array, opts: { created: boolean }, fs: DurableFs = nodeDurableFs): Promise<void> {
  const handle = await fs.open(file, 'w', 0o600);
  try {
    let offset = 0;
    while (offset < data.length) {
      const n = await fs.write(handle, data, offset, data.length - offset);
      // A zero-byte write would loop forever; the disk is not taking data.
      if (n <= 0) throw Object.assign(new Error(`short write to ${file}`), { code: 'EIO' });
      offset += n;
    }
    await fs.fsync(handle);
  } catch (err) {
    // Keep the first error; a failing close after it adds nothing.
    await fs.close(handle).catch(() => undefined);
    throw err;
  }
  await fs.close(handle);
  if (opts.created) await fsyncDir(path.dirname(file), fs);
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
 * Delete temp files an interrupted write of an earlier build (temp file, then
 * rename) left behind: every entry
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
