/**
 * The call manager's HTTP side as it is wired (call-manager.ts): the
 * HttpServer with its services URL and phone directory, and the services
 * request counter and rate that `/metrics` and the published load report.
 */
import type { CmConfig } from '../config/cm-config.js';
import type { Clock } from '../lib/clock.js';
import type { Logger } from '../lib/log.js';
import { HttpServer, type HttpDeps } from './http-server.js';
import { RateMeter } from './load.js';
import type { HomedPhone } from './phone-table.js';

/** What the HTTP side reads from the running call manager. */
export interface CmHttpHost {
  connected(): boolean;
  /** False while the paired SIP server does not answer (always true without `sip`). */
  sipOnline(): boolean;
  phonesHomed(): number;
  homedPhones(): Iterable<HomedPhone>;
  metricsText(): string;
  /** The operator console's handler (console.ts), when enabled. */
  raw?: HttpDeps['raw'];
}

/** The bound HTTP server and its services-request counters. */
export class CmHttp {
  readonly #clock: Clock;
  readonly #rate: RateMeter;
  readonly #server: HttpServer;
  /** Services pages served. */
  requests = 0;

  /** `now`: where the services rate starts counting. */
  constructor(c: CmConfig, clock: Clock, now: number, host: CmHttpHost, log: Logger) {
    this.#clock = clock;
    this.#rate = new RateMeter(now, 10);
    const self = c.group.find((g) => g.id === c.cmId);
    const servicesUrl = self?.services ?? `http://${c.http.host}:${c.http.port}/services`;
    this.#server = new HttpServer(
      c.http.host,
      c.http.port,
      {
        cmId: c.cmId,
        servicesUrl,
        connected: () => host.connected(),
        sipOnline: () => host.sipOnline(),
        phonesHomed: () => host.phonesHomed(),
        directory: () =>
          [...host.homedPhones()]
            .map((p) => p.phone)
            .sort()
            .slice(0, 32)
            .map((p) => ({ name: p, telephone: p })),
        metricsText: () => host.metricsText(),
        ...(host.raw !== undefined ? { raw: host.raw } : {}),
        onServicesRequest: () => {
          this.requests++;
          this.#rate.add(this.#clock.elapsed());
        },
      },
      log,
    );
  }

  /** The bound port (useful with port 0). */
  get port(): number | undefined {
    return this.#server.port;
  }

  /** Services pages per second at `now`, two decimals. */
  rps(now: number): number {
    return Math.round(this.#rate.rate(now) * 100) / 100;
  }

  /** Bind. Throws as HttpServer.start does. */
  start(): Promise<void> {
    return this.#server.start();
  }

  stop(): Promise<void> {
    return this.#server.stop();
  }
}
