/**
 * `TCP_NODELAY` on every MQTT socket. Neither mqtt.js nor `net` sets it, and
 * Nagle on one end plus delayed ACK on the other holds a small packet ~40 ms
 * whenever an earlier one is still unacknowledged (measured on loopback: a
 * phone's ack from its new call manager waited behind a PUBACK; issue #9 §4).
 * Keep-alives, acks and wills are all small and latency-critical, and none of
 * our clients streams bulk data, so there is nothing for Nagle to coalesce.
 *
 * mqtt.js builds a new stream on every (re)connect and offers no hook for it
 * (its `streamBuilder` is private), so {@link keepNoDelay} sets the option on
 * the stream built by the constructor and again on each later CONNECT, which
 * mqtt.js announces with `packetsend` right after building the stream and
 * before the socket has connected — the option is on before the first byte.
 *
 * Streams: `net.Socket` (mqtt:) and `tls.TLSSocket` (mqtts:, whose handle
 * passes `setNoDelay` to its TCP handle) take it directly, before or after
 * connecting (libuv keeps it for the socket it opens). ws: and wss: streams
 * are a Duplex over a WebSocket; the `ws` library already calls `setNoDelay()`
 * on the socket it upgrades (ws/lib/websocket.js `setSocket`), so there is
 * nothing to reach for there.
 */
import type { IClientOptions, MqttClient } from 'mqtt';

/** A stream that may be a socket. */
interface MaybeSocket {
  setNoDelay?: (noDelay?: boolean) => unknown;
}

/**
 * Set `noDelay` on `stream` if it is a socket (`net.Socket`, `tls.TLSSocket`).
 * Returns whether it was set; false for streams without the option (ws).
 */
export function setStreamNoDelay(stream: unknown): boolean {
  const s = stream as MaybeSocket | null | undefined;
  if (s === null || s === undefined || typeof s.setNoDelay !== 'function') return false;
  s.setNoDelay(true);
  return true;
}

/** Keep `noDelay` on `client`'s socket now and on every reconnect. Returns `client`. */
export function keepNoDelay<C extends MqttClient>(client: C): C {
  setStreamNoDelay(client.stream);
  client.on('packetsend', (packet) => {
    if (packet.cmd === 'connect') setStreamNoDelay(client.stream);
  });
  return client;
}

/** A `connect` function (mqtt.js's shape) whose clients all get {@link keepNoDelay}. */
export function withNoDelay(connect: (url: string, opts: IClientOptions) => MqttClient): (url: string, opts: IClientOptions) => MqttClient {
  return (url, opts) => keepNoDelay(connect(url, opts));
}
