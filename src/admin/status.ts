/**
 * `ipphone-admin status`: phones' retained statuses, then live ones, one
 * JSON line `{ phone, ...status }` each, or a table for a person
 * (status-table.ts: `--table`, or by default on a terminal).
 */
import { systemClock, type Clock, type TimerHandle } from '../lib/clock.js';
import { errorMessage } from '../lib/errors.js';
import { decodeStatus } from '../protocol/codec.js';
import { topics, type Topics } from '../protocol/topics.js';
import type { AdminArgs } from './args.js';
import { connectBroker, subscribe } from './connect.js';
import type { AdminIo } from './sign-send.js';
import { followHeader, followRow, statusTable, type StatusRowInput } from './status-table.js';

type StatusArgs = Extract<AdminArgs, { kind: 'status' }>;

/**
 * One status message as the line to print, or an error line for stderr.
 * Topics that are not a phone status (under this prefix) give undefined.
 */
export function statusLine(t: Topics, topic: string, payload: Buffer): { out: string } | { err: string } | undefined {
  const row = statusRow(t, topic, payload);
  if (row === undefined) return undefined;
  if (row.status === undefined) return { err: `ipphone-admin: phone ${row.phone}: unreadable status: ${row.error}\n` };
  return { out: `${JSON.stringify({ phone: row.phone, ...row.status })}\n` };
}

/** One status message decoded for a table row (undefined for other topics). */
export function statusRow(t: Topics, topic: string, payload: Buffer): StatusRowInput | undefined {
  const phone = t.idOf(topic, 'phone');
  if (phone === undefined || topic !== t.phoneStatus(phone)) return undefined;
  try {
    return { phone, status: decodeStatus(payload) as unknown as Record<string, unknown> };
  } catch (err) {
    return { phone, error: errorMessage(err) };
  }
}

/**
 * Print statuses until SIGINT/SIGTERM, `timeoutMs`, or — with `once` — until
 * no message came for `quietMs` after the subscription (the retained ones
 * arrive together right after it). Returns the exit code: 1 when `once`
 * and `phone` are given and the phone has no status, or the connection is lost.
 * `a.format` (default JSON lines): `table` prints, with `once`, one table of
 * the latest status per phone at the end; without `once`, a header and then
 * each status as a row the moment it arrives.
 */
export async function watchStatus(a: StatusArgs, io: AdminIo, clock: Clock = systemClock): Promise<number> {
  const t = topics(a.conn.prefix);
  const table = a.format === 'table';
  const client = await connectBroker(a.conn);
  let printed = 0;
  /** `once` + table: the latest row per phone, printed at the end. */
  const latest = new Map<string, StatusRowInput>();
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
    if (table) {
      const row = statusRow(t, topic, payload);
      if (row === undefined) return;
      printed++;
      if (a.once) latest.set(row.phone, row);
      else io.stdout(followRow(row, new Date(clock.now())));
      armQuiet();
      return;
    }
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
    if (table && !a.once) io.stdout(followHeader());
    await subscribe(client, [a.phone !== undefined ? t.phoneStatus(a.phone) : t.allPhoneStatus]);
    armQuiet();
    // The timers are unref'd; the MQTT socket keeps the process alive meanwhile.
    if (a.timeoutMs !== undefined) limit = clock.setTimeout(() => stop(0), a.timeoutMs);
    let code = await stopped;
    if (table && a.once && code !== -1) io.stdout(statusTable([...latest.values()], a.conn.prefix));
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
