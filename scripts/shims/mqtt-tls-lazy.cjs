'use strict';
// Stands in for mqtt.js's build/lib/connect/tls.js where connect/index.js
// registers its protocols (scripts/bundle.mjs). mqtt.js requires tls.js — and
// with it node:tls — on every connect, whatever the broker's scheme; through
// this file the real one is evaluated on the first `mqtts:`/`ssl:` connection
// only, so an `mqtt:` agent never loads node:tls (about 1.3 MiB of RSS on
// Node 20 under --jitless). Same pattern as mqtt-ws-lazy.cjs.
let real;
const load = () => (real ??= require('../../node_modules/mqtt/build/lib/connect/tls.js'));

exports.default = (client, opts) => load().default(client, opts);
