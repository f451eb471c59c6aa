import test from 'ava';
import { parseAdminArgs } from '../../../src/admin/args.js';
import { followHeader, followRow, statusCells, statusFormat, statusTable, STATUS_COLUMNS } from '../../../src/admin/status-table.js';

const live = (o: Record<string, unknown> = {}): Record<string, unknown> => ({ online: true, home: 'cm-a', services: 'cm-a', state: 'homed', pointersVersion: 7, configVersion: 0, rehomes: 1, ...o });

test('a person at a terminal gets a table, a pipe or a file gets JSON lines; --json and --table decide when given', (t) => {
  t.is(statusFormat(undefined, true), 'table');
  t.is(statusFormat(undefined, false), 'json');
  t.is(statusFormat('json', true), 'json');
  t.is(statusFormat('table', false), 'table');
});

test('status takes --json or --table, not both; without either the format is left to the terminal test', (t) => {
  const B = ['status', '--broker', 'mqtt://127.0.0.1:1883'];
  t.false('format' in (parseAdminArgs(B) as object));
  t.like(parseAdminArgs([...B, '--json']), { kind: 'status', format: 'json' });
  t.like(parseAdminArgs([...B, '--once', '--table']), { kind: 'status', once: true, format: 'table' });
  t.like(parseAdminArgs([...B, '--json', '--table']), { kind: 'usage', error: 'give --json or --table, not both' });
});

test('the --once table: a header, one aligned row per phone sorted by id, the will shown as offline', (t) => {
  const text = statusTable(
    [
      { phone: 'p-0002', status: { online: false } },
      { phone: 'p-0001', status: live({ sip: { registrar: 'cm-a', call: 'connected' } }) },
      { phone: 'p-0003', error: 'status: state must be a string' },
    ],
    'ipphone/v1',
  );
  const lines = text.trimEnd().split('\n');
  t.is(lines.length, 4);
  t.deepEqual(lines[0]!.split(/\s+/), [...STATUS_COLUMNS]);
  t.deepEqual(lines[1]!.split(/\s+/), ['p-0001', 'yes', 'homed', 'cm-a', 'cm-a', 'cm-a', 'connected', '7', '0', '1']);
  t.deepEqual(lines[2]!.split(/\s+/), ['p-0002', 'no', 'offline', '-', '-', '-', '-', '-', '-']);
  t.regex(lines[3]!, /^p-0003\s+\?\s+unreadable: status: state must be a string/);
  // Aligned: every column starts where its header does.
  const at = (l: string, i: number): number => l.indexOf(lines[1]!.split(/\s+/)[i]!, i === 0 ? 0 : 7);
  t.is(lines[0]!.indexOf('STATE'), at(lines[1]!, 2));
  t.is(lines[0]!.indexOf('STATE'), lines[2]!.indexOf('offline'));
});

test('the table of no phones says so', (t) => {
  t.regex(statusTable([], 'site1/v1'), /\(no phone has a status under site1\/v1\)\n$/);
});

test('cells from the network cannot move the cursor: control characters become spaces', (t) => {
  const cells = statusCells({ phone: 'p-1', status: live({ state: 'homed\u001b[2J\u009b1m' }) });
  t.is(cells[2], 'homed [2J 1m');
});

test('the SIP cell says unregistered, and carries any other word the phone gives (why it is not registered)', (t) => {
  t.is(statusCells({ phone: 'p', status: live({ sip: { registrar: null, call: 'idle', reason: 'sip-auth-failed' } }) })[5], 'unregistered: sip-auth-failed');
  t.is(statusCells({ phone: 'p', status: live({ sip: { registrar: 'cm-a', call: 'ringing', reason: null } }) })[5], 'cm-a ringing');
  t.is(statusCells({ phone: 'p', status: live({ sip: { registrar: 'cm-a', call: 'idle', future: 'x' } }) })[5], 'cm-a future=x');
  t.is(statusCells({ phone: 'p', status: live() })[5], '-');
});

test('follow mode: a header once, then each status as a row with the time it was heard', (t) => {
  t.regex(followHeader(), /^HEARD\s+PHONE\s+ONLINE\s+STATE/);
  const at = new Date(2026, 0, 2, 3, 4, 5);
  t.regex(followRow({ phone: 'p-0001', status: live() }, at), /^03:04:05\s+p-0001\s+yes\s+homed\s+cm-a/);
});
