import test from 'ava';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { generateKeyPair, openEnvelope, parsePublicKey } from '../../../src/protocol/envelope.js';
import { loadKeySigner } from '../../../src/callmanager/signer.js';

test('signs with the key file and kid; unreadable or wrong keys are CONFIG_INVALID naming the file', async (t) => {
  const dir = mkdtempSync(path.join(tmpdir(), 'cm-signer-'));
  const keys = generateKeyPair();
  const file = path.join(dir, 'k.pem');
  writeFileSync(file, keys.privatePem);
  const sign = await loadKeySigner(file, 'ops-9');
  const env = sign({ version: 2, reason: 'failover', list: [] });
  t.is(env.kid, 'ops-9');
  t.deepEqual(JSON.parse(openEnvelope(env, new Map([['ops-9', parsePublicKey(keys.publicPem)]])).toString('utf8')), { version: 2, reason: 'failover', list: [] });

  const missing = await t.throwsAsync(loadKeySigner(path.join(dir, 'nope.pem'), 'k'));
  t.true(isIpphoneError(missing, 'CONFIG_INVALID'));
  t.regex(missing!.message, /nope\.pem/);
  const pub = path.join(dir, 'pub.pem');
  writeFileSync(pub, keys.publicPem);
  const wrong = await t.throwsAsync(loadKeySigner(pub, 'k'));
  t.true(isIpphoneError(wrong, 'CONFIG_INVALID'));
});
