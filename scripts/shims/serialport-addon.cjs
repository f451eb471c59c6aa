// Stands in for `node-gyp-build` inside the bundled JavaScript of
// @serialport/bindings-cpp. The package asks node-gyp-build to load its native
// addon from `join(__dirname, '../')`, which means nothing once its code lives
// in a bundle chunk. Here the addon is found where the image keeps it: the
// package directory in node_modules next to the bundles, resolved at run time
// by the bundle's own require (the banner of scripts/bundle.mjs).
module.exports = function loadSerialportAddon() {
  const packageDir = require('node:path').dirname(require.resolve('@serialport/bindings-cpp/package.json'));
  return require('node-gyp-build')(packageDir);
};
