import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { configBody, loadConfigPatch, loadPointerList, loadSigningKey, pointersBody } from '../../../src/admin/bodies.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { openConfig, openPointers } from '../../../src/protocol/codec.js';
import { generateKeyPair, signEnvelope, trustedKeys } from '../../../src/protocol/envelope.js';

const NOW = 1_700_000_000_000;
const A = { id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' };
const B = { id: 'cm-b', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082/services' };

function tmp(t: { teardown: (fn: () => void) => void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'admin-bodies-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

test('config body: version defaults to now, expires = now + expiresIn, phone named; field order as the contract shows', (t) => {
  const b = configBody({ log: { level: 'debug' } }, { phone: 'p-1', now: NOW });
  t.deepEqual(b, { version: NOW, config: { log: { level: 'debug' } }, phone: 'p-1' });
  const c = configBody({}, { phone: 'p-1', now: NOW, version: 7, expiresInMs: 60_000 });
  t.deepEqual(Object.keys(c), ['version', 'config', 'expires', 'phone']);
  t.deepEqual(c, { version: 7, config: {}, expires: NOW + 60_000, phone: 'p-1' });
});

test('the default version is above what the phone holds when this clock is behind its list\'s signer; an explicit version wins', (t) => {
  t.is(pointersBody([A], 'admin', { phone: 'p-1', now: NOW, held: NOW + 300_000 }).version, NOW + 300_001);
  t.is(configBody({}, { phone: 'p-1', now: NOW, held: NOW - 5 }).version, NOW, 'a held version below now: now');
  t.is(pointersBody([A], 'admin', { phone: 'p-1', now: NOW, held: NOW + 300_000, version: 9 }).version, 9);
});

test('pointers body: { version, reason, list, expires?, phone }', (t) => {
  const b = pointersBody([B, A], 'admin', { phone: 'p-1', now: NOW, expiresInMs: 5 });
  t.deepEqual(Object.keys(b), ['version', 'reason', 'list', 'expires', 'phone']);
  t.deepEqual(b, { version: NOW, reason: 'admin', list: [B, A], expires: NOW + 5, phone: 'p-1' });
});

test('signed bodies open with the phone-side codecs; another phone refuses them', (t) => {
  const k = generateKeyPair();
  const keys = trustedKeys({ 'ops-1': k.publicPem });
  const dir = tmp(t);
  writeFileSync(join(dir, 'k.pem'), k.privatePem);
  const key = loadSigningKey(join(dir, 'k.pem'));
  const pb = pointersBody([B, A], 'admin', { phone: 'p-1', now: NOW });
  t.deepEqual(openPointers(signEnvelope(pb, key, 'ops-1'), keys, { phoneId: 'p-1', heldVersion: 3, now: NOW }), pb);
  const cb = configBody({ fallback: { holdMs: 1000 } }, { phone: 'p-1', now: NOW, expiresInMs: 1000 });
  t.deepEqual(openConfig(signEnvelope(cb, key, 'ops-1'), keys, { phoneId: 'p-1', heldVersion: 0, now: NOW }), cb);
  t.throws(() => openConfig(signEnvelope(cb, key, 'ops-1'), keys, { phoneId: 'p-2', heldVersion: 0, now: NOW }), { message: /for phone "p-1", not "p-2"/ });
});

test('pointer list file: a bare array, or { list } / { pointers }; extra fields dropped', (t) => {
  const dir = tmp(t);
  writeFileSync(join(dir, 'a.json'), JSON.stringify([{ ...B, note: 'x' }, A]));
  writeFileSync(join(dir, 'b.json'), JSON.stringify({ list: [A] }));
  writeFileSync(join(dir, 'c.json'), JSON.stringify({ phoneId: 'p', pointers: [B] }));
  t.deepEqual(loadPointerList(join(dir, 'a.json')), [B, A]);
  t.deepEqual(loadPointerList(join(dir, 'b.json')), [A]);
  t.deepEqual(loadPointerList(join(dir, 'c.json')), [B]);
});

test('pointer list file with problems: refused with every problem', (t) => {
  const dir = tmp(t);
  const f = join(dir, 'bad.json');
  writeFileSync(f, JSON.stringify([A, { ...A }, { id: 'cm c', broker: 'http://x', services: 'ftp://y' }]));
  const err = t.throws(() => loadPointerList(f));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  t.regex(err.message, /has 4 problems/);
  t.deepEqual(err && isIpphoneError(err) ? err.context?.problems : undefined, [
    'list/1/id: duplicate id "cm-a" (also at list/0)',
    'list/2/id: must be an id of 1 to 64 characters from A-Z a-z 0-9 . _ - (got "cm c")',
    'list/2/broker: scheme must be mqtt:, mqtts:, ws: or wss: (got "http:")',
    'list/2/services: scheme must be http: or https: (got "ftp:")',
  ]);
  writeFileSync(f, '[]');
  t.throws(() => loadPointerList(f), { message: /1 problem$/ });
  writeFileSync(f, '{"list": ');
  t.throws(() => loadPointerList(f), { message: /is not JSON/ });
  t.throws(() => loadPointerList(join(dir, 'missing.json')), { message: /cannot read pointer list .*missing\.json/ });
});

test('config patch must be a JSON object', (t) => {
  const dir = tmp(t);
  const f = join(dir, 'p.json');
  writeFileSync(f, '{"keepalive":{"intervalMs":2000}}');
  t.deepEqual(loadConfigPatch(f), { keepalive: { intervalMs: 2000 } });
  writeFileSync(f, '[1]');
  t.throws(() => loadConfigPatch(f), { message: /must be a JSON object \(got \[1\]\)/ });
});

test('signing key: a public key or garbage is refused, naming the file but not printing it', (t) => {
  const k = generateKeyPair();
  const dir = tmp(t);
  const f = join(dir, 'k.pem');
  writeFileSync(f, k.publicPem);
  const err = t.throws(() => loadSigningKey(f));
  t.regex(err.message, /key file .*k\.pem: private key is not a PEM PKCS#8 key/);
  t.false(err.message.includes('BEGIN'));
});
