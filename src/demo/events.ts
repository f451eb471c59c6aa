/**
 * Watches the phones' `rehomed` events (`P/phone/+/event`) the way an
 * operator's tool would: an MQTT subscriber, each event stamped with the time
 * it arrived, so failover is timed from the kill to the phone's own report.
 */
import { connect, type MqttClient } from 'mqtt';
import { errorMessage, IpphoneError } from '../lib/errors.js';
import { DEFAULT_PREFIX, topics } from '../protocol/topics.js';

export interface Rehome {
  phone: string;
  /** When the event arrived (ms since the epoch). */
  at: number;
  from: string | null;
  to: string;
  reason: string;
  detectMs?: number;
  rehomeMs?: number;
}

export class RehomeWatcher {
  readonly #client: MqttClient;
  readonly #t = topics();
  /** Every rehome seen, in arrival order. */
  readonly rehomes: Rehome[] = [];
  /** Called for each rehome as it arrives. */
  onRehome: ((r: Rehome) => void) | undefined;

  private constructor(client: MqttClient) {
    this.#client = client;
    client.on('message', (topic, payload) => this.#onMessage(topic, payload));
  }

  /** Connect and subscribe; rejects with a clear reason within `timeoutMs`. */
  static async connect(brokerUrl: string, timeoutMs = 5000): Promise<RehomeWatcher> {
    const client = connect(brokerUrl, { protocolVersion: 4, clientId: `ipphone-demo-watch-${process.pid}`, reconnectPeriod: 0, connectTimeout: timeoutMs });
    const w = new RehomeWatcher(client);
    try {
      await new Promise<void>((ok, fail) => {
        client.once('connect', () => ok());
        client.once('error', fail);
        client.once('close', () => fail(new Error('connection closed')));
      });
      await client.subscribeAsync(`${DEFAULT_PREFIX}/phone/+/event`, { qos: 0 });
    } catch (err) {
      client.end(true);
      throw new IpphoneError(`event watcher: cannot subscribe at ${brokerUrl}: ${errorMessage(err)}`, 'TRANSPORT');
    }
    client.on('error', () => undefined);
    return w;
  }

  /** Rehomes that arrived at or after `since`, optionally only those to `to`. */
  since(since: number, to?: string): Rehome[] {
    return this.rehomes.filter((r) => r.at >= since && (to === undefined || r.to === to));
  }

  async close(): Promise<void> {
    await this.#client.endAsync(true).catch(() => undefined);
  }

  #onMessage(topic: string, payload: Buffer): void {
    const phone = this.#t.idOf(topic, 'phone');
    if (phone === undefined) return;
    let e: Record<string, unknown>;
    try {
      e = JSON.parse(payload.toString('utf8')) as Record<string, unknown>;
    } catch {
      return;
    }
    if (e === null || typeof e !== 'object' || e.type !== 'rehomed' || typeof e.to !== 'string') return;
    const r: Rehome = {
      phone,
      at: Date.now(),
      from: typeof e.from === 'string' ? e.from : null,
      to: e.to,
      reason: typeof e.reason === 'string' ? e.reason : '?',
      ...(typeof e.detectMs === 'number' ? { detectMs: e.detectMs } : {}),
      ...(typeof e.rehomeMs === 'number' ? { rehomeMs: e.rehomeMs } : {}),
    };
    this.rehomes.push(r);
    this.onRehome?.(r);
  }
}
