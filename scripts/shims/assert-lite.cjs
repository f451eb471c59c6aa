'use strict';
// Stands in for `assert` where sonic-boom (pino's destination) imports it
// (scripts/bundle.mjs). sonic-boom calls it once, `assert(value, message)`, to
// check a file descriptor; node:assert would load its assertion-error, diff
// and colour helpers at start — about 1.2 MiB of RSS on Node 20 under
// --jitless, for one check that throws the same AssertionError-shaped error
// here.
function assert(value, message) {
  if (value) return;
  const err = new Error(message === undefined ? 'assertion failed' : String(message));
  err.name = 'AssertionError';
  err.code = 'ERR_ASSERTION';
  throw err;
}
module.exports = assert;
module.exports.ok = assert;
