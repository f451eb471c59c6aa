/**
 * Plain TCP or TLS for the scale benches (issue #9): one mosquitto config,
 * the transport being the only difference, so a plain and a TLS run of the
 * same bench compare the handshakes and record crypto and nothing else.
 *
 * The TLS listener is the simulator's shape, not production's: client
 * certificates are required (CN as user name), but a fleet shares one
 * certificate, so no `use_username_as_clientid` (it would make every
 * simulated phone one client) and no per-identity `acl_file`. Both listeners
 * have `set_tcp_nodelay true` as deploy/mosquitto/mosquitto.conf ships.
 */
import { makePki, type Pki } from '../test/helpers/pki.js';
import { startMosquitto, type Mosquitto } from '../test/helpers/mosquitto.js';
import { cpuMs } from '../test/helpers/proc.js';

export type Transport = 'plain' | 'tls';
export const TRANSPORTS: readonly Transport[] = ['plain', 'tls'];

/** Parse `plain`, `tls` or `both` (a comma list works too). */
export function parseTransports(text: string): Transport[] {
  const parts = text === 'both' ? [...TRANSPORTS] : text.split(',');
  for (const p of parts) if (!(TRANSPORTS as readonly string[]).includes(p)) throw new Error(`--transport takes plain, tls or both, not ${JSON.stringify(text)}`);
  return parts as Transport[];
}

/** The broker config for `port`: identical for both transports but for the TLS lines. */
export function brokerConf(transport: Transport, pki: Pki | undefined, port: number): string {
  if (transport === 'tls' && pki === undefined) throw new Error('a TLS broker needs a PKI');
  const listener =
    transport === 'plain'
      ? ['allow_anonymous true']
      : [
          `cafile ${pki!.ca.cert}`,
          `certfile ${pki!.server.cert}`,
          `keyfile ${pki!.server.key}`,
          'require_certificate true',
          'use_identity_as_username true',
          'use_username_as_clientid false',
          'allow_anonymous false',
        ];
  return [`listener ${port} 127.0.0.1`, ...listener, 'set_tcp_nodelay true', 'persistence false', 'log_dest stderr', 'max_queued_messages 1000', ''].join('\n');
}

/** A broker of `transport` (TLS makes its PKI first when not given one). */
export async function startBroker(transport: Transport, opts: { pki?: Pki; onLog?: (line: string) => void } = {}): Promise<{ broker: Mosquitto; pki: Pki | undefined }> {
  const pki = transport === 'tls' ? (opts.pki ?? (await makePki())) : undefined;
  const broker = await startMosquitto({ confText: (port) => brokerConf(transport, pki, port), ...(opts.onLog ? { onLog: opts.onLog } : {}) });
  return { broker, pki };
}

/** CPU (user + system) of the broker's current process so far, in ms. */
export function brokerCpuMs(broker: Mosquitto): number {
  const pid = broker.pid;
  if (pid === undefined) throw new Error('the broker has no process');
  return cpuMs(pid);
}

/** "TLS ÷ plain" for a table cell. */
export function ratio(tls: number | undefined, plain: number | undefined): string {
  if (tls === undefined || plain === undefined || !Number.isFinite(tls) || !Number.isFinite(plain) || plain <= 0) return '—';
  return `${(tls / plain).toFixed(2)}×`;
}
