import test from 'ava';
import { DEFAULT_CONNECT_TIMEOUT_MS, DEFAULT_QUIET_MS, DEFAULT_TIMEOUT_MS, parseAdminArgs } from '../../../src/admin/args.js';
import { SUBCOMMAND_USAGE, USAGE } from '../../../src/admin/usage.js';

const B = ['--broker', 'mqtt://127.0.0.1:1883'];
const SIGN = ['--phone', 'p-1', '--key', 'k.pem', '--kid', 'ops-1'];
const CONN = { broker: 'mqtt://127.0.0.1:1883', prefix: 'ipphone/v1', mqttVersion: 5, connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS };

test('keygen: --out, and --force', (t) => {
  t.deepEqual(parseAdminArgs(['keygen', '--out', 'k.pem']), { kind: 'keygen', out: 'k.pem', force: false });
  t.deepEqual(parseAdminArgs(['keygen', '--out=k.pem', '--force']), { kind: 'keygen', out: 'k.pem', force: true });
});

test('config: required flags and defaults', (t) => {
  t.deepEqual(parseAdminArgs(['config', ...B, ...SIGN, '--file', 'patch.json']), {
    kind: 'config',
    conn: CONN,
    phone: 'p-1',
    key: 'k.pem',
    kid: 'ops-1',
    file: 'patch.json',
    timeoutMs: DEFAULT_TIMEOUT_MS,
  });
});

test('config: every option', (t) => {
  const a = parseAdminArgs([
    'config', ...B, ...SIGN, '--file=patch.json', '--version', '42', '--expires-in', '60000', '--timeout', '500',
    '--prefix', 'lab/v1', '--mqtt-version', '4', '--username', 'ops', '--password-file', 'pw.txt', '--connect-timeout', '2000',
  ]);
  t.deepEqual(a, {
    kind: 'config',
    conn: { broker: 'mqtt://127.0.0.1:1883', prefix: 'lab/v1', mqttVersion: 4, username: 'ops', passwordFile: 'pw.txt', connectTimeoutMs: 2000 },
    phone: 'p-1',
    key: 'k.pem',
    kid: 'ops-1',
    file: 'patch.json',
    version: 42,
    expiresInMs: 60000,
    timeoutMs: 500,
  });
});

test('pointers: defaults reason admin, no wait, no rebase', (t) => {
  t.deepEqual(parseAdminArgs(['pointers', ...B, ...SIGN, '--list', 'l.json']), {
    kind: 'pointers',
    conn: CONN,
    phone: 'p-1',
    key: 'k.pem',
    kid: 'ops-1',
    list: 'l.json',
    reason: 'admin',
    wait: false,
    timeoutMs: DEFAULT_TIMEOUT_MS,
    rebase: false,
  });
  const w = parseAdminArgs(['pointers', ...B, ...SIGN, '--list', 'l.json', '--reason', 'rebalance', '--wait', '--password', 'pw']);
  t.like(w, { kind: 'pointers', reason: 'rebalance', wait: true, conn: { password: 'pw' } });
});

test('status: broker only, then every option', (t) => {
  t.deepEqual(parseAdminArgs(['status', ...B]), { kind: 'status', conn: CONN, once: false, quietMs: DEFAULT_QUIET_MS });
  t.deepEqual(parseAdminArgs(['status', ...B, '--phone', 'p-9', '--once', '--timeout', '3000', '--quiet', '200']), {
    kind: 'status',
    conn: CONN,
    phone: 'p-9',
    once: true,
    timeoutMs: 3000,
    quietMs: 200,
  });
});

test('acl: --config, and --operator repeated in order', (t) => {
  t.deepEqual(parseAdminArgs(['acl', '--config', 'cm.json']), { kind: 'acl', config: 'cm.json', operators: [] });
  t.deepEqual(parseAdminArgs(['acl', '--operator', 'ops-1', '--config=cm.json', '--operator=ops-2']), { kind: 'acl', config: 'cm.json', operators: ['ops-1', 'ops-2'] });
});

const MQTTS = ['--broker', 'mqtts://127.0.0.1:8883'];
const TLS = ['--ca', 'ca.pem', '--cert', 'ops.pem', '--tls-key', 'ops.key'];

test('TLS flags on every command that takes --broker', (t) => {
  const conn = { broker: 'mqtts://127.0.0.1:8883', prefix: 'ipphone/v1', mqttVersion: 5, connectTimeoutMs: DEFAULT_CONNECT_TIMEOUT_MS, ca: 'ca.pem', cert: 'ops.pem', key: 'ops.key' };
  t.like(parseAdminArgs(['status', ...MQTTS, ...TLS]), { kind: 'status', conn });
  t.like(parseAdminArgs(['config', ...MQTTS, ...TLS, ...SIGN, '--file', 'f']), { kind: 'config', conn });
  t.like(parseAdminArgs(['pointers', ...MQTTS, ...TLS, ...SIGN, '--list', 'l']), { kind: 'pointers', conn });
  t.like(parseAdminArgs(['status', '--broker', 'wss://h/mqtt', '--ca=ca.pem']), { kind: 'status', conn: { broker: 'wss://h/mqtt', ca: 'ca.pem' } });
  t.false('cert' in (parseAdminArgs(['status', ...MQTTS, '--ca', 'ca.pem']) as { conn: object }).conn);
});

test('user name and password with TLS', (t) => {
  t.like(parseAdminArgs(['status', ...MQTTS, '--ca', 'ca.pem', '--username', 'ops', '--password-file', 'pw']), {
    conn: { ca: 'ca.pem', username: 'ops', passwordFile: 'pw' },
  });
});

test('--help on the command and on every subcommand', (t) => {
  t.deepEqual(parseAdminArgs(['--help']), { kind: 'help' });
  t.deepEqual(parseAdminArgs(['-h']), { kind: 'help' });
  for (const sub of ['keygen', 'config', 'pointers', 'status', 'acl'] as const) {
    t.deepEqual(parseAdminArgs([sub, '--help']), { kind: 'help', sub });
    t.deepEqual(parseAdminArgs([sub, '--broker', 'x', '-h']), { kind: 'help', sub }, 'help wins over missing/invalid values');
    t.regex(SUBCOMMAND_USAGE[sub], new RegExp(`ipphone-admin ${sub}`));
  }
  t.regex(USAGE, /ipphone-admin status/);
  t.regex(USAGE, /ipphone-admin acl --config CM\.json \[--operator NAME\]/);
  for (const sub of ['config', 'pointers', 'status'] as const) t.regex(SUBCOMMAND_USAGE[sub], /--ca FILE[\s\S]*--cert FILE[\s\S]*--tls-key FILE/);
});

const usage: [string, string[], RegExp][] = [
  ['nothing', [], /a subcommand is required/],
  ['unknown subcommand', ['push'], /unknown subcommand "push"/],
  ['keygen without --out', ['keygen'], /--out is required/],
  ['keygen --force=1', ['keygen', '--out', 'k', '--force=1'], /--force takes no value/],
  ['flag of another subcommand', ['keygen', '--out', 'k', '--broker', 'mqtt://h'], /unknown argument "--broker"/],
  ['missing value', ['status', '--broker'], /--broker needs a value/],
  ['empty value', ['status', '--broker='], /--broker needs a value/],
  ['twice', ['status', ...B, ...B], /--broker given twice/],
  ['config: all missing, each named', ['config'], /--broker is required; --phone is required; --key is required; --kid is required; --file is required/],
  ['pointers: no list', ['pointers', ...B, ...SIGN], /--list is required/],
  ['bad broker scheme', ['status', '--broker', 'http://h:1883'], /--broker: scheme must be/],
  ['broker not a URL', ['status', '--broker', 'localhost'], /--broker: is not a parseable URL/],
  ['bad phone id', ['status', ...B, '--phone', 'a/b'], /--phone must be a phone id/],
  ['wildcard prefix', ['status', ...B, '--prefix', 'a/#'], /--prefix must be a topic without/],
  ['mqtt version 3', ['status', ...B, '--mqtt-version', '3'], /--mqtt-version must be 4 or 5/],
  ['password twice', ['status', ...B, '--password', 'x', '--password-file', 'f'], /--password or --password-file, not both/],
  ['bad reason', ['pointers', ...B, ...SIGN, '--list', 'l', '--reason', 'whim'], /--reason must be one of failover, rebalance, admin/],
  ['version zero', ['config', ...B, ...SIGN, '--file', 'f', '--version', '0'], /--version must be at least 1/],
  ['version negative', ['config', ...B, ...SIGN, '--file', 'f', '--version', '-1'], /--version needs a whole number/],
  ['timeout not a number', ['config', ...B, ...SIGN, '--file', 'f', '--timeout', '1s'], /--timeout needs a whole number \(got "1s"\)/],
  ['timeout huge', ['status', ...B, '--timeout', '99999999999'], /--timeout must be at most/],
  ['version beyond safe integers', ['config', ...B, ...SIGN, '--file', 'f', '--version', '9999999999999999'], /--version needs a whole number/],
  ['status --wait', ['status', ...B, '--wait'], /unknown argument "--wait"/],
  ['acl without --config', ['acl', '--operator', 'o'], /--config is required/],
  ['acl --config twice', ['acl', '--config', 'a', '--config', 'b'], /--config given twice/],
  ['acl --operator without a value', ['acl', '--config', 'a', '--operator'], /--operator needs a value/],
  ['acl takes no --broker', ['acl', '--config', 'a', ...B], /unknown argument "--broker"/],
  ['keygen takes no --ca', ['keygen', '--out', 'k', '--ca', 'c'], /unknown argument "--ca"/],
  ['--cert without --tls-key', ['status', ...MQTTS, '--cert', 'c.pem'], /give --cert and --tls-key together/],
  ['--tls-key without --cert', ['status', ...MQTTS, '--tls-key', 'k.pem'], /give --cert and --tls-key together/],
  ['TLS files for a plain broker', ['status', ...B, ...TLS], /--ca, --cert, --tls-key need an mqtts: or wss: --broker \(got "mqtt:"\)/],
  ['TLS files for ws:', ['status', '--broker', 'ws://h/mqtt', '--ca', 'c'], /--ca need an mqtts: or wss:/],
  ['--ca twice', ['status', ...MQTTS, '--ca', 'a', '--ca', 'b'], /--ca given twice/],
  ['--ca without a value', ['status', ...MQTTS, '--ca'], /--ca needs a value/],
];

for (const [name, argv, error] of usage) {
  test(`bad arguments: ${name}`, (t) => {
    const a = parseAdminArgs(argv);
    t.is(a.kind, 'usage');
    t.regex(a.kind === 'usage' ? a.error : '', error);
  });
}

test('a usage error names the subcommand, so its own usage is printed', (t) => {
  t.like(parseAdminArgs(['pointers', '--bogus']), { kind: 'usage', sub: 'pointers' });
  t.false('sub' in parseAdminArgs(['bogus']));
});

test('pointers --rebase: parsed; an --expires-in beyond what a phone takes for a rebase (1 h) is refused before sending', (t) => {
  const r = parseAdminArgs(['pointers', ...B, ...SIGN, '--list', 'l.json', '--rebase']);
  t.is(r.kind === 'pointers' && r.rebase, true);
  const bad = parseAdminArgs(['pointers', ...B, ...SIGN, '--list', 'l.json', '--rebase', '--expires-in', '3600001']);
  t.is(bad.kind, 'usage');
  t.regex(bad.kind === 'usage' ? bad.error : '', /--expires-in must be at most 3600000 with --rebase/);
});
