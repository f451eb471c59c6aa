/**
 * TCP_NODELAY on real sockets: mqtt.js clients against an in-process aedes
 * broker over TCP and TLS. Node keeps no readable copy of the socket option,
 * so `net.Socket.prototype.setNoDelay` (which `tls.TLSSocket` inherits, its
 * handle passing the call to the TCP handle) is wrapped to record which
 * socket got which value; the tests are serial for that reason.
 */
import test from 'ava';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import tls from 'node:tls';
import { PassThrough } from 'node:stream';
import { Aedes } from 'aedes';
import { connect, type MqttClient } from 'mqtt';
import { keepNoDelay, setStreamNoDelay, withNoDelay } from '../../../src/lib/mqtt-nodelay.js';
import { MqttTransport } from '../../../src/agent/mqtt-transport.js';
import { connectBroker } from '../../../src/admin/connect.js';
import { silentLogger } from '../../../src/lib/log.js';

const calls: { socket: net.Socket; value: unknown }[] = [];
const original = net.Socket.prototype.setNoDelay;
test.before(() => {
  net.Socket.prototype.setNoDelay = function (this: net.Socket, value?: boolean) {
    calls.push({ socket: this, value });
    return original.call(this, value);
  };
});
test.after.always(() => {
  net.Socket.prototype.setNoDelay = original;
});

/** Did `socket` get setNoDelay(true) (and never false after it)? */
function noDelayOn(socket: unknown): boolean {
  const mine = calls.filter((c) => c.socket === socket);
  return mine.length > 0 && mine[mine.length - 1]!.value === true;
}

interface Broker {
  port: number;
  /** Server-side sockets accepted so far. */
  accepted: net.Socket[];
  close(): Promise<void>;
}

async function broker(secure?: { key: Buffer; cert: Buffer }): Promise<Broker> {
  const aedes = await Aedes.createBroker();
  const accepted: net.Socket[] = [];
  const onSocket = (s: net.Socket): void => {
    accepted.push(s);
    aedes.handle(s);
  };
  const server = secure ? tls.createServer({ key: secure.key, cert: secure.cert }, onSocket) : net.createServer(onSocket);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    accepted,
    async close() {
      for (const s of accepted) s.destroy();
      await new Promise<void>((r) => aedes.close(() => r()));
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

const connected = (c: MqttClient): Promise<void> =>
  new Promise((resolve, reject) => {
    c.once('connect', () => resolve());
    c.once('error', reject);
  });

test.serial('mqtt: over TCP the client socket gets noDelay before CONNACK', async (t) => {
  const b = await broker();
  const client = keepNoDelay(connect(`mqtt://127.0.0.1:${b.port}`, { reconnectPeriod: 0 }));
  t.true(client.stream instanceof net.Socket);
  t.true(noDelayOn(client.stream), 'set on the stream the constructor built, before it connected');
  await connected(client);
  t.true(noDelayOn(client.stream));
  await client.endAsync();
  await b.close();
});

test.serial('mqtt: every reconnect gets a new socket, and it gets noDelay too', async (t) => {
  const b = await broker();
  const client = keepNoDelay(connect(`mqtt://127.0.0.1:${b.port}`, { reconnectPeriod: 20 }));
  await connected(client);
  const first = client.stream;
  const again = new Promise<void>((r) => client.once('connect', () => r()));
  b.accepted[0]!.destroy();
  await again;
  t.not(client.stream, first);
  t.true(noDelayOn(first));
  t.true(noDelayOn(client.stream));
  await client.endAsync();
  await b.close();
});

test.serial('mqtts: the TLSSocket gets noDelay', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-nodelay-'));
  try {
    const key = path.join(dir, 'key.pem');
    const cert = path.join(dir, 'cert.pem');
    execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes', '-keyout', key, '-out', cert, '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-days', '1'], { stdio: 'ignore' });
    const b = await broker({ key: readFileSync(key), cert: readFileSync(cert) });
    const client = withNoDelay(connect)(`mqtts://127.0.0.1:${b.port}`, { reconnectPeriod: 0, ca: readFileSync(cert) });
    t.true(client.stream instanceof tls.TLSSocket);
    await connected(client);
    t.true(noDelayOn(client.stream));
    await client.endAsync();
    await b.close();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test.serial('without the helper mqtt.js leaves Nagle on (the reason for it)', async (t) => {
  const b = await broker();
  const client = connect(`mqtt://127.0.0.1:${b.port}`, { reconnectPeriod: 0 });
  await connected(client);
  t.false(noDelayOn(client.stream));
  await client.endAsync();
  await b.close();
});

test.serial('the agent transport and the admin connection use it', async (t) => {
  const b = await broker();
  const url = `mqtt://127.0.0.1:${b.port}`;
  const log = silentLogger();
  let up!: () => void;
  const isUp = new Promise<void>((r) => (up = r));
  const transport = new MqttTransport({ clientId: 'p-nodelay', log, protocolVersion: 4, events: { up: () => up(), down: () => undefined, message: () => undefined } });
  const before = calls.length;
  transport.connect(url);
  await isUp;
  // The transport does not expose its socket: the one socket created since `before` is its.
  const agentSockets = calls.slice(before).filter((c) => c.value === true);
  t.is(new Set(agentSockets.map((c) => c.socket)).size, 1);
  t.is(agentSockets[0]!.socket.remotePort, b.port);
  await transport.close();

  const admin = await connectBroker({ broker: url, prefix: 'ipphone/v1', mqttVersion: 4, connectTimeoutMs: 5000 });
  t.true(noDelayOn(admin.stream));
  await admin.endAsync();
  await b.close();
});

test('a stream that is not a socket (ws) is left alone', (t) => {
  t.false(setStreamNoDelay(new PassThrough()));
  t.false(setStreamNoDelay(undefined));
});
