/**
 * `${CREDENTIALS_DIRECTORY}/NAME` paths in a call manager config (issue 17,
 * "Debian packages"): the unit's LoadCredential= puts the signing key, the
 * MQTT client key and the console token in a directory only the DynamicUser=
 * service can read, and names it in $CREDENTIALS_DIRECTORY; the config finds
 * them through the variable. Plain paths are untouched.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { cmExample } from '../../helpers/contract-examples.js';
import { loadCmConfigFile } from '../../../src/config/cm-config.js';
import { CREDENTIALS_PREFIX, expandCmCredentialPaths, expandCredentialPath } from '../../../src/config/credentials-dir.js';
import { generateKeyPair } from '../../../src/protocol/envelope.js';

const cred = (name: string): string => `${CREDENTIALS_PREFIX}${name}`;

test('credentials-dir: a path under ${CREDENTIALS_DIRECTORY}/ is read from the variable; other paths and non-strings stay as they are', (t) => {
  const env = { CREDENTIALS_DIRECTORY: '/run/credentials/ipphone-cm.service' };
  t.deepEqual(expandCredentialPath(cred('signing-key.pem'), 'signingKey', env), { ok: true, value: '/run/credentials/ipphone-cm.service/signing-key.pem' });
  t.deepEqual(expandCredentialPath(cred('k'), 'x', { CREDENTIALS_DIRECTORY: '/c/' }), { ok: true, value: '/c/k' });
  t.deepEqual(expandCredentialPath('/etc/ipphone-cm/signing-key.pem', 'signingKey', env), { ok: true, value: '/etc/ipphone-cm/signing-key.pem' });
  t.deepEqual(expandCredentialPath('x/${CREDENTIALS_DIRECTORY}/k', 'signingKey', env), { ok: true, value: 'x/${CREDENTIALS_DIRECTORY}/k' });
  t.deepEqual(expandCredentialPath(null, 'mqtt/key', env), { ok: true, value: null });
  t.deepEqual(expandCredentialPath(7, 'mqtt/key', env), { ok: true, value: 7 });
});

test('credentials-dir: without CREDENTIALS_DIRECTORY, or with a name that is not one file name, one clear line', (t) => {
  const unset = expandCredentialPath(cred('console.token'), 'console/tokenFile', {});
  t.false(unset.ok);
  t.regex(!unset.ok ? unset.problem : '', /^console\/tokenFile: .*CREDENTIALS_DIRECTORY is not set.*LoadCredential=console\.token:/);
  for (const bad of ['', '../etc/shadow', 'a/b', '..', '.']) {
    const r = expandCredentialPath(cred(bad), 'mqtt/key', { CREDENTIALS_DIRECTORY: '/c' });
    t.false(r.ok, bad);
    t.regex(!r.ok ? r.problem : '', /^mqtt\/key: .*must name one credential/, bad);
  }
});

test('credentials-dir: every path field of a call manager config is expanded, the input is not modified', (t) => {
  const raw = {
    cmId: 'cm-a',
    signingKey: cred('signing-key.pem'),
    mqtt: { ca: '/etc/ipphone-cm/ca.crt', cert: '/etc/ipphone-cm/cm.crt', key: cred('mqtt-client-key.pem'), passwordFile: cred('mqtt-password') },
    console: { enabled: true, tokenFile: cred('console.token') },
  };
  const before = JSON.stringify(raw);
  const { value, problems } = expandCmCredentialPaths(raw, { CREDENTIALS_DIRECTORY: '/c' });
  t.deepEqual(problems, []);
  t.deepEqual(value, {
    cmId: 'cm-a',
    signingKey: '/c/signing-key.pem',
    mqtt: { ca: '/etc/ipphone-cm/ca.crt', cert: '/etc/ipphone-cm/cm.crt', key: '/c/mqtt-client-key.pem', passwordFile: '/c/mqtt-password' },
    console: { enabled: true, tokenFile: '/c/console.token' },
  });
  t.is(JSON.stringify(raw), before);
  t.deepEqual(expandCmCredentialPaths([1], {}), { value: [1], problems: [] });
  t.is(expandCmCredentialPaths({ ...raw, mqtt: 'x' }, {}).problems.length, 2, 'signingKey and console/tokenFile; mqtt is left to validation');
});

test('credentials-dir: loadCmConfigFile (so ipphone-cm and --check-config) reads the key, the MQTT client key and the token from $CREDENTIALS_DIRECTORY', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-creddir-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const creds = join(dir, 'credentials');
  mkdirSync(creds);
  writeFileSync(join(creds, 'signing-key.pem'), generateKeyPair().privatePem);
  writeFileSync(join(creds, 'console.token'), 'abcdefghijklmnopqrstuvwxyz012345\n');
  const config = join(dir, 'cm.json');
  writeFileSync(config, JSON.stringify({ ...cmExample(), signingKey: cred('signing-key.pem'), console: { enabled: true, tokenFile: cred('console.token') } }));
  const c = loadCmConfigFile(config, { CREDENTIALS_DIRECTORY: creds });
  t.is(c.signingKey, join(creds, 'signing-key.pem'));
  t.is(c.console.tokenFile, join(creds, 'console.token'));
  const err = t.throws(() => loadCmConfigFile(config, {}));
  t.regex(err!.message, /signingKey: .*CREDENTIALS_DIRECTORY is not set/);
  t.regex(err!.message, /console\/tokenFile: .*CREDENTIALS_DIRECTORY is not set/);
  // A credential that systemd did not deliver (no file) is the usual "cannot use" line, with the real path.
  const noKey = join(dir, 'cm-mqtt.json');
  writeFileSync(noKey, JSON.stringify({ ...cmExample(), signingKey: cred('signing-key.pem'), mqtt: { cert: join(dir, 'none.crt'), key: cred('mqtt-client-key.pem') } }));
  const e2 = t.throws(() => loadCmConfigFile(noKey, { CREDENTIALS_DIRECTORY: creds }));
  t.regex(e2!.message, new RegExp(`mqtt/key: cannot use "${join(creds, 'mqtt-client-key.pem').replace(/[.]/g, '\\.')}"`));
});
