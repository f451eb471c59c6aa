/**
 * A counting subscriber that costs next to nothing: one TCP socket, a CONNECT
 * and a SUBSCRIBE encoded by mqtt-packet, then incoming bytes walked frame by
 * frame (fixed header and Remaining Length only) counting PUBLISH packets.
 * The instrument of bench/throughput.ts: an mqtt.js subscriber parsed every
 * message in full and took most of a core on a two-core machine, CPU that the
 * broker and the call manager being measured then did not have.
 */
import { connect as tcp, type Socket } from 'node:net';
import mqttPacket from 'mqtt-packet';

/**
 * Split MQTT control packets off a TCP stream: `rest` (what was left of the last
 * chunk) and `chunk` are read as packets, `onFrame(head, buf, body, end)` gets each
 * whole one (its fixed-header byte, and where its variable header starts and it
 * ends in `buf`); returns what is left for the next chunk.
 */
export function splitFrames(rest: Buffer, chunk: Buffer, onFrame: (head: number, buf: Buffer, body: number, end: number) => void): Buffer {
  const buf = rest.length > 0 ? Buffer.concat([rest, chunk]) : chunk;
  let at = 0;
  for (;;) {
    if (at + 2 > buf.length) break;
    let len = 0;
    let shift = 0;
    let i = at + 1;
    let complete = false;
    while (i < buf.length && i < at + 5) {
      const b = buf[i++]!;
      len += (b & 0x7f) << shift;
      shift += 7;
      if ((b & 0x80) === 0) {
        complete = true;
        break;
      }
    }
    if (!complete || i + len > buf.length) break;
    onFrame(buf[at]!, buf, i, i + len);
    at = i + len;
  }
  return at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
}

export class RawCounter {
  /** PUBLISH packets seen while {@link counting}. */
  count = 0;
  counting = false;
  #rest: Buffer = Buffer.alloc(0);

  private constructor(readonly socket: Socket) {}

  /** Connect to `url` (mqtt://host:port), subscribe to `topic` at QoS 0; resolves once SUBACK arrives. */
  static async open(url: string, topic: string): Promise<RawCounter> {
    const u = new URL(url);
    const socket = tcp({ host: u.hostname, port: Number(u.port || 1883) });
    const c = new RawCounter(socket);
    await new Promise<void>((done, fail) => {
      socket.once('error', fail);
      c.#onSuback = () => {
        socket.off('error', fail);
        done();
      };
      socket.on('data', (chunk: Buffer) => c.#feed(chunk));
      socket.once('connect', () => {
        socket.write(mqttPacket.generate({ cmd: 'connect', protocolId: 'MQTT', protocolVersion: 4, clean: true, clientId: `raw-counter-${process.pid}-${Date.now()}`, keepalive: 0 }));
        socket.write(mqttPacket.generate({ cmd: 'subscribe', messageId: 1, subscriptions: [{ topic, qos: 0 }] } as mqttPacket.ISubscribePacket));
      });
    });
    return c;
  }

  #onSuback: () => void = () => undefined;

  #feed(chunk: Buffer): void {
    this.#rest = splitFrames(this.#rest, chunk, (head) => {
      const type = head >> 4;
      if (type === 3 && this.counting) this.count++;
      else if (type === 9) this.#onSuback();
    });
  }

  close(): Promise<void> {
    return new Promise((done) => {
      this.socket.end(mqttPacket.generate({ cmd: 'disconnect' }), () => done());
      this.socket.destroy();
    });
  }
}
