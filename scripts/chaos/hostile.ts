/**
 * The hostile phone of the chaos run (issue 16's `hostile-phone`, the real
 * companion of src/sim/hostile.ts): a real MQTT client over TLS with a
 * phone's certificate (CN {@link HOSTILE_CN}, signed by the group's CA), so
 * the ACL that `ipphone-admin acl` prints applies to it, connected to every
 * broker. It subscribes to everything (the broker delivers only what the ACL
 * lets it read: its own ack, pointers and config, every call manager's
 * state), records what arrives, and publishes whatever it likes: replays of
 * what it recorded (where it was published and elsewhere), keep-alives whose
 * list version is days ahead (some ratcheting a day further each time),
 * forged `rehomed` events, unsigned or badly signed states and lists, a
 * challenge flood, and garbage. Most of it the broker drops (the ACL); the
 * rest must have no effect the checkers can see (judge.ts, `no-forged-effect`,
 * `versions-bounded`, `lists-signed`).
 */
import { randomBytes } from 'node:crypto';
import { connect, type MqttClient } from 'mqtt';
import type { ClientTls } from '../../test/helpers/pki.js';
import type { ChaosRng } from './rng.js';

/** Not one of the fleet's ids (`ph-N`): a takeover of a real phone's session is a different attack. */
export const HOSTILE_CN = 'ph-hostile';

export class HostilePhone {
  readonly #clients: MqttClient[] = [];
  readonly #recorded: { topic: string; payload: Buffer }[] = [];
  #timer: NodeJS.Timeout | undefined;
  #seq = 0;
  #drag = 0;
  /** Messages handed to a connected client (the broker may still drop them: ACL). */
  published = 0;
  /** Messages the broker delivered to it (what its ACL let it read). */
  received = 0;

  constructor(
    private readonly rng: ChaosRng,
    private readonly prefix: string,
    private readonly cms: readonly string[],
    private readonly phones: readonly string[],
  ) {}

  /** Connect to every broker (directly: no fault cuts it) and act every 50..1500 ms until {@link stop}. */
  start(urls: readonly string[], tls: ClientTls): void {
    for (const url of urls) {
      const c = connect(url, { clientId: HOSTILE_CN, reconnectPeriod: 1000, connectTimeout: 5000, ...tls });
      c.on('error', () => undefined);
      c.on('connect', () => c.subscribe('#', { qos: 1 }, () => undefined));
      c.on('message', (topic, payload) => {
        this.received++;
        if (this.#recorded.length < 300) this.#recorded.push({ topic, payload: Buffer.from(payload) });
        else this.#recorded[this.rng.int(0, 299)] = { topic, payload: Buffer.from(payload) };
      });
      this.#clients.push(c);
    }
    const act = (): void => {
      const live = this.#clients.filter((c) => c.connected);
      if (live.length > 0) {
        const { topic, payload, retain } = this.#message();
        this.published++;
        this.rng.pick(live).publish(topic, payload, { qos: this.rng.chance(0.5) ? 1 : 0, retain }, () => undefined);
      }
      this.#timer = setTimeout(act, this.rng.int(50, 1500));
    };
    this.#timer = setTimeout(act, this.rng.int(100, 1000));
  }

  #message(): { topic: string; payload: Buffer; retain: boolean } {
    const r = this.rng;
    const P = this.prefix;
    const cm = r.pick(this.cms);
    const victim = r.pick(this.phones);
    const me = r.chance(0.7) ? HOSTILE_CN : victim;
    const wall = Date.now();
    switch (r.int(0, 5)) {
      case 0: {
        const rec = this.#recorded.length > 0 ? r.pick(this.#recorded) : undefined;
        if (rec !== undefined) {
          const topic = r.chance(0.7) ? rec.topic : r.pick([`${P}/cm/${cm}/state`, `${P}/phone/${victim}/pointers`, `${P}/phone/${me}/ack`, `${P}/cm/${cm}/keepalive/${me}`]);
          return { topic, payload: rec.payload, retain: r.chance(0.5) };
        }
        return { topic: `${P}/cm/${cm}/state`, payload: Buffer.from('{"online":false}'), retain: true };
      }
      case 1:
        // Keep-alives whose list version is far ahead: half ratchet a day further each time.
        return {
          topic: r.chance(0.7) ? `${P}/cm/${cm}/keepalive/${me}` : `${P}/cm/${cm}/keepalive`,
          payload: Buffer.from(JSON.stringify({ phone: me, seq: ++this.#seq, pointersVersion: wall + (r.chance(0.5) ? ++this.#drag : r.int(1, 40)) * 86_400_000 - 60_000, busy: false, ...(r.chance(0.5) ? { probe: true } : {}) })),
          retain: false,
        };
      case 2:
        return { topic: `${P}/phone/${me}/event`, payload: Buffer.from(JSON.stringify({ type: 'rehomed', from: cm, to: r.pick(this.cms), reason: r.pick(['cm-offline', 'rebalance', 'fallback']), detectMs: 1, rehomeMs: 1 })), retain: false };
      case 3:
        return r.chance(0.5)
          ? { topic: `${P}/cm/${cm}/state`, payload: Buffer.from(JSON.stringify({ online: r.chance(0.5), kid: 'ops-1', body: Buffer.from('{"online":false}').toString('base64'), sig: 'AAAA' })), retain: true }
          : {
              topic: `${P}/phone/${victim}/pointers`,
              payload: Buffer.from(JSON.stringify({ kid: 'ops-1', body: Buffer.from(JSON.stringify({ version: wall + 1e9, reason: 'admin', list: [{ id: 'cm-x', broker: 'mqtts://10.6.6.6:8883', services: 'http://10.6.6.6/' }] })).toString('base64'), sig: 'AAAA' })),
              retain: false,
            };
      case 4:
        return { topic: `${P}/cm/${cm}/challenge/${me}`, payload: Buffer.from(JSON.stringify({ challenge: randomBytes(16).toString('base64') })), retain: false };
      default: {
        const topic = r.pick([`${P}/phone/${me}/status`, `${P}/phone/${me}/config/result`, `${P}/cm/${cm}/keepalive/${me}`, `${P}/cm/${cm}/load`]);
        return { topic, payload: r.chance(0.5) ? randomBytes(r.int(0, 64)) : Buffer.from(JSON.stringify({ online: true, phones: 1e9, seq: -1 })), retain: r.chance(0.3) };
      }
    }
  }

  async stop(): Promise<void> {
    clearTimeout(this.#timer);
    await Promise.all(this.#clients.map((c) => c.endAsync(true)));
  }
}
