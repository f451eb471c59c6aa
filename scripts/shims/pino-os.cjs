'use strict';
// Stands in for `os` where pino.js imports it (scripts/bundle.mjs). pino calls
// os.hostname() once at load, only for its default `base` ({ pid, hostname });
// every ipphone logger passes its own `base` (src/lib/log.ts, src/fleet/
// worker-side.ts) and the silent one writes nothing, so the value is never
// printed. Loading node:os for it cost RSS on every start (bench/results-
// footprint.md, "What was cut"). Any other use of this object fails loudly.
exports.hostname = () => undefined;
