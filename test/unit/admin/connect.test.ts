import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { ConnArgs } from '../../../src/admin/args.js';
import { clientOptions, tlsOptionsOf } from '../../../src/admin/connect.js';
import { isIpphoneError } from '../../../src/lib/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ipphone-admin-connect-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));
const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const file = (name: string, text: string): string => {
  const f = join(dir, name);
  writeFileSync(f, text);
  return f;
};
const BASE: ConnArgs = { broker: 'mqtts://127.0.0.1:8883', prefix: 'ipphone/v1', mqttVersion: 5, connectTimeoutMs: 1000 };

test('the TLS files are read into the client options', (t) => {
  const ca = file('ca.pem', PEM);
  const cert = file('c.pem', PEM);
  const key = file('c.key', '-----BEGIN PRIVATE KEY-----\nx\n-----END PRIVATE KEY-----\n');
  const o = clientOptions({ ...BASE, ca, cert, key, username: 'ops' }, 'id-1');
  t.is(o.clientId, 'id-1');
  t.is(o.username, 'ops');
  t.is(String(o.ca), PEM);
  t.is(String(o.cert), PEM);
  t.regex(String(o.key), /BEGIN PRIVATE KEY/);
});

test('no TLS flags: no TLS options', (t) => {
  t.deepEqual(tlsOptionsOf(BASE), {});
});

test('a missing, an unreadable and a non-PEM file are each named, before connecting', (t) => {
  const notPem = file('not.pem', 'hello');
  const err = t.throws(() => tlsOptionsOf({ ...BASE, ca: join(dir, 'missing.pem'), cert: notPem, key: dir }));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  const problems = (err as unknown as { context: { problems: string[] } }).context.problems;
  t.is(problems.length, 3);
  t.regex(problems[0]!, /^--ca .*missing\.pem: cannot read it \(ENOENT\)/);
  t.regex(problems[1]!, /^--cert .*not\.pem: is not a PEM file/);
  t.regex(problems[2]!, /^--tls-key .*: cannot read it \(EISDIR\)/);
});

test('clientOptions throws on a bad TLS file (so connectBroker never opens a socket)', (t) => {
  t.throws(() => clientOptions({ ...BASE, ca: join(dir, 'nope') }, 'x'), { message: /cannot use the TLS files/ });
});
