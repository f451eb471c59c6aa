import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { main, parseArgs } from '../../../src/callmanager/main.js';

function io() {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, io: { stdout: (s: string) => void out.push(s), stderr: (s: string) => void err.push(s) } };
}

test('parseArgs', (t) => {
  t.deepEqual(parseArgs(['--help']), { kind: 'help' });
  t.deepEqual(parseArgs(['--config', 'a.json']), { kind: 'run', config: 'a.json' });
  t.deepEqual(parseArgs(['--config=a.json']), { kind: 'run', config: 'a.json' });
  t.deepEqual(parseArgs(['--check-config', 'b.json']), { kind: 'check', config: 'b.json' });
  t.is(parseArgs([]).kind, 'usage');
  t.is(parseArgs(['--config']).kind, 'usage');
  t.is(parseArgs(['--bogus']).kind, 'usage');
});

test('--help prints usage and exits 0', async (t) => {
  const o = io();
  t.is(await main(['--help'], o.io), 0);
  t.regex(o.out.join(''), /--check-config FILE/);
});

test('bad arguments exit 2 with a reason', async (t) => {
  const o = io();
  t.is(await main(['--frob'], o.io), 2);
  t.regex(o.err.join(''), /unknown argument "--frob"/);
});

test('--check-config: one stderr line per problem and exit 1', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cm-main-'));
  const file = path.join(dir, 'bad.json');
  writeFileSync(file, JSON.stringify({ cmId: 'bad id', broker: 'ftp://x', group: [], keyId: 'k' }));
  const o = io();
  t.is(await main(['--check-config', file], o.io), 1);
  const lines = o.err.join('').trimEnd().split('\n');
  t.true(lines.length >= 3, lines.join('\n'));
  for (const l of lines) t.true(l.startsWith(`${file}: `), l);
  t.true(lines.some((l) => l.includes('cmId')));
  t.true(lines.some((l) => l.includes('signingKey')));
});
