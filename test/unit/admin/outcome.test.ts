import test from 'ava';
import { configOutcome, PointersWaiter } from '../../../src/admin/outcome.js';
import { statusLine } from '../../../src/admin/status.js';
import { main } from '../../../src/admin/main.js';
import { topics } from '../../../src/protocol/topics.js';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

const j = (o: unknown): Buffer => Buffer.from(JSON.stringify(o));
const STATUS = { online: true, home: 'cm-b', services: 'cm-b', state: 'homed', pointersVersion: 9, configVersion: 0, rehomes: 1 };
const PT = 'ipphone/v1/phone/p-1/pointers';

test('config result: only our version decides; ok → 0-outcome, refused → error in words', (t) => {
  t.is(configOutcome(5, j({ version: 4, ok: true })), undefined);
  t.deepEqual(configOutcome(5, j({ version: 5, ok: true })), { ok: true, line: { version: 5, ok: true } });
  t.deepEqual(configOutcome(5, j({ version: 5, ok: false, error: 'keepalive/intervalMs: too small' })), {
    ok: false,
    line: { version: 5, ok: false, error: 'keepalive/intervalMs: too small' },
    error: 'keepalive/intervalMs: too small',
  });
  t.like(configOutcome(5, j({ version: 5, ok: false })), { ok: false, error: 'the phone refused the change without saying why' });
});

test('config result: a malformed result is reported and ignored', (t) => {
  const bad: string[] = [];
  t.is(configOutcome(5, Buffer.from('nope'), (w) => bad.push(w)), undefined);
  t.is(configOutcome(5, j({ version: 5, ok: 'yes' }), (w) => bad.push(w)), undefined);
  t.is(bad.length, 2);
  t.regex(bad[1]!, /ok must be true or false/);
});

test('pointers wait: a live status with our version is acceptance', (t) => {
  const w = new PointersWaiter(9, PT);
  t.is(w.onStatus(j({ ...STATUS, pointersVersion: 8 }), false), undefined);
  t.deepEqual(w.onStatus(j(STATUS), false), { ok: true, line: STATUS });
});

test('pointers wait: a status retained before the push does not count (a replay would look accepted)', (t) => {
  const w = new PointersWaiter(9, PT);
  t.is(w.onStatus(j(STATUS), true), undefined);
  t.is(w.onStatus(j({ online: false }), false), undefined, 'the will has no version');
  t.is(w.onStatus(Buffer.from('{'), false), undefined);
});

test('pointers wait: once the retained status shows the phone holding our version, a live status republished with it is no acceptance — only the rejection answers (a replay exited 0 in a CI run)', (t) => {
  const w = new PointersWaiter(9, PT);
  t.is(w.onStatus(j(STATUS), true), undefined);
  t.is(w.onStatus(j({ ...STATUS, services: 'cm-a' }), false), undefined, 'republished for a services move, same version');
  t.like(w.onEvent(j({ type: 'rejected', topic: PT, error: 'pointers version 9 is not newer than held version 9' })), { ok: false });
  const rebase = new PointersWaiter(9, PT);
  t.is(rebase.onStatus(j({ ...STATUS, pointersVersion: 12 }), true), undefined);
  t.like(rebase.onStatus(j(STATUS), false), { ok: true }, 'held a newer one (a rebase goes below it): the live status with ours is acceptance');
  const fresh = new PointersWaiter(9, PT);
  t.is(fresh.onStatus(j({ ...STATUS, pointersVersion: 8 }), true), undefined);
  t.like(fresh.onStatus(j(STATUS), false), { ok: true }, 'held an older one: the live status with ours is');
});

test('pointers wait: a rejected event for the pointers topic ends it with the error; others are ignored', (t) => {
  const w = new PointersWaiter(9, PT);
  t.is(w.onEvent(j({ type: 'rehomed', from: 'cm-a', to: 'cm-b' })), undefined);
  t.is(w.onEvent(j({ type: 'rejected', topic: 'ipphone/v1/phone/p-1/ack', error: 'x' })), undefined);
  t.is(w.onEvent(Buffer.from('[]')), undefined);
  t.deepEqual(w.onEvent(j({ type: 'rejected', topic: PT, error: 'pointers version 9 is not newer than held version 9', code: 'VERSION_REPLAYED' })), {
    ok: false,
    line: { type: 'rejected', topic: PT, error: 'pointers version 9 is not newer than held version 9', code: 'VERSION_REPLAYED' },
    error: 'pointers version 9 is not newer than held version 9',
  });
});

test('status line: { phone, ...status } for phone status topics under the prefix only', (t) => {
  const tp = topics('lab/v1');
  t.deepEqual(statusLine(tp, 'lab/v1/phone/p-1/status', j(STATUS)), { out: `${JSON.stringify({ phone: 'p-1', ...STATUS })}\n` });
  t.deepEqual(statusLine(tp, 'lab/v1/phone/p-1/status', j({ online: false })), { out: '{"phone":"p-1","online":false}\n' });
  t.is(statusLine(tp, 'lab/v1/phone/p-1/event', j(STATUS)), undefined);
  t.is(statusLine(tp, 'ipphone/v1/phone/p-1/status', j(STATUS)), undefined);
  const bad = statusLine(tp, 'lab/v1/phone/p-1/status', j({ online: true }));
  t.truthy(bad && 'err' in bad && /phone p-1: unreadable status: status: state must be a string/.test(bad.err));
});

function capture(): { io: { stdout: (s: string) => void; stderr: (s: string) => void }; out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { io: { stdout: (s) => out.push(s), stderr: (s) => err.push(s) }, out, err };
}

test('main: help → 0 on stdout; bad arguments → 2 with the subcommand usage on stderr', async (t) => {
  const a = capture();
  t.is(await main(['config', '--help'], a.io), 0);
  t.regex(a.out.join(''), /Usage: ipphone-admin config/);
  const b = capture();
  t.is(await main(['status'], b.io), 2);
  t.regex(b.err.join(''), /^ipphone-admin: --broker is required\nUsage: ipphone-admin status/);
  t.deepEqual(b.out, []);
});

test('main: a bad pointer list is refused before connecting, every problem on its own line (exit 1)', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'admin-main-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { io, err } = capture();
  writeFileSync(join(dir, 'l.json'), JSON.stringify([{ id: 'a', broker: 'tcp://x', services: 'http://y' }, { id: 'a', broker: 'mqtt://x', services: 'http://y' }]));
  // A key that parses; the broker is never contacted (port 1 would refuse anyway).
  t.is(await main(['keygen', '--out', join(dir, 'k.pem')], capture().io), 0);
  const code = await main(['pointers', '--broker', 'mqtt://127.0.0.1:1', '--phone', 'p-1', '--key', join(dir, 'k.pem'), '--kid', 'k', '--list', join(dir, 'l.json')], io);
  t.is(code, 1);
  const lines = err.join('').trimEnd().split('\n');
  t.regex(lines[0]!, /pointer list .*l\.json has 2 problems/);
  t.regex(lines[1]!, /list\/0\/broker: scheme must be/);
  t.regex(lines[2]!, /list\/1\/id: duplicate id "a"/);
  t.false(err.join('').includes('ECONNREFUSED'));
});
