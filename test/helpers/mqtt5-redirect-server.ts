/**
 * A tiny real MQTT 5 server on 127.0.0.1, built on mqtt-packet, that can send
 * DISCONNECT with a Server Reference — what a broker does to redirect clients
 * (reason 0x9C "use another server" or 0x9D "server moved"). mosquitto and
 * aedes cannot be told to do this, so tests of redirect handling use this.
 */
import net from 'node:net';
import mqttPacket from 'mqtt-packet';

export interface RedirectServer {
  readonly port: number;
  /** `mqtt://127.0.0.1:PORT` */
  readonly url: string;
  /** Client ids of every CONNECT received, in order. */
  readonly connects: string[];
  /** Number of open client sockets. */
  readonly clients: number;
  /**
   * Send DISCONNECT(`reasonCode`, serverReference) to every connected client,
   * then close their sockets. Returns how many clients were told.
   */
  redirect(serverReference: string, reasonCode?: number): number;
  close(): Promise<void>;
}

const V5 = { protocolVersion: 5 };

/**
 * @param opts.refuse answer every CONNECT with this CONNACK reason code and
 *   Server Reference instead of accepting (a redirect at connect time).
 */
export async function startRedirectServer(opts: { refuse?: { reasonCode: number; serverReference?: string } } = {}): Promise<RedirectServer> {
  const sockets = new Set<net.Socket>();
  const connected = new Set<net.Socket>();
  const connects: string[] = [];

  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => {
      sockets.delete(socket);
      connected.delete(socket);
    });
    const parser = mqttPacket.parser(V5);
    parser.on('error', () => socket.destroy());
    parser.on('packet', (packet: mqttPacket.Packet) => {
      const send = (p: mqttPacket.Packet): void => {
        if (!socket.destroyed) socket.write(mqttPacket.generate(p, V5));
      };
      switch (packet.cmd) {
        case 'connect':
          connects.push(packet.clientId);
          if (opts.refuse) {
            const properties = opts.refuse.serverReference !== undefined ? { serverReference: opts.refuse.serverReference } : undefined;
            socket.end(mqttPacket.generate({ cmd: 'connack', reasonCode: opts.refuse.reasonCode, sessionPresent: false, properties }, V5));
            break;
          }
          connected.add(socket);
          send({ cmd: 'connack', reasonCode: 0, sessionPresent: false });
          break;
        case 'subscribe':
          send({
            cmd: 'suback',
            messageId: packet.messageId,
            granted: packet.subscriptions.map((s) => Math.min(s.qos, 1)),
          } as mqttPacket.ISubackPacket);
          break;
        case 'unsubscribe':
          send({ cmd: 'unsuback', messageId: packet.messageId, granted: packet.unsubscriptions.map(() => 0) } as unknown as mqttPacket.IUnsubackPacket);
          break;
        case 'publish':
          if (packet.qos === 1) send({ cmd: 'puback', messageId: packet.messageId, reasonCode: 0 } as mqttPacket.IPubackPacket);
          break;
        case 'pingreq':
          send({ cmd: 'pingresp' });
          break;
        case 'disconnect':
          socket.end();
          break;
        default:
          break;
      }
    });
    socket.on('data', (buf: Buffer) => parser.parse(buf));
  });

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('redirect server: no TCP address');
  const port = addr.port;

  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    connects,
    get clients() {
      return sockets.size;
    },
    redirect(serverReference, reasonCode = 0x9c) {
      const told = [...connected];
      for (const socket of told) {
        socket.end(mqttPacket.generate({ cmd: 'disconnect', reasonCode, properties: { serverReference } }, V5));
      }
      return told.length;
    },
    close() {
      for (const s of sockets) s.destroy();
      return new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
