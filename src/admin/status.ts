/**
 * `ipphone-admin status`: phones' retained statuses, then live ones, one
 * JSON line `{ phone, ...status }` each.
 */
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import { decodeStatus } from '../protocol/codec.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { AdminArgs } from './args.js';
import { connectBroker, subscribe } from './connect.js';
import type { AdminIo } from './sign-send.js';

type StatusArgs = Extract<AdminArgs, { kind: 'status' }>;

/**
 * One status message as the line to print, or an error line for stderr.
 * Topics that are not a phone status (under this prefix) give undefined.
 */
export function statusLine(t: Topics, topic: string, payload: Buffer): { out: string } | { err: string } | undefined {
  const phone = t.idOf(topic, 'phone');
  if (phone === undefined || topic !== t.phoneStatus(phone)) return undefined;
  try {
    return { out: `${JSON.stringify({ phone, ...decodeStatus(payload) })}\n` };
  } catch (err) {
    return { err: `ipphone-admin: phone ${phone}: unreadable status: ${errorMessage(err)}\n` };
  }
}

/**
 * Print statuses until SIGINT/SIGTERM, `timeoutMs`, or — with `once` — until
 * no message came for `quietMs` after the subscription (the retained ones
 * arrive together right after it). Returns the exit code: 1 when `once`
 * and `phone` are given and the phone has no status, or the connection is lost.
 */
export async function watchStatus(a: StatusArgs, io: AdminIo, clock: Clock = systemClock): Promise<number> {
  const t = topics(a.conn.prefix);
  const client = await connectBroker(a.conn);
  let printed = 0;
  let quiet: TimerHandle | undefined;
  let limit: TimerHandle | undefined;
  let stop!: (code: number) => void;
  const stopped = new Promise<number>((resolve) => (stop = resolve));
  const onSignal = (): void => stop(0);
  const armQuiet = (): void => {
    if (!a.once) return;
    if (quiet !== undefined) clock.clearTimeout(quiet);
    quiet = clock.setTimeout(() => stop(a.phone !== undefined && printed === 0 ? -1 : 0), a.quietMs);
  };
  client.on('message', (topic, payload) => {
    const line = statusLine(t, topic, payload);
    if (line === undefined) return;
    if ('out' in line) {
      printed++;
      io.stdout(line.out);
    } else {
      io.stderr(line.err);
    }
    armQuiet();
  });
  client.on('close', () => {
    io.stderr('ipphone-admin: connection to the broker was lost\n');
    stop(1);
  });
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await subscribe(client, [a.phone !== undefined ? t.phoneStatus(a.phone) : t.allPhoneStatus]);
    armQuiet();
    // The timers are unref'd; the MQTT socket keeps the process alive meanwhile.
    if (a.timeoutMs !== undefined) limit = clock.setTimeout(() => stop(0), a.timeoutMs);
    let code = await stopped;
    if (code === -1) {
      io.stderr(`ipphone-admin: phone ${a.phone} has no status on this broker under ${a.conn.prefix}\n`);
      code = 1;
    }
    return code;
  } finally {
    if (quiet !== undefined) clock.clearTimeout(quiet);
    if (limit !== undefined) clock.clearTimeout(limit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    client.removeAllListeners('close');
    await client.endAsync();
  }
}
