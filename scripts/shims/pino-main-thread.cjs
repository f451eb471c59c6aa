'use strict';
// Stands in for `worker_threads` where pino's lib/tools.js imports it, only
// to read `isMainThread` (scripts/bundle.mjs): loading node:worker_threads
// costs RSS and ipphone programs never run in a worker thread, so this is
// always the main thread.
exports.isMainThread = true;
