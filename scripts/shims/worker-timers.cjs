'use strict';
// Stands in for the `worker-timers` package (with worker-timers-broker,
// broker-factory, fast-unique-numbers and @babel/runtime) in the bundle
// (scripts/bundle.mjs). mqtt.js's get-timer.js imports it at the top but uses
// it only inside a browser's web worker; under node it picks the native
// timers. Should it ever be asked, the native timers do the same job.
exports.setInterval = (fn, ms) => setInterval(fn, ms);
exports.clearInterval = (id) => clearInterval(id);
exports.setTimeout = (fn, ms) => setTimeout(fn, ms);
exports.clearTimeout = (id) => clearTimeout(id);
