/**
 * Evidence that another phone runs with this phone's id (a cloned image),
 * from the phone's own retained status. Brokers that do not say "session
 * taken over" (mosquitto 2.0.11 closes the old connection without an MQTT 5
 * DISCONNECT 0x8E) still keep the last status: a status of another run
 * (`instance`) arriving on a broker where this run's own status has already
 * come back means someone overwrote it since. A previous run of this phone
 * cannot: its status arrives (retained) before this run's first own echo.
 */
import { randomBytes } from 'node:crypto';

export class DuplicateWatch {
  /** This run's id, carried in the status and the will. */
  readonly instance = randomBytes(6).toString('hex');
  /** Brokers on which this run's own status has come back at least once. */
  readonly #echoed = new Set<string>();

  /**
   * This run's own will (`online: false` with our instance) while the run is
   * alive: a connection of ours that died unclean (a probe of the primary
   * dropped after its CONNACK, a lost backup) made its broker publish it —
   * over the status our home connection published, when both brokers are one
   * (or bridged). The caller puts the live status back.
   */
  ownWill(payload: Buffer): boolean {
    try {
      const p = JSON.parse(payload.toString('utf8')) as { instance?: unknown; online?: unknown } | null;
      return p?.instance === this.instance && p.online === false;
    } catch {
      return false;
    }
  }

  /** A message on the phone's own status topic from `broker`: true when it is another run's, written over ours. */
  overwritten(broker: string, payload: Buffer): boolean {
    let instance: unknown;
    try {
      instance = (JSON.parse(payload.toString('utf8')) as { instance?: unknown } | null)?.instance;
    } catch {
      return false;
    }
    if (typeof instance !== 'string') return false;
    if (instance === this.instance) {
      this.#echoed.add(broker);
      return false;
    }
    return this.#echoed.has(broker);
  }
}
