import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { cmExample } from '../../helpers/contract-examples.js';
import { loadCmConfigFile, validateCmConfig, type CmConfig } from '../../../src/config/cm-config.js';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { generateKeyPair } from '../../../src/protocol/envelope.js';

/** The example of shared/CONTRACT.md. */
const contractExample = cmExample();

const minimal = {
  cmId: 'cm-a',
  broker: 'mqtt://127.0.0.1:1883',
  group: [contractExample.group[0]],
  signingKey: 'k.pem',
  keyId: 'ops-1',
};

function valid(raw: unknown): CmConfig {
  const r = validateCmConfig(raw);
  if (!r.ok) throw new Error(`unexpected problems:\n${r.problems.join('\n')}`);
  return r.config;
}

function problems(raw: unknown): string[] {
  const r = validateCmConfig(raw);
  if (r.ok) throw new Error('expected problems, config was accepted');
  return r.problems;
}

test('the CONTRACT.md example validates and keeps its values', (t) => {
  const c = valid(contractExample);
  t.deepEqual(c.http, { host: '127.0.0.1', port: 8081 });
  t.deepEqual(c.group, contractExample.group);
  t.deepEqual(c.rebalance, { ...contractExample.rebalance, cooldownMs: 10000 });
});

test('defaults fill in', (t) => {
  t.deepEqual(valid(minimal), {
    ...minimal,
    http: { host: '127.0.0.1', port: 8080 },
    console: { enabled: true, tokenFile: null },
    rebalance: { enabled: true, periodMs: 5000, threshold: 0.1, maxMovesPerSec: 100, cooldownMs: 10000 },
    topicPrefix: 'ipphone/v1',
    mqtt: { username: null, password: null, passwordFile: null, ca: null, cert: null, key: null, protocolVersion: 5 },
    keepalive: { phoneIntervalMs: 5000 },
    pointersVersion: 1,
    stateDir: null,
    trust: { keys: {} },
    log: { level: 'info' },
    retired: [],
  });
  t.is(valid({ ...minimal, rebalance: { periodMs: 1000 } }).rebalance.cooldownMs, 2000);
  t.is(valid({ ...minimal, rebalance: { cooldownMs: 0 } }).rebalance.cooldownMs, 0);
});

test('console: enabled by default, a boolean, nothing else in the section', (t) => {
  t.false(valid({ ...minimal, console: { enabled: false } }).console.enabled);
  t.true(problems({ ...minimal, console: { enabled: 'no' } }).some((p) => p.startsWith('console/enabled')), problems({ ...minimal, console: { enabled: 'no' } }).join('; '));
  t.true(problems({ ...minimal, console: { port: 1 } }).some((p) => p.startsWith('console')), problems({ ...minimal, console: { port: 1 } }).join('; '));
});

test('required fields are all reported', (t) => {
  t.deepEqual(problems({}), [
    'cmId: is required',
    'signingKey: is required',
    'keyId: is required',
    'broker: is required',
    'group: is required',
  ]);
});

test('several problems are all reported, each naming its path', (t) => {
  t.deepEqual(
    problems({
      ...minimal,
      broker: 'tcp://h:1883',
      http: { port: 70000 },
      group: [
        { ...minimal.group[0], capacity: 0 },
        { ...minimal.group[0], services: 'ftp://h' },
      ],
      rebalance: { threshold: 1.5 },
      pointersVersion: 0,
      mqtt: { protocolVersion: 3 },
      bogus: 1,
    }),
    [
      'bogus: unknown field (typo?)',
      'http/port: must be an integer from 0 to 65535 (got 70000)',
      'group/0/capacity: must be an integer ≥ 1 (got 0)',
      'rebalance/threshold: must be a number from 0 to 1 (got 1.5)',
      'mqtt/protocolVersion: must be 4 or 5 (got 3)',
      'pointersVersion: must be an integer ≥ 1 (got 0)',
      'broker: scheme must be mqtt:, mqtts:, ws: or wss: (got "tcp:")',
      'group/1/id: duplicate id "cm-a" (also at group/0)',
      'group/1/services: scheme must be http: or https: (got "ftp:")',
    ],
  );
});

test('group must include cmId, hold 1 to 64 members, each with a capacity', (t) => {
  t.deepEqual(problems({ ...minimal, cmId: 'cm-z' }), ['group: must include this call manager\'s cmId "cm-z"']);
  t.deepEqual(problems({ ...minimal, group: [] }), ['group: must hold 1 to 64 pointers (got 0)']);
  const many = Array.from({ length: 64 }, (_, i) => ({ ...minimal.group[0], id: i === 0 ? 'cm-a' : `cm-${i}` }));
  t.is(valid({ ...minimal, group: many }).group.length, 64);
  t.deepEqual(problems({ ...minimal, group: [...many, { ...minimal.group[0], id: 'cm-65' }] }), ['group: must hold 1 to 64 pointers (got 65)']);
  const { capacity: _, ...noCapacity } = minimal.group[0]!;
  t.deepEqual(problems({ ...minimal, group: [noCapacity] }), ['group/0/capacity: is required']);
  t.is(valid({ ...minimal, group: [{ ...minimal.group[0], zone: 'east' }] }).group.length, 1);
});

test('loadCmConfigFile checks the signing key file', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-cmcfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const { privatePem, publicPem } = generateKeyPair();
  const keyFile = join(dir, 'ops-1.pem');
  writeFileSync(keyFile, privatePem);
  const pubFile = join(dir, 'ops-1.pem.pub');
  writeFileSync(pubFile, publicPem);
  const write = (name: string, cfg: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(cfg));
    return p;
  };

  t.is(loadCmConfigFile(write('good.json', { ...contractExample, signingKey: keyFile })).signingKey, keyFile);

  const missing = t.throws(() => loadCmConfigFile(write('missing.json', { ...contractExample, signingKey: join(dir, 'nope.pem') })));
  t.true(isIpphoneError(missing, 'CONFIG_INVALID'));
  t.regex(missing!.message, /^signingKey: cannot use ".*nope\.pem": ENOENT/);

  const notPrivate = t.throws(() => loadCmConfigFile(write('pub.json', { ...contractExample, signingKey: pubFile })));
  t.regex(notPrivate!.message, /^signingKey: cannot use .*not a PEM PKCS#8 key/);

  // schema problems and the key problem come together
  const both = t.throws(() => loadCmConfigFile(write('both.json', { ...contractExample, keyId: '', signingKey: pubFile })));
  const listed = (both as { context?: { problems?: string[] } }).context?.problems ?? [];
  t.is(listed.length, 2);
  t.regex(listed[0]!, /^keyId: /);
  t.regex(listed[1]!, /^signingKey: /);
  t.is(both!.message, listed.join('\n'));

  const badJson = join(dir, 'bad.json');
  writeFileSync(badJson, 'cmId=cm-a');
  t.regex(t.throws(() => loadCmConfigFile(badJson))!.message, /not valid JSON/);
});

test('stateDir: a path or null (the default directory, soft); trust.keys: usable Ed25519 public keys', (t) => {
  t.is(valid({ ...minimal, stateDir: '/srv/cm-a' }).stateDir, '/srv/cm-a');
  t.is(valid({ ...minimal, stateDir: null }).stateDir, null);
  t.deepEqual(problems({ ...minimal, stateDir: '' }), ['stateDir: must be a non-empty string or null (got "")']);
  const { publicPem } = generateKeyPair();
  t.deepEqual(valid({ ...minimal, trust: { keys: { 'site-2': publicPem } } }).trust.keys, { 'site-2': publicPem });
  const bad = problems({ ...minimal, trust: { keys: { 'site-2': 'not a key' } } });
  t.is(bad.length, 1);
  t.regex(bad[0]!, /^trust\/keys\/site-2: key "site-2" is not a usable Ed25519 public key/);
  t.deepEqual(problems({ ...minimal, trust: { keys: {}, extra: 1 } }), ['trust/extra: unknown field (typo?)']);
});

test('loadCmConfigFile: trust.keys under its own keyId must be its own public key', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-cmcfg-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const own = generateKeyPair();
  const other = generateKeyPair();
  const keyFile = join(dir, 'ops-1.pem');
  writeFileSync(keyFile, own.privatePem);
  const write = (name: string, cfg: unknown): string => {
    const p = join(dir, name);
    writeFileSync(p, JSON.stringify(cfg));
    return p;
  };
  t.notThrows(() => loadCmConfigFile(write('same.json', { ...contractExample, signingKey: keyFile, trust: { keys: { 'ops-1': own.publicPem, 'ops-2': other.publicPem } } })));
  const err = t.throws(() => loadCmConfigFile(write('clash.json', { ...contractExample, signingKey: keyFile, trust: { keys: { 'ops-1': other.publicPem } } })));
  t.true(isIpphoneError(err, 'CONFIG_INVALID'));
  t.regex(err!.message, /^trust\/keys\/ops-1: is not the public key of signingKey/);
});

test('sip: optional; registrar with defaults; members may carry sip', (t) => {
  t.true(valid(minimal).sip === undefined);
  const c = valid({ ...minimal, group: [{ ...minimal.group[0], sip: 'sip:127.0.0.1:5061;transport=tcp' }], sip: { registrar: 'sip:127.0.0.1:5061;transport=tcp' } });
  t.deepEqual(c.sip, { registrar: 'sip:127.0.0.1:5061;transport=tcp', probeMs: 1000, missLimit: 3 });
  t.is(c.group[0]!.sip, 'sip:127.0.0.1:5061;transport=tcp');
});

test('bad sip values: every problem, each naming its field', (t) => {
  const p = problems({
    ...minimal,
    group: [{ ...minimal.group[0], sip: 'http://pbx' }],
    sip: { registrar: 'sip:127.0.0.1:5061;transport=udp', probeMs: 10, missLimit: 0, extra: true },
  });
  t.true(p.some((l) => l.startsWith('group/0/sip: scheme must be sip:')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('sip/registrar: must say ;transport=tcp')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('sip/probeMs:')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('sip/missLimit:')), p.join('\n'));
  t.true(p.some((l) => l.startsWith('sip/extra:')), p.join('\n'));
  t.deepEqual(problems({ ...minimal, sip: {} }), ['sip/registrar: is required (the SIP server to probe, e.g. "sip:127.0.0.1:5061;transport=tcp")']);
  t.deepEqual(problems({ ...minimal, sip: { registrar: 'sip:1001@pbx;transport=tcp' } }), ['sip/registrar: must name a server, without a user part (got "sip:1001@pbx;transport=tcp")']);
});

test('retired: former members only (none of the group, none twice), empty by default', (t) => {
  t.deepEqual(valid(minimal).retired, []);
  t.deepEqual(valid({ ...minimal, retired: ['cm-c', 'cm-d'] }).retired, ['cm-c', 'cm-d']);
  t.deepEqual(problems({ ...minimal, retired: ['cm-a'] }), ['retired/0: "cm-a" is a member of group: only former members may be retired']);
  t.deepEqual(problems({ ...minimal, retired: ['cm-c', 'cm-c'] }), ['retired/1: "cm-c" is named twice']);
  t.true(problems({ ...minimal, retired: ['bad id'] }).some((p) => p.startsWith('retired/0')));
});
