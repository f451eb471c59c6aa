/**
 * Preloaded (`--import`) into the demo's call-manager children. The demo
 * holds a pipe on each child's stdin; when the demo dies by any means, even
 * SIGKILL, the pipe reaches end-of-file and the child stops itself, so no
 * call manager is left reconnecting to a broker that no longer exists.
 */
const GRACE_MS = 2000;

function parentGone(): void {
  // The call manager's own SIGTERM handler publishes offline and exits;
  // if that hangs, leave anyway.
  setTimeout(() => process.exit(1), GRACE_MS).unref();
  process.kill(process.pid, 'SIGTERM');
}

process.stdin.once('end', parentGone);
process.stdin.once('error', parentGone);
process.stdin.resume();
