/**
 * `console.tokenFile` (issue 15 §4, shared/CONTRACT.md "Call manager HTTP"):
 * read by `--check-config` and at start; a missing, empty, unreadable or
 * too-short token is one clear line, never the token itself.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { cmExample } from '../../helpers/contract-examples.js';
import { CONSOLE_TOKEN_MIN, loadCmConfigFile, readConsoleToken, validateCmConfig } from '../../../src/config/cm-config.js';
import { generateKeyPair } from '../../../src/protocol/envelope.js';

function workspace(t: { teardown(fn: () => void): void }): { dir: string; config(consoleSection: unknown): string } {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-cmtoken-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyFile = join(dir, 'ops-1.pem');
  writeFileSync(keyFile, generateKeyPair().privatePem);
  let n = 0;
  return {
    dir,
    config(consoleSection) {
      const p = join(dir, `cm-${n++}.json`);
      writeFileSync(p, JSON.stringify({ ...cmExample(), signingKey: keyFile, console: consoleSection }));
      return p;
    },
  };
}

test('console-token-config: tokenFile defaults to null; a string or null, nothing else', (t) => {
  const base = { ...cmExample(), signingKey: 'k.pem' };
  const r = validateCmConfig(base);
  t.true(r.ok && r.config.console.tokenFile === null && r.config.console.enabled);
  const bad = validateCmConfig({ ...base, console: { tokenFile: '' } });
  t.true(!bad.ok && bad.problems.some((p) => p.startsWith('console/tokenFile')));
  const num = validateCmConfig({ ...base, console: { tokenFile: 7 } });
  t.true(!num.ok && num.problems.some((p) => p.startsWith('console/tokenFile')));
});

test('console-token-config: a usable token file passes --check-config; the token is its text without surrounding whitespace', (t) => {
  const w = workspace(t);
  const file = join(w.dir, 'console.token');
  writeFileSync(file, '  0123456789abcdef0123\n');
  t.is(loadCmConfigFile(w.config({ enabled: true, tokenFile: file })).console.tokenFile, file);
  t.deepEqual(readConsoleToken(file), { ok: true, token: '0123456789abcdef0123' });
});

test('console-token-config: missing, empty, unreadable, too short, or with spaces: one line each, never the token', (t) => {
  const w = workspace(t);
  const write = (name: string, text: string): string => {
    const p = join(w.dir, name);
    writeFileSync(p, text);
    return p;
  };
  const short = 'x'.repeat(CONSOLE_TOKEN_MIN - 1);
  const unreadable = write('unreadable.token', 'y'.repeat(40));
  chmodSync(unreadable, 0o000);
  const cases: [string, RegExp][] = [
    [join(w.dir, 'nope.token'), /^console\/tokenFile: cannot read ".*nope\.token": ENOENT/],
    [write('empty.token', ' \n'), /^console\/tokenFile: ".*empty\.token" is empty/],
    [write('short.token', `${short}\n`), new RegExp(`^console/tokenFile: the token in ".*short\\.token" is too short \\(${CONSOLE_TOKEN_MIN - 1} characters; at least ${CONSOLE_TOKEN_MIN}`)],
    [write('spaces.token', 'two words that are long enough'), /^console\/tokenFile: ".*spaces\.token" must hold one token of printable ASCII/],
    [w.dir, /^console\/tokenFile: cannot read .*EISDIR/],
  ];
  // root reads any file: the unreadable case only where permissions bind.
  if (process.getuid?.() !== 0) cases.push([unreadable, /^console\/tokenFile: cannot read ".*unreadable\.token": EACCES/]);
  for (const [file, want] of cases) {
    const err = t.throws(() => loadCmConfigFile(w.config({ tokenFile: file })));
    t.regex(err!.message, want, file);
    t.is(err!.message.split('\n').length, 1, 'one line');
    t.false(err!.message.includes(short), 'the token is not echoed');
  }
});

test('console-token-config: with enabled false the token file is not read', (t) => {
  const w = workspace(t);
  t.false(loadCmConfigFile(w.config({ enabled: false, tokenFile: join(w.dir, 'nope.token') })).console.enabled);
});
