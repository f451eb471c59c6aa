/** The agent's command line as operators use it (child processes). */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { programArgs } from '../helpers/programs.js';

const ROOT = resolve(import.meta.dirname, '../..');
const run = (...args: string[]) => spawnSync(process.execPath, [...programArgs('ipphone-agent'), ...args], { cwd: ROOT, encoding: 'utf8', timeout: 30_000 });

const dir = mkdtempSync(join(tmpdir(), 'ipphone-cli-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, body: unknown): string => {
  const p = join(dir, name);
  writeFileSync(p, typeof body === 'string' ? body : JSON.stringify(body));
  return p;
};
const good = { phoneId: 'p-1', pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1', services: 'http://127.0.0.1:1/services' }] };

test('--help exits 0 and names every flag', (t) => {
  const r = run('--help');
  t.is(r.status, 0);
  for (const f of ['--config', '--check-config', '--board', '--state-dir']) t.true(r.stdout.includes(f), f);
});

test('--check-config on a good file exits 0 and prints "FILE: ok", as the call manager does', (t) => {
  const f = file('good.json', good);
  const r = run('--check-config', f);
  t.is(r.status, 0, r.stderr);
  t.is(r.stderr, '');
  t.is(r.stdout, `${f}: ok\n`);
});

test('--check-config also checks the board the config names: a bad one is one line per problem naming the board file, exit 1', (t) => {
  // A board the agent would refuse at start: an unknown input event code, a keypad without its device.
  const board = file('bad-board.json', { name: 'b', display: { driver: 'none' }, keypad: { driver: 'evdev' }, hook: { driver: 'evdev', path: '/dev/input/event1', event: 'KEY_PHONY' } });
  const cfg = file('with-bad-board.json', { ...good, board });
  const r = run('--check-config', cfg);
  t.is(r.status, 1);
  t.is(r.stdout, '');
  const lines = r.stderr.trim().split('\n');
  t.is(lines.length, 2, r.stderr);
  t.true(lines.every((l) => l.startsWith(`${cfg}: board ${board}: `)), r.stderr);
  t.regex(r.stderr, /keypad\/path: is required for driver evdev/);
  t.regex(r.stderr, /hook\/event: unknown input event code "KEY_PHONY"/);
  // A board file that is not there.
  const missing = run('--check-config', file('missing-board.json', { ...good, board: join(dir, 'nope.json') }));
  t.is(missing.status, 1);
  t.regex(missing.stderr, /board .*nope\.json: .*cannot read/);
  t.is(missing.stderr.trim().split('\n').length, 1);
});

test('--check-config with --board checks that board instead; the shipped evdev reference board passes', (t) => {
  const cfg = file('plain.json', good);
  const r = run('--check-config', cfg, '--board', resolve(ROOT, 'hw/boards/ref-dt-evdev.json'));
  t.is(r.status, 0, r.stderr);
  t.is(r.stdout, `${cfg}: ok\n`);
  const bad = run('--check-config', cfg, '--board', file('b2.json', { name: 'b', display: { driver: 'none' }, keypad: { driver: 'none' }, hook: null, leds: { message: { led: 'relative' } } }));
  t.is(bad.status, 1);
  t.regex(bad.stderr, /b2\.json: leds\/message\/led: must be a string matching/);
});

test('--check-config reports every problem, one line each, exit 1', (t) => {
  const bad = {
    phoneId: 'has space',
    pointers: [
      { id: 'cm-a', broker: 'http://x', services: 'http://127.0.0.1/' },
      { id: 'cm-a', broker: 'mqtt://127.0.0.1', services: 'ftp://x' },
    ],
    keepalive: { intervalMs: 5 },
    typo: true,
  };
  const r = run('--check-config', file('bad.json', bad));
  t.is(r.status, 1);
  const lines = r.stderr.trim().split('\n');
  t.true(lines.length >= 5, r.stderr);
  for (const needle of ['phoneId', 'pointers/0/broker', 'pointers/1/services', 'duplicate', 'intervalMs', 'typo']) t.true(r.stderr.includes(needle), `${needle} in\n${r.stderr}`);
});

test('not JSON → exit 1 with the reason', (t) => {
  const r = run('--check-config', file('broken.json', '{ nope'));
  t.is(r.status, 1);
  t.regex(r.stderr, /JSON/);
});

test('an unusable board → exit non-zero with a one-line reason', (t) => {
  const board = file('board.json', { name: 'ref', display: { driver: 'serial-lcd', path: '/dev/nonexistent' }, keypad: { driver: 'none' }, hook: null });
  const r = run('--config', file('c.json', { ...good, stateDir: join(dir, 'st') }), '--board', board);
  t.not(r.status, 0);
  t.regex(r.stderr, /board/);
  t.is(r.stderr.trim().split('\n').length, 1);
});

test('the reference board on a machine without sysfs GPIO → exit 1 naming the GPIO problem, one line', (t) => {
  const r = run('--config', file('c2.json', { ...good, stateDir: join(dir, 'st2') }), '--board', resolve(ROOT, 'hw/boards/ref-rpi-20x4.json'));
  t.is(r.status, 1);
  t.regex(r.stderr, /unusable board: .*gpio/i);
  t.is(r.stderr.trim().split('\n').length, 1, r.stderr);
});

test('bad arguments → usage on stderr, non-zero', (t) => {
  const r = run('--bogus');
  t.not(r.status, 0);
  t.regex(r.stderr, /Usage/);
});
