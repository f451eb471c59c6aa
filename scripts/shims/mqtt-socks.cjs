'use strict';
// Stands in for mqtt.js's build/lib/connect/socks.js in the device bundle
// (scripts/bundle.mjs): that file pulls in the `socks` package with
// ip-address and smart-buffer (~68 KB of the bundle, evaluated at start by
// every program, since mqtt's tcp and tls connectors import it at the top).
// No ipphone program connects through a SOCKS proxy. mqtt.js only takes this
// path when `socksProxy` is set (or MQTTJS_SOCKS_PROXY is in the
// environment); then the connection fails with this error, as a failed proxy
// would: on the stream, so mqtt.js reports it and reconnects as usual.
const { Duplex } = require('node:stream');

function openSocks(host, port, proxy) {
  const err = new Error(
    `MQTT over a SOCKS proxy (${String(proxy)} → ${host}:${port}) is not in the ipphone bundle; unset socksProxy / MQTTJS_SOCKS_PROXY`,
  );
  err.code = 'SOCKS_UNSUPPORTED';
  const stream = new Duplex({ read() {}, write(_chunk, _enc, cb) { cb(err); } });
  process.nextTick(() => stream.destroy(err));
  return stream;
}

module.exports = { __esModule: true, default: openSocks };
