/**
 * The one MQTT connection of an `ipphone-admin` run: connected or failed
 * within the connect timeout, with errors that name the broker but never a
 * credential. No reconnects: an operator tool fails loudly and is re-run.
 */
import { readFileSync } from 'node:fs';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { keepNoDelay } from '../lib/mqtt-nodelay.js';
import type { ConnArgs } from './args.js';

/** The broker URL without user name or password, for messages. */
export function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    u.username = '';
    u.password = '';
    return u.toString().replace(/\/$/, '');
  } catch {
    return '(unparseable URL)';
  }
}

/** The password from --password or --password-file (first line), if any. */
export function passwordOf(c: ConnArgs): string | undefined {
  if (c.password !== undefined) return c.password;
  if (c.passwordFile === undefined) return undefined;
  let text: string;
  try {
    text = readFileSync(c.passwordFile, 'utf8');
  } catch (err) {
    throw new IpphoneError(`cannot read password file ${c.passwordFile}: ${(err as NodeJS.ErrnoException).code ?? errorMessage(err)}`, 'CONFIG_INVALID');
  }
  return text.split(/\r?\n/)[0] ?? '';
}

/** A PEM file's text, or the problem with it (named by its flag). */
function pemFile(flag: string, file: string): { pem: Buffer } | { problem: string } {
  let pem: Buffer;
  try {
    pem = readFileSync(file);
  } catch (err) {
    return { problem: `${flag} ${file}: cannot read it (${(err as NodeJS.ErrnoException).code ?? errorMessage(err)})` };
  }
  if (!pem.includes('-----BEGIN ')) return { problem: `${flag} ${file}: is not a PEM file (no "-----BEGIN" line)` };
  return { pem };
}

/**
 * The TLS material of --ca, --cert and --tls-key, read before connecting so a
 * missing or unreadable file is an error that names it, not a handshake
 * failure. Throws CONFIG_INVALID with every problem (context `{ problems }`).
 */
export function tlsOptionsOf(c: ConnArgs): Pick<IClientOptions, 'ca' | 'cert' | 'key'> {
  const out: Pick<IClientOptions, 'ca' | 'cert' | 'key'> = {};
  const problems: string[] = [];
  for (const [flag, file, field] of [['--ca', c.ca, 'ca'], ['--cert', c.cert, 'cert'], ['--tls-key', c.key, 'key']] as const) {
    if (file === undefined) continue;
    const r = pemFile(flag, file);
    if ('problem' in r) problems.push(r.problem);
    else out[field] = r.pem;
  }
  if (problems.length > 0) throw new IpphoneError('cannot use the TLS files', 'CONFIG_INVALID', { problems });
  return out;
}

/** mqtt.js options for a one-shot admin client. */
export function clientOptions(c: ConnArgs, clientId: string): IClientOptions {
  const o: IClientOptions = {
    clientId,
    protocolVersion: c.mqttVersion,
    clean: true,
    reconnectPeriod: 0,
    // Later than our own deadline (connectBroker), whose message says what timed out.
    connectTimeout: c.connectTimeoutMs + 1000,
    keepalive: 30,
  };
  if (c.username !== undefined) o.username = c.username;
  const pw = passwordOf(c);
  if (pw !== undefined) o.password = pw;
  return { ...o, ...tlsOptionsOf(c) };
}

/**
 * Connect, or reject with TIMEOUT (no CONNACK within `connectTimeoutMs`) or
 * TRANSPORT (refused, closed, not authorised) naming the broker.
 */
export function connectBroker(c: ConnArgs, clientId = `ipphone-admin-${process.pid}-${Math.random().toString(16).slice(2, 8)}`): Promise<MqttClient> {
  const where = safeUrl(c.broker);
  const client = keepNoDelay(connect(c.broker, clientOptions(c, clientId)));
  return new Promise<MqttClient>((resolve, reject) => {
    let done = false;
    const finish = (err: IpphoneError | null): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      client.removeListener('connect', onConnect);
      client.removeListener('error', onError);
      client.removeListener('close', onClose);
      if (err === null) {
        resolve(client);
        return;
      }
      client.end(true);
      reject(err);
    };
    const onConnect = (): void => finish(null);
    const onError = (err: Error): void => finish(new IpphoneError(`cannot connect to broker ${where}: ${err.message}`, 'TRANSPORT', { broker: where }));
    const onClose = (): void => finish(new IpphoneError(`cannot connect to broker ${where}: connection closed`, 'TRANSPORT', { broker: where }));
    // Our own deadline: mqtt.js's connectTimeout only covers the wait for CONNACK on an open socket.
    const timer = setTimeout(
      () => finish(new IpphoneError(`cannot connect to broker ${where}: no answer within ${c.connectTimeoutMs} ms`, 'TIMEOUT', { broker: where })),
      c.connectTimeoutMs,
    );
    client.once('connect', onConnect);
    client.once('error', onError);
    client.once('close', onClose);
  });
}

/** Subscribe and wait for the SUBACK; a refused subscription is an error. */
export async function subscribe(client: MqttClient, topicsToWatch: string[], qos: 0 | 1 = 1): Promise<void> {
  const granted = await client.subscribeAsync(topicsToWatch, { qos });
  // MQTT 5 reason codes ≥ 0x80 arrive in `qos` too (3.1.1: 0x80).
  const refused = granted.filter((g) => g.qos >= 0x80);
  if (refused.length > 0) {
    throw new IpphoneError(`broker refused the subscription to ${refused.map((g) => g.topic).join(', ')}`, 'TRANSPORT');
  }
}
