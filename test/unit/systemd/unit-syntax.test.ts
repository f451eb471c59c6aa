/**
 * systemd's unit syntax as test/helpers/systemd-unit.ts reads it: table rows
 * of input → words / environment / command, and the inputs systemd refuses.
 * Expected values follow systemd.syntax(7), systemd.service(7) "Command
 * lines" and systemd.exec(7) `Environment=`.
 */
import test from 'ava';
import { expandArgv, parseUnit, splitWords, unitEnvironment, unitExecStart, UnitSyntaxError } from '../../helpers/systemd-unit.js';

const words: [string, string[]][] = [
  ['a b  c', ['a', 'b', 'c']],
  ['"a b" c', ['a b', 'c']],
  ["'a b' c", ['a b', 'c']],
  ['a"b c"d', ['ab cd']],
  [`"it's" 'say "hi"'`, ["it's", 'say "hi"']],
  ['a\\ b', ['a b']],
  ['"a\\"b"', ['a"b']],
  ["'a\\'b'", ["a'b"]],
  ['\\x41\\101\\u00e9\\U0001F600', ['AAé😀']],
  ['\\t\\n\\s\\\\', ['\t\n \\']],
  ['""', ['']],
  ['', []],
  ['  lead trail  ', ['lead', 'trail']],
];
for (const [input, expected] of words) test(`words: ${JSON.stringify(input)}`, (t) => t.deepEqual(splitWords(input), expected));

for (const bad of ['"open', "'open", 'trailing\\', '\\q', '\\x4', '\\000', '\\u0000'])
  test(`words refused: ${JSON.stringify(bad)}`, (t) => {
    t.throws(() => splitWords(bad), { instanceOf: UnitSyntaxError });
  });

const unit = (service: string): string => `[Unit]\nDescription=x\n\n[Service]\n${service}\n`;

const envRows: [string, Record<string, string>][] = [
  ['Environment=A=1', { A: '1' }],
  ['Environment=A=1 B=2', { A: '1', B: '2' }],
  ['Environment="A=1 2" B=3', { A: '1 2', B: '3' }],
  ['Environment="NODE_OPTIONS=--a --b"\nEnvironment=NODE_ENV=production', { NODE_OPTIONS: '--a --b', NODE_ENV: 'production' }],
  ["Environment='A=x y'", { A: 'x y' }],
  ['Environment=A=1\nEnvironment=A=2', { A: '2' }],
  ['Environment=A=1\nEnvironment=\nEnvironment=B=2', { B: '2' }],
  ['Environment=A=', { A: '' }],
  ['Environment=A=%n', { A: 'x.service' }],
  ['Environment=A=100%%', { A: '100%' }],
];
for (const [service, expected] of envRows)
  test(`Environment: ${JSON.stringify(service)}`, (t) => t.deepEqual(unitEnvironment(parseUnit(unit(service)), 'x.service'), expected));

test('a continued Environment= line is one value: the backslash becomes a space', (t) => {
  t.throws(() => unitEnvironment(parseUnit(unit('Environment=A=a \\\n  b')), 'x.service'), { instanceOf: UnitSyntaxError, message: /invalid environment assignment "b"/ });
  t.deepEqual(unitEnvironment(parseUnit(unit('Environment="A=a \\\n# a comment inside\n  b"')), 'x.service'), { A: 'a  b' });
});

for (const bad of ['Environment=1A=x', 'Environment=A', 'Environment="A=x', 'Environment==x', 'Environment=A=%q'])
  test(`Environment refused: ${JSON.stringify(bad)}`, (t) => {
    t.throws(() => unitEnvironment(parseUnit(unit(bad)), 'x.service'), { instanceOf: UnitSyntaxError });
  });

const env = { A: 'one two', B: 'x', E: '' };
const execRows: { exec: string; path: string; argv: string[]; flags?: Partial<{ ignoreFailure: boolean; privileged: boolean; noSetCredentials: boolean }> }[] = [
  { exec: '/usr/bin/node /x.mjs --c "a b"', path: '/usr/bin/node', argv: ['/usr/bin/node', '/x.mjs', '--c', 'a b'] },
  { exec: '/bin/p $A', path: '/bin/p', argv: ['/bin/p', 'one', 'two'] },
  { exec: '/bin/p ${A}', path: '/bin/p', argv: ['/bin/p', 'one two'] },
  { exec: '/bin/p --o=${B}y', path: '/bin/p', argv: ['/bin/p', '--o=xy'] },
  { exec: '/bin/p --o=$B', path: '/bin/p', argv: ['/bin/p', '--o=$B'] },
  { exec: '/bin/p $E ${E} $UNSET', path: '/bin/p', argv: ['/bin/p', ''] },
  { exec: '/bin/p $$B', path: '/bin/p', argv: ['/bin/p', '$B'] },
  { exec: ':/bin/p $A ${A}', path: '/bin/p', argv: ['/bin/p', '$A', '${A}'] },
  { exec: '-/bin/p', path: '/bin/p', argv: ['/bin/p'], flags: { ignoreFailure: true } },
  { exec: '@/bin/p name a', path: '/bin/p', argv: ['name', 'a'] },
  { exec: '-@/bin/p name', path: '/bin/p', argv: ['name'], flags: { ignoreFailure: true } },
  { exec: '+/bin/p', path: '/bin/p', argv: ['/bin/p'], flags: { privileged: true } },
  { exec: '!/bin/p', path: '/bin/p', argv: ['/bin/p'], flags: { noSetCredentials: true } },
  { exec: '!!/bin/p', path: '/bin/p', argv: ['/bin/p'], flags: { noSetCredentials: true } },
  { exec: '/bin/p %n %%', path: '/bin/p', argv: ['/bin/p', 'x.service', '%'] },
  { exec: '/bin/p \\\n  --next', path: '/bin/p', argv: ['/bin/p', '--next'] },
];
for (const row of execRows)
  test(`ExecStart: ${JSON.stringify(row.exec)}`, (t) => {
    const envLines = Object.entries(env).map(([k, v]) => `Environment="${k}=${v}"`).join('\n');
    const c = unitExecStart(parseUnit(unit(`${envLines}\nExecStart=${row.exec}`)), 'x.service', env);
    t.is(c.path, row.path);
    t.deepEqual(c.argv, row.argv);
    t.like(c, { ignoreFailure: false, privileged: false, noSetCredentials: false, ...row.flags });
  });

test('ExecStart: an empty assignment resets, a second command is refused', (t) => {
  t.deepEqual(unitExecStart(parseUnit(unit('ExecStart=/a\nExecStart=\nExecStart=/b')), 'x.service', {}).argv, ['/b']);
  t.throws(() => unitExecStart(parseUnit(unit('ExecStart=/a\nExecStart=/b')), 'x.service', {}), { instanceOf: UnitSyntaxError, message: /line 6: more than one ExecStart=/ });
});

for (const bad of ['ExecStart=node x.mjs', 'ExecStart=/a ; /b', 'ExecStart="/a', 'ExecStart=@/a', 'ExecStart=-', 'ExecStart=${E}'])
  test(`ExecStart refused: ${JSON.stringify(bad)}`, (t) => {
    t.throws(() => unitExecStart(parseUnit(unit(bad)), 'x.service', { E: '' }), { instanceOf: UnitSyntaxError });
  });

test('no ExecStart, no section, a line without "=": refused with the line number', (t) => {
  t.throws(() => unitExecStart(parseUnit(unit('Type=simple')), 'x.service', {}), { message: /no ExecStart=/ });
  t.throws(() => parseUnit('A=1\n'), { message: /line 1: setting before any \[Section\]/ });
  t.throws(() => parseUnit('[Service]\n\nnonsense\n'), { message: /line 3: not a Key=value line/ });
});

test('settings outside [Service] are not the service environment', (t) => {
  t.deepEqual(unitEnvironment(parseUnit('[Unit]\nEnvironment=A=1\n[Service]\nEnvironment=B=2\n'), 'x.service'), { B: '2' });
});

test('$VAR standing alone splits its value honouring quotes in it', (t) => {
  t.deepEqual(expandArgv(['$V'], { V: '--a "b c"  d' }), ['--a', 'b c', 'd']);
});
