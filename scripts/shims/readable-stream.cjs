'use strict';
// Stands in for the `readable-stream` package (4.x, with its abort-controller,
// event-target-shim, string_decoder, buffer and process polyfills) in the
// bundle (scripts/bundle.mjs). readable-stream 4 is Node's own stream module
// republished for browsers and old Node versions; on Node ≥ 20 the built-in
// one, which every program loads anyway, is the same code.
module.exports = require('node:stream');
