import test from 'ava';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { keygen, keygenReport, kidHintFor } from '../../../src/admin/keygen.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { openEnvelope, parsePrivateKey, parsePublicKey, signEnvelope, trustedKeys } from '../../../src/protocol/envelope.js';

function tmp(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'admin-keygen-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('writes a matching pair: private PKCS#8 PEM 0600, public SPKI PEM; the raw key is what trust.keys takes', (t) => {
  const out = join(tmp(t), 'ops-2.pem');
  const r = keygen(out);
  t.is(r.publicPath, `${out}.pub`);
  t.is(statSync(out).mode & 0o777, 0o600);
  const priv = readFileSync(out, 'utf8');
  const pub = readFileSync(`${out}.pub`, 'utf8');
  t.regex(priv, /^-----BEGIN PRIVATE KEY-----/);
  t.regex(pub, /^-----BEGIN PUBLIC KEY-----/);
  t.is(r.kidHint, 'ops-2');
  t.is(Buffer.from(r.publicRaw, 'base64').length, 32);
  // Sign with the private file, verify with either form of the public key.
  const env = signEnvelope({ version: 1 }, parsePrivateKey(priv), 'ops-2');
  t.deepEqual(JSON.parse(openEnvelope(env, trustedKeys({ 'ops-2': pub })).toString()), { version: 1 });
  t.deepEqual(JSON.parse(openEnvelope(env, trustedKeys({ 'ops-2': r.publicRaw })).toString()), { version: 1 });
  t.is(parsePublicKey(pub).export({ format: 'der', type: 'spki' }).subarray(12).toString('base64'), r.publicRaw);
});

test('the report shows the kid hint and the raw public key, never the private key', (t) => {
  const out = join(tmp(t), 'k.pem');
  const r = keygen(out);
  const text = keygenReport(r);
  t.regex(text, /kid hint: +k\n/);
  t.true(text.includes(r.publicRaw));
  t.false(text.includes('PRIVATE KEY'));
  const privBody = readFileSync(out, 'utf8').split('\n')[1]!;
  t.false(text.includes(privBody));
});

test('refuses to overwrite either file without --force, and writes nothing then', (t) => {
  const dir = tmp(t);
  const out = join(dir, 'k.pem');
  writeFileSync(`${out}.pub`, 'old public');
  const err = t.throws(() => keygen(out));
  t.true(isIpphoneError(err, 'USAGE'));
  t.regex(err.message, /k\.pem\.pub exists; use --force/);
  t.throws(() => statSync(out), { code: 'ENOENT' });
  t.is(readFileSync(`${out}.pub`, 'utf8'), 'old public');
});

test('--force replaces both, and a world-readable old private key file comes back 0600', (t) => {
  const dir = tmp(t);
  const out = join(dir, 'k.pem');
  writeFileSync(out, 'old', { mode: 0o644 });
  writeFileSync(`${out}.pub`, 'old');
  const first = keygen(out, true);
  t.is(statSync(out).mode & 0o777, 0o600);
  t.regex(readFileSync(out, 'utf8'), /BEGIN PRIVATE KEY/);
  const second = keygen(out, true);
  t.not(first.publicRaw, second.publicRaw);
});

test('kid hint: file name without .pem/.key; ops-1 when the name is no valid id', (t) => {
  t.is(kidHintFor('/etc/keys/ops-7.pem'), 'ops-7');
  t.is(kidHintFor('signer.KEY'), 'signer');
  t.is(kidHintFor('my key.pem'), 'ops-1');
});
