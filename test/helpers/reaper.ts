/**
 * What a test process starts must not outlive it: every child a helper spawns
 * (brokers, call managers, agents, baresip, Kamailio, socat) is killed, and
 * every temp dir removed, when the test process exits — however it exits.
 * One registry and one exit hook for all helpers.
 */
import type { ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';

const children = new Map<ChildProcess, (c: ChildProcess) => void>();
const dirs = new Set<string>();
let hooked = false;

function hook(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const [c, kill] of children) {
      try {
        kill(c);
      } catch {
        // already gone
      }
    }
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });
}

/** Kill `child` with `kill` (default SIGKILL) if it is still running when the test process exits. */
export function killAtExit(child: ChildProcess, kill: (c: ChildProcess) => void = (c) => c.kill('SIGKILL')): void {
  hook();
  children.set(child, kill);
  child.once('exit', () => children.delete(child));
}

/** Remove `dir` (recursively) when the test process exits. */
export function removeAtExit(dir: string): void {
  hook();
  dirs.add(dir);
}
