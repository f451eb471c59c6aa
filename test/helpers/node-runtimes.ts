/**
 * The Node lines the image supports (20, 22, 24), each with the image's native
 * addons built for it, and a staged image per runtime.
 *
 * `scripts/node-runtimes.mjs` obtains them (idempotent: cached after the first
 * run; .ci/run calls it before `npm test`). Tests call it again so that a
 * developer's `npx ava` works too; a runtime it cannot provide is an error,
 * never a skip.
 */
import { execFileSync } from 'node:child_process';
import { cpSync, existsSync, rmSync } from 'node:fs';
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
      const out = execFileSync(process.execPath, [join(ROOT, 'scripts/node-runtimes.mjs'), '--json', ...SUPPORTED_MAJORS.map(String)], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 600_000 });
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

/**
 * `dist/image-node<major>/usr/lib/ipphone`: the staged image's programs (from
 * `scripts/bundle.mjs`, which must have run) with the addons built for this
 * runtime in place of the ones built for the machine's node. Restaged on every
 * call (a copy of ~2 MiB) so it never mixes two builds.
 */
export function stageRuntimeImage(rt: NodeRuntime): string {
  const src = join(ROOT, 'dist/image/usr/lib/ipphone');
  if (!existsSync(join(src, 'ipphone-agent.mjs'))) throw new Error('dist/image is not staged: run scripts/bundle.mjs first');
  const lib = join(ROOT, `dist/image-node${rt.major}/usr/lib/ipphone`);
  rmSync(lib, { recursive: true, force: true });
  cpSync(src, lib, { recursive: true, filter: (p) => !p.startsWith(join(src, 'node_modules')) });
  cpSync(rt.addons, join(lib, 'node_modules'), { recursive: true });
  return lib;
}
