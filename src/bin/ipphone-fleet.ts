#!/usr/bin/env node
import { isMainThread } from 'node:worker_threads';
import { main } from '../fleet/main.js';

// Bundled into one file, this program is also its own worker threads' entry (src/fleet/workers.ts
// runs the worker side there): only the main thread runs the command.
if (isMainThread) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`ipphone-fleet: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
