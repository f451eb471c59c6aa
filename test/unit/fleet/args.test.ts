import test from 'ava';
import { parseFleetArgs, summaryLine, USAGE } from '../../../src/fleet/main.js';

test('--config and --count are all a run needs; prefix, state dir and busy default to unset', (t) => {
  t.deepEqual(parseFleetArgs(['--config', 'a.json', '--count', '5']), { kind: 'run', config: 'a.json', count: 5 });
});

test('every option, in both --flag value and --flag=value forms', (t) => {
  const a = parseFleetArgs(['--config=a.json', '--count=2000', '--prefix', 'lab-', '--state-dir=/tmp/s', '--busy', '3', '--summary-ms=1000']);
  t.deepEqual(a, { kind: 'run', config: 'a.json', count: 2000, prefix: 'lab-', stateDir: '/tmp/s', busy: 3, summaryMs: 1000 });
});

test('--help wins wherever it is, unless a bad value comes first', (t) => {
  t.deepEqual(parseFleetArgs(['--count', '5', '--help']), { kind: 'help' });
  t.deepEqual(parseFleetArgs(['--count', 'x', '--help']), { kind: 'usage', error: '--count needs a whole number (got "x")' });
  t.deepEqual(parseFleetArgs(['--config', 'a.json', '-h']), { kind: 'help' });
  t.regex(USAGE, /--busy N/);
  t.regex(USAGE, /--count N/);
});

const usage: [string, string[], RegExp][] = [
  ['no arguments', [], /--config FILE is required/],
  ['no count', ['--config', 'a.json'], /--count N is required/],
  ['unknown flag', ['--config', 'a.json', '--count', '1', '--board', 'b.json'], /unknown argument "--board"/],
  ['missing value', ['--config'], /--config needs a value/],
  ['empty value', ['--config=', '--count', '1'], /--config needs a value/],
  ['count zero', ['--config', 'a.json', '--count', '0'], /count must be an integer from 1 to 100000 \(got 0\)/],
  ['count negative', ['--config', 'a.json', '--count', '-3'], /--count needs a whole number/],
  ['count fractional', ['--config', 'a.json', '--count', '2.5'], /--count needs a whole number/],
  ['count too large', ['--config', 'a.json', '--count', '100001'], /count must be an integer from 1 to 100000/],
  ['prefix with a slash', ['--config', 'a.json', '--count', '3', '--prefix', 'a/b'], /prefix "a\/b" does not make valid phone ids/],
  ['prefix with a wildcard', ['--config', 'a.json', '--count', '3', '--prefix', '+'], /does not make valid phone ids/],
  ['prefix too long for the count', ['--config', 'a.json', '--count', '10', '--prefix', 'x'.repeat(63)], /does not make valid phone ids/],
  ['busy over count', ['--config', 'a.json', '--count', '3', '--busy', '4'], /--busy 4 is more than --count 3/],
  ['summary too fast', ['--config', 'a.json', '--count', '3', '--summary-ms', '10'], /--summary-ms must be from 100/],
];

for (const [name, argv, error] of usage) {
  test(`bad arguments: ${name}`, (t) => {
    const a = parseFleetArgs(argv);
    t.is(a.kind, 'usage');
    t.regex(a.error ?? '', error);
  });
}

test('a prefix of 62 characters still fits count 99 (ids up to 64 characters)', (t) => {
  t.is(parseFleetArgs(['--config', 'a.json', '--count', '99', '--prefix', 'x'.repeat(62)]).kind, 'run');
  t.is(parseFleetArgs(['--config', 'a.json', '--count', '100', '--prefix', 'x'.repeat(62)]).kind, 'usage');
});

test('the summary line is one pino-shaped JSON line with msg "fleet"', (t) => {
  const line = summaryLine({ count: 3, homed: 2, byHome: { 'cm-a': 2 }, noService: 1, rehomes: 4, busy: 1 }, 1234);
  t.true(line.endsWith('\n'));
  t.is(line.indexOf('\n'), line.length - 1);
  t.deepEqual(JSON.parse(line), { level: 30, time: 1234, msg: 'fleet', count: 3, homed: 2, byHome: { 'cm-a': 2 }, noService: 1, rehomes: 4, busy: 1 });
});
