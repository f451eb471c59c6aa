import { execFileSync } from 'node:child_process';
import { createPublicKey } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { isIpphoneError, type ErrorCode } from '../../../src/lib/errors.js';
import { decodeEnvelope, encode, openConfig, openPointers, parseConfigBody, parsePointersBody } from '../../../src/protocol/codec.js';
import {
  generateKeyPair,
  openEnvelope,
  parsePrivateKey,
  parsePublicKey,
  signBytes,
  signEnvelope,
  trustedKeys,
} from '../../../src/protocol/envelope.js';
import type { Envelope } from '../../../src/protocol/types.js';

const NOW = 1_700_000_000_000;
const ctx = { phoneId: 'p-0001', heldVersion: 4, now: NOW };
const pair = generateKeyPair();
const priv = parsePrivateKey(pair.privatePem);
const keys = trustedKeys({ 'ops-1': pair.publicPem });
const list = [
  { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' },
  { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services' },
];
const body = { version: 5, reason: 'failover', list };

function refused(t: import('ava').ExecutionContext, fn: () => unknown, code: ErrorCode, words?: RegExp): void {
  const err = t.throws(fn);
  t.true(isIpphoneError(err, code), `expected ${code}, got ${(err as { code?: string }).code}: ${err?.message}`);
  if (words) t.regex(err!.message, words);
}

test('round-trip: a signed pointer list opens to the same body', (t) => {
  const env = signEnvelope(body, priv, 'ops-1');
  t.deepEqual(openPointers(env, keys, ctx), body);
  // and through the wire decoder
  t.deepEqual(openPointers(decodeEnvelope(encode(env)), keys, ctx), body);
});

test('optional expires and phone pass when they fit; extra fields are ignored', (t) => {
  const env = signEnvelope({ ...body, expires: NOW + 1, phone: 'p-0001', note: 'x', list: [{ ...list[0], w: 1 }] }, priv, 'ops-1');
  t.deepEqual(openPointers(env, keys, ctx), { ...body, expires: NOW + 1, phone: 'p-0001', list: [list[0]] });
});

test('bad signature is refused', (t) => {
  const env = signEnvelope(body, priv, 'ops-1');
  const sig = Buffer.from(env.sig, 'base64');
  sig[0] = sig[0]! ^ 1;
  refused(t, () => openPointers({ ...env, sig: sig.toString('base64') }, keys, ctx), 'SIGNATURE_INVALID');
  // signed by another key under the trusted kid
  const other = parsePrivateKey(generateKeyPair().privatePem);
  refused(t, () => openPointers(signEnvelope(body, other, 'ops-1'), keys, ctx), 'SIGNATURE_INVALID');
});

test('tampered body is refused', (t) => {
  const env = signEnvelope(body, priv, 'ops-1');
  const tampered = Buffer.from(JSON.stringify({ ...body, version: 500 })).toString('base64');
  refused(t, () => openPointers({ ...env, body: tampered }, keys, ctx), 'SIGNATURE_INVALID');
});

test('unknown kid is refused', (t) => {
  refused(t, () => openPointers(signEnvelope(body, priv, 'ops-2'), keys, ctx), 'KEY_UNKNOWN', /ops-2/);
});

test('sig or body that is not base64 is refused', (t) => {
  const env = signEnvelope(body, priv, 'ops-1');
  refused(t, () => openPointers({ ...env, sig: '***not base64***' }, keys, ctx), 'PAYLOAD_INVALID', /base64/);
  refused(t, () => openPointers({ ...env, body: 'ä' + env.body }, keys, ctx), 'PAYLOAD_INVALID', /base64/);
  refused(t, () => openPointers({ kid: 'ops-1', body: env.body } as Envelope, keys, ctx), 'UNSIGNED');
});

test('replayed version (equal and lower) is refused', (t) => {
  refused(t, () => openPointers(signEnvelope({ ...body, version: 4 }, priv, 'ops-1'), keys, ctx), 'VERSION_REPLAYED', /4 is not newer than held version 4/);
  refused(t, () => openPointers(signEnvelope({ ...body, version: 1 }, priv, 'ops-1'), keys, ctx), 'VERSION_REPLAYED');
  refused(t, () => openConfig(signEnvelope({ version: 4, config: {} }, priv, 'ops-1'), keys, ctx), 'VERSION_REPLAYED');
});

test('expired body is refused, at and after expires', (t) => {
  refused(t, () => openPointers(signEnvelope({ ...body, expires: NOW }, priv, 'ops-1'), keys, ctx), 'EXPIRED');
  refused(t, () => openPointers(signEnvelope({ ...body, expires: NOW - 1000 }, priv, 'ops-1'), keys, ctx), 'EXPIRED');
  refused(t, () => openConfig(signEnvelope({ version: 9, config: {}, expires: 0 }, priv, 'ops-1'), keys, ctx), 'EXPIRED');
  refused(t, () => openPointers(signEnvelope({ ...body, expires: 'soon' }, priv, 'ops-1'), keys, ctx), 'PAYLOAD_INVALID', /expires/);
});

test('body for another phone is refused', (t) => {
  refused(t, () => openPointers(signEnvelope({ ...body, phone: 'p-0002' }, priv, 'ops-1'), keys, ctx), 'WRONG_PHONE', /p-0002/);
  refused(t, () => openConfig(signEnvelope({ version: 9, config: {}, phone: 'p-0002' }, priv, 'ops-1'), keys, ctx), 'WRONG_PHONE');
});

test('signature is checked before the body: a badly signed replay is a signature problem', (t) => {
  const env = signEnvelope({ ...body, version: 1, expires: 0, phone: 'x' }, priv, 'ops-1');
  refused(t, () => openPointers({ ...env, kid: 'nobody' }, keys, ctx), 'KEY_UNKNOWN');
  refused(t, () => openPointers({ ...env, sig: signEnvelope(body, priv, 'ops-1').sig }, keys, ctx), 'SIGNATURE_INVALID');
});

test('oversize, not JSON, not an object, too deep bodies are refused', (t) => {
  const sign = (text: string): Envelope => signBytes(Buffer.from(text), priv, 'ops-1');
  refused(t, () => openPointers(sign(JSON.stringify({ ...body, pad: 'x'.repeat(70000) })), keys, ctx), 'PAYLOAD_TOO_LARGE');
  refused(t, () => openPointers(sign('{"version": 5,'), keys, ctx), 'PAYLOAD_INVALID', /not JSON/);
  refused(t, () => openPointers(sign('[1,2,3]'), keys, ctx), 'PAYLOAD_INVALID', /object/);
  refused(t, () => openPointers(signBytes(Buffer.from([0xff, 0xfe, 0x7b, 0x7d]), priv, 'ops-1'), keys, ctx), 'PAYLOAD_INVALID', /UTF-8/);
  const deep = '{"version":5,"x":' + '['.repeat(10000) + ']'.repeat(10000) + '}';
  refused(t, () => openPointers(sign(deep), keys, ctx), 'PAYLOAD_INVALID', /deeper/);
});

test('invalid body fields are refused with the field named', (t) => {
  const open = (b: unknown) => () => openPointers(signEnvelope(b, priv, 'ops-1'), keys, ctx);
  refused(t, open({ ...body, version: 0 }), 'PAYLOAD_INVALID', /version/);
  refused(t, open({ ...body, version: 5.5 }), 'PAYLOAD_INVALID', /version/);
  refused(t, open({ ...body, version: '6' }), 'PAYLOAD_INVALID', /version/);
  refused(t, open({ ...body, reason: 'whim' }), 'PAYLOAD_INVALID', /reason must be one of failover, rebalance, admin/);
  refused(t, open({ ...body, list: [] }), 'PAYLOAD_INVALID', /list: must hold 1 to 16/);
  refused(t, open({ ...body, list: [{ ...list[0], broker: 'http://h' }] }), 'PAYLOAD_INVALID', /list\/0\/broker: scheme must be/);
  refused(t, open({ reason: 'admin', list }), 'PAYLOAD_INVALID', /version/);
});

test('openConfig: round-trip, and config must be a plain object', (t) => {
  const cfg = { version: 7, config: { keepalive: { intervalMs: 2000 } } };
  t.deepEqual(openConfig(signEnvelope(cfg, priv, 'ops-1'), keys, ctx), cfg);
  for (const config of [null, [], 'x', 3, undefined]) {
    refused(t, () => openConfig(signEnvelope({ version: 7, config }, priv, 'ops-1'), keys, ctx), 'PAYLOAD_INVALID', /config/);
  }
});

test('raw 32-byte base64 public keys are accepted', (t) => {
  const der = createPublicKey(pair.publicPem).export({ type: 'spki', format: 'der' });
  const raw = der.subarray(der.length - 32).toString('base64');
  const rawKeys = trustedKeys({ 'ops-1': raw });
  t.deepEqual(openPointers(signEnvelope(body, priv, 'ops-1'), rawKeys, ctx), body);
  t.throws(() => parsePublicKey(raw.slice(4)));
});

test('openssl interop: openssl signs, we open; we sign, openssl verifies', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-openssl-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const keyPem = join(dir, 'k.pem');
  const keyPub = join(dir, 'k.pub');
  execFileSync('openssl', ['genpkey', '-algorithm', 'ed25519', '-out', keyPem]);
  execFileSync('openssl', ['pkey', '-in', keyPem, '-pubout', '-out', keyPub]);
  const sslKeys = trustedKeys({ ops: readFileSync(keyPub, 'utf8') });

  // openssl → us, exactly as the contract's command line does it.
  const bodyFile = join(dir, 'body.json');
  writeFileSync(bodyFile, `${JSON.stringify(body, null, 2)}\n`);
  const sig = execFileSync('sh', ['-c', 'openssl pkeyutl -sign -rawin -inkey "$1" -in "$2" | base64 -w0', 'sh', keyPem, bodyFile]).toString();
  const env: Envelope = { kid: 'ops', body: readFileSync(bodyFile).toString('base64'), sig };
  t.deepEqual(openPointers(env, sslKeys, ctx), body);

  // us → openssl, with openssl's own private key read by our parser.
  const ours = signEnvelope({ ...body, version: 6 }, parsePrivateKey(readFileSync(keyPem, 'utf8')), 'ops');
  const ourBody = join(dir, 'ours.json');
  const sigFile = join(dir, 'sig.bin');
  writeFileSync(ourBody, Buffer.from(ours.body, 'base64'));
  writeFileSync(sigFile, Buffer.from(ours.sig, 'base64'));
  const out = execFileSync('openssl', ['pkeyutl', '-verify', '-rawin', '-pubin', '-inkey', keyPub, '-sigfile', sigFile, '-in', ourBody]).toString();
  t.regex(out, /Signature Verified Successfully/);

  // and openssl refuses a tampered body (the check can fail).
  writeFileSync(ourBody, Buffer.from(JSON.stringify({ ...body, version: 7 })));
  t.throws(() => execFileSync('openssl', ['pkeyutl', '-verify', '-rawin', '-pubin', '-inkey', keyPub, '-sigfile', sigFile, '-in', ourBody], { stdio: 'pipe' }));
});

test('unsigned bodies (trust.requireSigned false) get the same body checks', (t) => {
  t.deepEqual(parsePointersBody(encode(body), ctx), body);
  t.deepEqual(parseConfigBody(encode({ version: 5, config: { a: 1 } }), ctx), { version: 5, config: { a: 1 } });
  refused(t, () => parsePointersBody(encode({ ...body, version: 3 }), ctx), 'VERSION_REPLAYED');
  refused(t, () => parseConfigBody(encode({ version: 5, config: [] }), ctx), 'PAYLOAD_INVALID');
});

test('a verdict is reused only for identical bytes and the very same key object', (t) => {
  const a = generateKeyPair();
  const b = generateKeyPair();
  const env = signEnvelope({ version: 1 }, parsePrivateKey(a.privatePem), 'k');
  const keysA = trustedKeys({ k: a.publicPem });
  t.notThrows(() => openEnvelope(env, keysA));
  t.notThrows(() => openEnvelope(env, keysA), 'cached');
  // Same kid, another key: the cache must not vouch for it.
  const err = t.throws(() => openEnvelope(env, trustedKeys({ k: b.publicPem })));
  t.is((err as { code?: string }).code, 'SIGNATURE_INVALID');
  // A flipped signature is never a hit.
  const sig = Buffer.from(env.sig, 'base64');
  sig[0]! ^= 1;
  t.throws(() => openEnvelope({ ...env, sig: sig.toString('base64') }, keysA));
});
