/**
 * The demo's embedded MQTT broker: aedes in-process on 127.0.0.1, a free
 * port. aedes speaks MQTT 3.1.1 only, so every demo client sets
 * `protocolVersion: 4`.
 */
import net from 'node:net';
import { Aedes } from 'aedes';

export interface EmbeddedBroker {
  readonly port: number;
  /** `mqtt://127.0.0.1:PORT` */
  readonly url: string;
  /** Close the broker, drop every client socket, stop listening. Idempotent. */
  close(): Promise<void>;
}

export async function startBroker(): Promise<EmbeddedBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A client that vanishes mid-packet must not crash the demo.
    socket.on('error', () => socket.destroy());
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('embedded broker: no TCP address');
  let closing: Promise<void> | undefined;
  return {
    port: addr.port,
    url: `mqtt://127.0.0.1:${addr.port}`,
    close() {
      closing ??= (async () => {
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closing;
    },
  };
}
