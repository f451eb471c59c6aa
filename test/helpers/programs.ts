/**
 * The programs as operators run them: `node dist/bin/NAME.js`. `npm test`
 * builds dist/ before ava starts. Spawning the compiled files instead of
 * `--import tsx src/bin/NAME.ts` halves start-up time and CPU and takes the
 * tsx transpile cache out of the picture (on a fresh clone every child would
 * otherwise transpile the whole tree at once, under load: the cause of a CI
 * time-out waiting for a call manager to start).
 */
import { readdirSync, statSync } from 'node:fs';
import { join, resolve } from 'node:path';

export const ROOT = resolve(import.meta.dirname, '../..');

export type Program = 'ipphone-agent' | 'ipphone-cm' | 'ipphone-fleet' | 'ipphone-admin';

function newestMtime(dir: string, suffix: string): number {
  let newest = 0;
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) newest = Math.max(newest, newestMtime(p, suffix));
    else if (e.name.endsWith(suffix)) newest = Math.max(newest, statSync(p).mtimeMs);
  }
  return newest;
}

let checked = false;

/** Throw a clear error when dist/ is missing or older than src/ (run `npm run build`). */
export function assertBuilt(): void {
  if (checked) return;
  let built: number;
  try {
    built = newestMtime(join(ROOT, 'dist'), '.js');
  } catch {
    built = 0;
  }
  const source = newestMtime(join(ROOT, 'src'), '.ts');
  if (built < source) throw new Error('dist/ is missing or older than src/: run `npm run build` first (`npm test` does)');
  checked = true;
}

/** Node arguments that run the compiled `program`. */
export function programArgs(program: Program): string[] {
  assertBuilt();
  return [join(ROOT, 'dist/bin', `${program}.js`)];
}
