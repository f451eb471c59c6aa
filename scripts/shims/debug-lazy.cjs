'use strict';
// Stands in for the `debug` package in mqtt.js, mqtt-packet and serialport
// (scripts/bundle.mjs). Unless DEBUG is set in the environment at start, debug
// prints nothing and every logger it makes is disabled; evaluating it anyway
// loads node:tty (for colour detection) and its namespace machinery on every
// start. Without DEBUG this gives the same disabled loggers (callable,
// `enabled` false, `extend`), without loading anything; with DEBUG set it is
// the real package, evaluated then.
function disabled(namespace) {
  const log = () => {};
  log.namespace = namespace;
  log.enabled = false;
  log.useColors = false;
  log.color = 0;
  log.diff = 0;
  log.log = () => {};
  log.destroy = () => false;
  log.extend = (sub, delimiter) => disabled(`${namespace}${delimiter === undefined ? ':' : delimiter}${sub}`);
  return log;
}
function createDebug(namespace) {
  return disabled(namespace);
}
createDebug.enabled = () => false;
createDebug.enable = () => {
  throw new Error('debug.enable() is not available in this bundle: set DEBUG in the environment before start (scripts/shims/debug-lazy.cjs)');
};
createDebug.disable = () => '';
createDebug.debug = createDebug;
createDebug.default = createDebug;
module.exports = process.env.DEBUG ? require('../../node_modules/debug/src/index.js') : createDebug;
