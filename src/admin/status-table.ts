/**
 * `ipphone-admin status` for people: phones' statuses as an aligned table
 * (issue 17: `--once` printed raw JSON lines, which a person at a terminal
 * has to read field by field). Scripts keep the JSON lines: `--json`, or any
 * stdout that is not a terminal (a pipe, a file) — so every script written
 * against the JSON output keeps working unchanged. Pure: rows in, text out.
 */
import type { StatusFormat } from './args.js';

/** One phone's row: its status as decoded (`online: false` for a will), or the reason it is unreadable. */
export interface StatusRowInput {
  phone: string;
  status?: Record<string, unknown>;
  error?: string;
}

/** Column headers, in order. */
export const STATUS_COLUMNS = ['PHONE', 'ONLINE', 'STATE', 'HOME', 'SERVICES', 'SIP', 'POINTERS', 'CONFIG', 'REHOMES'] as const;

/** Widths of the columns when rows are printed as they arrive (follow mode): long values push the row, never get cut. */
const FOLLOW_WIDTHS = [16, 6, 12, 10, 10, 16, 14, 14, 7];

/** How to print when neither `--json` nor `--table` was given: a table on a terminal, JSON lines otherwise. */
export function statusFormat(given: StatusFormat | undefined, stdoutIsTty: boolean): StatusFormat {
  return given ?? (stdoutIsTty ? 'table' : 'json');
}

const dash = (v: unknown): string => (v === null || v === undefined || v === '' ? '-' : String(v));

/**
 * The SIP cell: where the phone is registered and its call when not idle, and any other
 * words its `sip` object carries (e.g. why it is not registered).
 */
function sipCell(sip: unknown): string {
  if (typeof sip !== 'object' || sip === null || Array.isArray(sip)) return '-';
  const s = sip as Record<string, unknown>;
  // `reason`: why it is not registered at its home (e.g. sip-auth-failed), null when it is.
  const parts = [typeof s.registrar === 'string' ? s.registrar : 'unregistered'];
  if (typeof s.reason === 'string') parts[0] = `${parts[0]}: ${s.reason}`;
  if (typeof s.call === 'string' && s.call !== 'idle') parts.push(s.call);
  for (const [k, v] of Object.entries(s)) if (k !== 'registrar' && k !== 'call' && k !== 'reason' && (typeof v === 'string' || typeof v === 'number')) parts.push(`${k}=${v}`);
  return parts.join(' ');
}

/** The cells of one row, in {@link STATUS_COLUMNS} order. Control characters become spaces. */
export function statusCells(r: StatusRowInput): string[] {
  // eslint-disable-next-line no-control-regex
  const clean = (s: string): string => s.replace(/[\u0000-\u001f\u007f-\u009f]/g, ' ');
  if (r.status === undefined) return [r.phone, '?', `unreadable: ${r.error ?? '?'}`, '-', '-', '-', '-', '-', '-'].map(clean);
  const s = r.status;
  if (s.online === false && s.state === undefined) return [r.phone, 'no', 'offline', '-', '-', '-', '-', '-', '-'].map(clean);
  return [r.phone, s.online === true ? 'yes' : 'no', dash(s.state), dash(s.home), dash(s.services), sipCell(s.sip), dash(s.pointersVersion), dash(s.configVersion), dash(s.rehomes)].map(clean);
}

/** Cells padded to widths and joined by two spaces, trailing blanks cut. */
function line(cells: readonly string[], widths: readonly number[]): string {
  return cells.map((c, i) => (i === cells.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ').trimEnd();
}

/**
 * The whole table (`--once`): header, then one row per phone sorted by phone id, columns as
 * wide as their widest cell. With no rows, the header and a line saying so.
 */
export function statusTable(rows: readonly StatusRowInput[], prefix: string): string {
  const cells = [...rows].sort((a, b) => (a.phone < b.phone ? -1 : a.phone > b.phone ? 1 : 0)).map(statusCells);
  const widths = STATUS_COLUMNS.map((h, i) => Math.max(h.length, ...cells.map((c) => c[i]!.length)));
  const out = [line(STATUS_COLUMNS, widths), ...cells.map((c) => line(c, widths))];
  if (cells.length === 0) out.push(`(no phone has a status under ${prefix})`);
  return `${out.join('\n')}\n`;
}

/** Follow mode: the header, printed once before the first row. */
export function followHeader(): string {
  return `${line(['HEARD', ...STATUS_COLUMNS], [8, ...FOLLOW_WIDTHS])}\n`;
}

/** Follow mode: one row as it arrives, with the local time it was heard. */
export function followRow(r: StatusRowInput, at: Date): string {
  const heard = at.toTimeString().slice(0, 8);
  return `${line([heard, ...statusCells(r)], [8, ...FOLLOW_WIDTHS])}\n`;
}
