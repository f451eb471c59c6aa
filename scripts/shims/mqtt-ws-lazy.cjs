'use strict';
// Stands in for mqtt.js's build/lib/connect/ws.js where connect/index.js
// registers its protocols (scripts/bundle.mjs). mqtt.js requires ws.js — and
// with it the `ws` package — on every connect, whatever the broker's scheme;
// through this file the real one is evaluated on the first `ws:`/`wss:`
// connection only, so `mqtt:`/`mqtts:` agents never run that code.
let real;
const load = () => (real ??= require('../../node_modules/mqtt/build/lib/connect/ws.js'));

exports.streamBuilder = (client, opts) => load().streamBuilder(client, opts);
exports.browserStreamBuilder = (client, opts) => load().browserStreamBuilder(client, opts);
