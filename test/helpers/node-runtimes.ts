/**
 * The Node lines the image supports (20, 22, 24), each with the image's native
 * addons built for it, and a staged image per runtime.
 *
 * `scripts/node-runtimes.mjs` obtains them (idempotent: cached after the first
 * run; .ci/run calls it before `npm test`). Tests call it again so that a
 * developer's `npx ava` works too; a runtime it cannot provide is an error,
 * never a skip.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { ROOT } from './programs.js';

/** The majors `engines` promises; each must be tested. */
export const SUPPORTED_MAJORS = [20, 22, 24] as const;
export type Major = (typeof SUPPORTED_MAJORS)[number];

export interface NodeRuntime {
  major: Major;
  /** `vX.Y.Z` as the binary reports it. */
  version: string;
  /** Absolute path of the node binary. */
  node: string;
  /** A node_modules directory holding the image's addon packages built for this runtime. */
  addons: string;
}

let all: Record<string, Omit<NodeRuntime, 'major'>> | undefined;

/** The runtime for `major`, fetched and its addons built if not yet cached (throws with the script's output if it cannot). */
export function nodeRuntime(major: Major): NodeRuntime {
  if (all === undefined) {
    try {
      let out = '';
      // Locked: a cold cache means downloads and compiles that two test files must not do into the same place at once.
      withLock('runtimes', () => {
        out = execFileSync(process.execPath, [join(ROOT, 'scripts/node-runtimes.mjs'), '--json', ...SUPPORTED_MAJORS.map(String)], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
      });
      all = JSON.parse(out) as Record<string, Omit<NodeRuntime, 'major'>>;
    } catch (err) {
      const e = err as { message: string; stderr?: string };
      throw new Error(`scripts/node-runtimes.mjs could not provide Node ${SUPPORTED_MAJORS.join('/')}: ${e.message}\n${e.stderr ?? ''}`);
    }
  }
  const rt = all[String(major)];
  if (rt === undefined || !existsSync(rt.node)) throw new Error(`Node ${major} is not available (scripts/node-runtimes.mjs gave ${JSON.stringify(rt)})`);
  return { major, ...rt };
}

/** Newest modification time (ms) of any file below `dir`. */
export function newest(dir: string): number {
  let t = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    t = Math.max(t, e.isDirectory() ? newest(p) : statSync(p).mtimeMs);
  }
  return t;
}

const sleepSync = (ms: number): void => void Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);

/**
 * Run `fn` holding dist/.NAME-lock (a directory: mkdir is atomic), so test
 * files that ava runs in parallel processes do not build the same thing at
 * once. A lock older than 10 minutes was left by a process that died.
 */
export function withLock(name: string, fn: () => void): void {
  const lock = join(ROOT, `dist/.${name}-lock`);
  mkdirSync(join(ROOT, 'dist'), { recursive: true });
  for (let i = 0; ; i++) {
    try {
      mkdirSync(lock);
      break;
    } catch {
      if (existsSync(lock) && Date.now() - statSync(lock).mtimeMs > 600_000) rmSync(lock, { recursive: true, force: true });
      if (i > 6000) throw new Error(`dist/.${name}-lock held for over 10 minutes`);
      sleepSync(100);
    }
  }
  try {
    fn();
  } finally {
    rmSync(lock, { recursive: true, force: true });
  }
}

let imageReady = false;

/**
 * `dist/image` staged by scripts/bundle.mjs, built only when missing or older
 * than src/, scripts/, systemd/ or hw/, under a lock: ava runs test files in
 * parallel processes, and a bundle run deletes dist/image while another file's
 * agents load their chunks from it.
 */
export function ensureImage(): void {
  if (imageReady) return;
  withLock('image', () => {
    const agent = join(ROOT, 'dist/image/usr/lib/ipphone/ipphone-agent.mjs');
    const inputs = Math.max(...['src', 'scripts', 'systemd', 'hw'].map((d) => newest(join(ROOT, d))));
    if (!existsSync(agent) || statSync(agent).mtimeMs < inputs) {
      const r = spawnSync(process.execPath, ['scripts/bundle.mjs'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
      if (r.status !== 0 || !existsSync(agent)) throw new Error(`scripts/bundle.mjs failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
    }
    imageReady = true;
  });
}

/**
 * `dist/image-node<major>-<pid>/usr/lib/ipphone`: the staged image's programs
 * (ensureImage()) with the addons built for this runtime in place of the ones
 * built for the machine's node. One copy per test process (~2 MiB), removed
 * when it exits, so no two test files share or replace one under a running
 * agent.
 */
export function stageRuntimeImage(rt: NodeRuntime): string {
  ensureImage();
  const src = join(ROOT, 'dist/image/usr/lib/ipphone');
  const top = join(ROOT, `dist/image-node${rt.major}-${process.pid}`);
  const lib = join(top, 'usr/lib/ipphone');
  if (existsSync(lib)) return lib;
  cpSync(src, lib, { recursive: true, filter: (p) => !p.startsWith(join(src, 'node_modules')) });
  cpSync(rt.addons, join(lib, 'node_modules'), { recursive: true });
  process.once('exit', () => rmSync(top, { recursive: true, force: true }));
  return lib;
}
