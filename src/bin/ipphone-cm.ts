#!/usr/bin/env node
import { main } from '../callmanager/main.js';

// process.exit after main: pino writes synchronously to stdout, so nothing is lost.
main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`ipphone-cm: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  },
);
