/**
 * An in-process aedes broker (MQTT 3.1.1) on 127.0.0.1 for fast integration tests.
 */
import net from 'node:net';
import { Aedes } from 'aedes';

export interface AedesBroker {
  readonly port: number;
  /** `mqtt://127.0.0.1:PORT` */
  readonly url: string;
  readonly broker: Aedes;
  /** Close the broker, drop every client socket and stop listening. */
  close(): Promise<void>;
}

export async function startAedes(): Promise<AedesBroker> {
  const broker = await Aedes.createBroker();
  const sockets = new Set<net.Socket>();
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    broker.handle(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const addr = server.address();
  if (addr === null || typeof addr === 'string') throw new Error('aedes: no TCP address');
  const port = addr.port;
  let closed: Promise<void> | undefined;
  return {
    port,
    url: `mqtt://127.0.0.1:${port}`,
    broker,
    close() {
      closed ??= (async () => {
        await new Promise<void>((resolve) => broker.close(() => resolve()));
        for (const s of sockets) s.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
      })();
      return closed;
    },
  };
}
