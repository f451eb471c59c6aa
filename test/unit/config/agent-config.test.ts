import { createPublicKey, generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { agentExample } from '../../helpers/contract-examples.js';
import { defaultAckTimeoutMs, loadAgentConfigFile, validateAgentConfig, type AgentConfig } from '../../../src/config/agent-config.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { generateKeyPair } from '../../../src/protocol/envelope.js';

const { publicPem } = generateKeyPair();
const der = createPublicKey(publicPem).export({ type: 'spki', format: 'der' });
const rawKey = der.subarray(der.length - 32).toString('base64');

/** The example of shared/CONTRACT.md, with a real key for the placeholder. */
const contractExample = agentExample(publicPem);

const minimal = { phoneId: 'p-0001', pointers: [contractExample.pointers[0]] };

function valid(raw: unknown): AgentConfig {
  const r = validateAgentConfig(raw);
  if (!r.ok) throw new Error(`unexpected problems:\n${r.problems.join('\n')}`);
  return r.config;
}

function problems(raw: unknown): string[] {
  const r = validateAgentConfig(raw);
  if (r.ok) throw new Error('expected problems, config was accepted');
  return r.problems;
}

test('the CONTRACT.md example validates and keeps its values', (t) => {
  const c = valid(contractExample);
  t.is(c.keepalive.intervalMs, 1000);
  t.is(c.keepalive.ackTimeoutMs, 150);
  t.is(c.fallback.holdMs, 30000);
  t.is(c.services.timeoutMs, 2000);
  t.is(c.services.refreshMs, 300000);
  t.is(c.board, 'hw/boards/headless.json');
  t.deepEqual(c.pointers, contractExample.pointers);
});

test('defaults fill in: production values', (t) => {
  t.deepEqual(valid(minimal), {
    phoneId: 'p-0001',
    pointers: minimal.pointers,
    keepalive: { intervalMs: 5000, missLimit: 3, ackTimeoutMs: 750, topic: 'auto' },
    fallback: { holdMs: 120000 },
    services: { timeoutMs: 5000, refreshMs: 300000 },
    remoteConfig: { confirmMs: 60000 },
    topicPrefix: 'ipphone/v1',
    stateDir: '/var/lib/ipphone-agent',
    board: null,
    trust: { requireSigned: true, keys: {} },
    mqtt: {
      username: null,
      password: null,
      passwordFile: null,
      ca: null,
      cert: null,
      key: null,
      protocolVersion: 5,
      connectTimeoutMs: 5000,
      keepaliveSec: 10,
      backoff: { baseMs: 1000, maxMs: 60000 },
      maxQueue: 100,
    },
    log: { level: 'info' },
  });
});

test('partly given sections keep what is given and default the rest', (t) => {
  const c = valid({ ...minimal, keepalive: { missLimit: 5 }, mqtt: { backoff: { maxMs: 5000 } }, log: { level: 'silent' } });
  t.deepEqual(c.keepalive, { intervalMs: 5000, missLimit: 5, ackTimeoutMs: 750, topic: 'auto' });
  t.deepEqual(c.mqtt.backoff, { baseMs: 1000, maxMs: 5000 });
  t.is(c.log.level, 'silent');
});

test('ackTimeoutMs: default formula, explicit value, must be below intervalMs', (t) => {
  t.is(defaultAckTimeoutMs(5000), 750);
  t.is(defaultAckTimeoutMs(1000), 150);
  t.is(defaultAckTimeoutMs(300), 100);
  t.is(defaultAckTimeoutMs(100), 99);
  t.is(valid({ ...minimal, keepalive: { intervalMs: 100 } }).keepalive.ackTimeoutMs, 99);
  t.is(valid({ ...minimal, keepalive: { intervalMs: 2000, ackTimeoutMs: 1999 } }).keepalive.ackTimeoutMs, 1999);
  t.deepEqual(problems({ ...minimal, keepalive: { intervalMs: 2000, ackTimeoutMs: 2000 } }), [
    'keepalive/ackTimeoutMs: must be less than keepalive/intervalMs (2000) (got 2000)',
  ]);
});

test('a config with several problems reports every one, each naming its path', (t) => {
  const got = problems({
    phoneId: 'p/1',
    pointers: [
      { id: 'cm-a', broker: 'mqtt://h', services: 'http://h' },
      { id: 'cm-b', broker: 'http://h', services: 'http://h' },
    ],
    keepalive: { intervalMs: 5, missLimit: 0 },
    fallback: { holdMs: -1 },
    board: 7,
    mqtt: { protocolVersion: 3, username: 5 },
    log: { level: 'loud' },
  });
  t.deepEqual(got, [
    'phoneId: must be an id of 1 to 64 characters from A-Z a-z 0-9 . _ - (got "p/1")',
    'keepalive/intervalMs: must be an integer from 10 to 600000 (got 5)',
    'keepalive/missLimit: must be an integer from 1 to 100 (got 0)',
    'fallback/holdMs: must be an integer from 0 to 86400000 (got -1)',
    'board: must be a non-empty string or null (got 7)',
    'mqtt/username: must be a string or null (got 5)',
    'mqtt/protocolVersion: must be 4 or 5 (got 3)',
    'log/level: must be one of "fatal", "error", "warn", "info", "debug", "trace" or "silent" (got "loud")',
    'pointers/1/broker: scheme must be mqtt:, mqtts:, ws: or wss: (got "http:")',
  ]);
});

test('required fields and a non-object are reported', (t) => {
  t.deepEqual(problems({}), ['phoneId: is required', 'pointers: is required']);
  t.deepEqual(problems([]), ['(root): must be a JSON object (got [])']);
  t.deepEqual(problems(null), ['(root): must be a JSON object (got null)']);
  t.deepEqual(problems({ ...minimal, pointers: [] }), ['pointers: must hold 1 to 16 pointers (got 0)']);
  t.deepEqual(problems({ ...minimal, keepalive: 5 }), ['keepalive: must be an object (got 5)']);
});

test('unknown fields are refused, top level and in sections', (t) => {
  t.deepEqual(problems({ ...minimal, phoneID: 'x' }), ['phoneID: unknown field (typo?)']);
  t.deepEqual(problems({ ...minimal, keepalive: { intervalMS: 1000 } }), ['keepalive/intervalMS: unknown field (typo?)']);
  // but pointer entries tolerate extras
  t.is(valid({ ...minimal, pointers: [{ ...minimal.pointers[0], weight: 2 }] }).pointers.length, 1);
});

test('trust keys: PEM and raw base64 accepted, a bad key refused naming its kid', (t) => {
  t.is(Object.keys(valid({ ...minimal, trust: { keys: { pem: publicPem, raw: rawKey } } }).trust.keys).length, 2);
  const got = problems({ ...minimal, trust: { keys: { good: rawKey, 'ops-9': 'not a key', 'ops-7': 12 } } });
  t.is(got.length, 2);
  t.is(got[0], 'trust/keys/ops-7: must be a string (got 12)');
  t.regex(got[1]!, /^trust\/keys\/ops-9: key "ops-9" is not a usable Ed25519 public key: /);
  const rsa = generateRsaPem();
  t.regex(problems({ ...minimal, trust: { keys: { rsa } } })[0]!, /^trust\/keys\/rsa: .*not ed25519/);
});

function generateRsaPem(): string {
  // A small RSA key: enough to be "a PEM key that is not Ed25519".
  return generateKeyPairSync('rsa', { modulusLength: 1024 }).publicKey.export({ type: 'spki', format: 'pem' }).toString();
}

test('the input is not changed and results share no defaults', (t) => {
  const raw = structuredClone(minimal);
  const a = valid(raw);
  t.deepEqual(raw, minimal);
  a.trust.keys.x = 'y';
  a.keepalive.intervalMs = 1;
  const b = valid(raw);
  t.deepEqual(b.trust.keys, {});
  t.is(b.keepalive.intervalMs, 5000);
});

test('loadAgentConfigFile: good file, unreadable file, bad JSON, invalid config', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-agentcfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.json');
  writeFileSync(good, JSON.stringify(contractExample));
  t.is(loadAgentConfigFile(good).phoneId, 'p-0001');

  const missing = t.throws(() => loadAgentConfigFile(join(dir, 'missing.json')));
  t.true(isIpphoneError(missing, 'CONFIG_INVALID'));
  t.regex(missing!.message, /cannot read .*missing\.json/);

  const badJson = join(dir, 'bad.json');
  writeFileSync(badJson, '{ "phoneId": ');
  const e1 = t.throws(() => loadAgentConfigFile(badJson));
  t.true(isIpphoneError(e1, 'CONFIG_INVALID'));
  t.regex(e1!.message, /not valid JSON/);

  const invalid = join(dir, 'invalid.json');
  writeFileSync(invalid, JSON.stringify({ phoneId: 'p 1', pointers: 'none', extra: true }));
  const e2 = t.throws(() => loadAgentConfigFile(invalid));
  t.true(isIpphoneError(e2, 'CONFIG_INVALID'));
  const listed = (e2 as { context?: { problems?: string[] } }).context?.problems;
  t.is(listed?.length, 3);
  t.is(e2!.message, listed!.join('\n'));
});
