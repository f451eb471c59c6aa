'use strict';
// Stands in for the `thread-stream` package in the bundle
// (scripts/bundle.mjs). pino imports it at the top for pino.transport(),
// which runs log transports in a worker thread; ipphone programs log to a
// destination stream (stdout) and never use transports (STYLE.md), so
// worker_threads' Worker is never needed. Called anyway, it says so.
class ThreadStream {
  constructor() {
    const err = new Error('pino transports (worker threads) are not in the ipphone bundle; log to a destination stream instead');
    err.code = 'PINO_TRANSPORT_UNSUPPORTED';
    throw err;
  }
}
module.exports = ThreadStream;
