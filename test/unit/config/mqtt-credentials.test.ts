import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { agentExample, cmExample } from '../../helpers/contract-examples.js';
import { loadAgentConfigFile, validateAgentConfig } from '../../../src/config/agent-config.js';
import { loadCmConfigFile, validateCmConfig } from '../../../src/config/cm-config.js';
import { credentialFileProblems, credentialShapeProblems, passwordOf, resolveCredentials } from '../../../src/config/mqtt-credentials.js';
import { loadFleetConfigFile } from '../../../src/fleet/config.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { generateKeyPair } from '../../../src/protocol/envelope.js';

const keys = generateKeyPair();

function tmp(t: { teardown(fn: () => void): void }): (name: string, text: string) => string {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-creds-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return (name, text) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
}

const problemsOf = (err: unknown): string[] => ((err as { context?: { problems?: string[] } }).context?.problems ?? []);

test('a certificate needs its key and a key its certificate; password or passwordFile, not both', (t) => {
  t.deepEqual(credentialShapeProblems({ cert: 'c.pem', key: null }), ['mqtt/key: is required with mqtt/cert (the certificate\'s private key)']);
  t.deepEqual(credentialShapeProblems({ key: 'k.pem' }), ['mqtt/cert: is required with mqtt/key (the key\'s certificate)']);
  t.deepEqual(credentialShapeProblems({ password: 'x', passwordFile: '/p' }), ['mqtt/passwordFile: give password or passwordFile, not both']);
  t.deepEqual(credentialShapeProblems({ cert: 'c.pem', key: 'k.pem', username: 'u', passwordFile: '/p' }), []);
  t.deepEqual(credentialShapeProblems(undefined), []);

  // Both configs report it among their other problems, by path.
  const agent = validateAgentConfig({ ...agentExample(keys.publicPem), mqtt: { cert: '/etc/p.crt' } });
  t.false(agent.ok);
  if (!agent.ok) t.deepEqual(agent.problems, ['mqtt/key: is required with mqtt/cert (the certificate\'s private key)']);
  const cm = validateCmConfig({ ...cmExample(), mqtt: { key: '/etc/cm.key', ca: '' } });
  t.false(cm.ok);
  if (!cm.ok) t.deepEqual(cm.problems, ['mqtt/ca: must be a non-empty string or null (got "")', 'mqtt/cert: is required with mqtt/key (the key\'s certificate)']);
});

test('CM config: mqtt gains ca, cert, key and passwordFile, null by default', (t) => {
  const r = validateCmConfig(cmExample());
  if (!r.ok) return t.fail(r.problems.join('\n'));
  t.like(r.config.mqtt, { username: null, password: null, passwordFile: null, ca: null, cert: null, key: null, protocolVersion: 5 });
  const r2 = validateCmConfig({ ...cmExample(), mqtt: { ca: '/etc/ca.crt', cert: '/etc/cm-a.crt', key: '/etc/cm-a.key', protocolVersion: 4 } });
  if (!r2.ok) return t.fail(r2.problems.join('\n'));
  t.like(r2.config.mqtt, { ca: '/etc/ca.crt', cert: '/etc/cm-a.crt', key: '/etc/cm-a.key', protocolVersion: 4 });
});

test('missing, unreadable and wrong files: one problem per field, naming field and path', (t) => {
  const file = tmp(t);
  const notPem = file('not.pem', 'hello\n');
  const dirPath = join(notPem, '..');
  const empty = file('empty.pw', '\n');
  const problems = credentialFileProblems({ ca: '/nonexistent/ca.pem', cert: notPem, key: dirPath, passwordFile: empty });
  t.is(problems.length, 4);
  t.regex(problems[0]!, /^mqtt\/ca: cannot use "\/nonexistent\/ca\.pem": ENOENT/);
  t.regex(problems[1]!, /^mqtt\/cert: cannot use ".*not\.pem": no PEM certificate in it$/);
  t.regex(problems[2]!, /^mqtt\/key: cannot use ".*": EISDIR/);
  t.regex(problems[3]!, /^mqtt\/passwordFile: cannot use ".*empty\.pw": it is empty$/);
  // An Ed25519 PKCS#8 key is a usable private key; a text file is not.
  t.deepEqual(credentialFileProblems({ key: file('k.pem', keys.privatePem) }), []);
  t.regex(credentialFileProblems({ key: notPem })[0]!, /^mqtt\/key: cannot use ".*not\.pem": /);
  t.deepEqual(credentialFileProblems({ ca: null, cert: null }), []);
});

test('loadCmConfigFile and loadAgentConfigFile (so --check-config) report the files with the other problems', (t) => {
  const file = tmp(t);
  const signingKey = file('ops-1.pem', keys.privatePem);
  const cmPath = file('cm.json', JSON.stringify({ ...cmExample(), signingKey, keyId: '', mqtt: { ca: '/nonexistent/ca.pem', cert: '/nonexistent/cm.crt', key: '/nonexistent/cm.key' } }));
  const err = t.throws(() => loadCmConfigFile(cmPath));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  const listed = problemsOf(err);
  t.is(listed.length, 4, listed.join('\n'));
  t.regex(listed[0]!, /^keyId: /);
  t.regex(listed[1]!, /^mqtt\/ca: cannot use "\/nonexistent\/ca\.pem": ENOENT/);
  t.regex(listed[2]!, /^mqtt\/cert: cannot use "\/nonexistent\/cm\.crt": ENOENT/);
  t.regex(listed[3]!, /^mqtt\/key: cannot use "\/nonexistent\/cm\.key": ENOENT/);

  const agentRaw = { ...agentExample(keys.publicPem), mqtt: { cert: '/nonexistent/p.crt', passwordFile: '/nonexistent/pw' } };
  const agentErr = t.throws(() => loadAgentConfigFile(file('agent.json', JSON.stringify(agentRaw))));
  t.deepEqual(
    problemsOf(agentErr).map((p) => p.replace(/: ENOENT.*/, '')),
    ['mqtt/key: is required with mqtt/cert (the certificate\'s private key)', 'mqtt/cert: cannot use "/nonexistent/p.crt"', 'mqtt/passwordFile: cannot use "/nonexistent/pw"'],
  );
  // The fleet reads the same section the same way.
  const fleetErr = t.throws(() => loadFleetConfigFile(file('fleet.json', JSON.stringify({ ...agentRaw, phoneId: undefined }))));
  t.is(problemsOf(fleetErr).length, 3);
});

test('password files: first line, line end dropped; resolveCredentials reads every file once', (t) => {
  const file = tmp(t);
  t.is(passwordOf('s3cret\n'), 's3cret');
  t.is(passwordOf('s3cret\r\nignored'), 's3cret');
  const pw = file('pw', 'hunter2\n');
  t.deepEqual(resolveCredentials({ username: 'cm-a', password: null, passwordFile: pw, ca: null, cert: null, key: null }), { username: 'cm-a', password: 'hunter2' });
  const err = t.throws(() => resolveCredentials({ username: null, password: null, passwordFile: null, ca: '/nonexistent/ca', cert: null, key: null }));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  t.regex(err!.message, /^mqtt\/ca: cannot use "\/nonexistent\/ca": ENOENT/);
});
