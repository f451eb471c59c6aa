/** Issue 17: `sip.passwordFile` and `sip.authUser` of the agent config. */
import test from 'ava';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { checkedAgentConfig, validateAgentConfig } from '../../../src/config/agent-config.js';
import { readSipCredentials, sipPasswordFileProblems } from '../../../src/config/sip-credentials.js';
import { isIpphoneError } from '../../../src/lib/errors.js';

const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-sip-cred-'));
const file = (name: string, text: string): string => {
  const p = path.join(dir, name);
  writeFileSync(p, text);
  return p;
};
const base = (sip: Record<string, unknown>) => ({
  phoneId: 'p-1',
  pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081/services' }],
  sip: { driver: 'baresip', ctrl: '127.0.0.1:4444', user: '1001', ...sip },
});

test('the password is the file\'s first line; authUser defaults to the user part', (t) => {
  const pw = file('ok.secret', 'p4ss-word\nignored\n');
  t.deepEqual(readSipCredentials({ user: '1001', passwordFile: pw }), { user: '1001', password: 'p4ss-word' });
  t.deepEqual(readSipCredentials({ user: '1001', authUser: 'phone-1001', passwordFile: pw }), { user: 'phone-1001', password: 'p4ss-word' });
  t.is(readSipCredentials({ user: '1001' }), null);
});

test('an unreadable, empty or unusable password file is a clear config error that never shows the password', (t) => {
  const missing = path.join(dir, 'nope.secret');
  const e = (() => {
    try {
      readSipCredentials({ user: '1001', passwordFile: missing });
    } catch (err) {
      return err;
    }
    return undefined;
  })();
  t.true(isIpphoneError(e, 'CONFIG_INVALID'));
  t.regex((e as Error).message, /^sip\/passwordFile: cannot use ".*nope\.secret": .*ENOENT/);
  t.deepEqual(sipPasswordFileProblems({ passwordFile: file('empty.secret', '\n') }), [`sip/passwordFile: cannot use "${path.join(dir, 'empty.secret')}": its first line is empty`]);
  const spaced = sipPasswordFileProblems({ passwordFile: file('space.secret', 'has space;x\n') });
  t.is(spaced.length, 1);
  t.regex(spaced[0]!, /without space, ;/);
  t.false(spaced[0]!.includes('has space'), 'the password is not shown');
  if (process.getuid?.() !== 0) {
    const locked = file('locked.secret', 'x\n');
    chmodSync(locked, 0o000);
    t.regex(sipPasswordFileProblems({ passwordFile: locked })[0]!, /EACCES/);
  }
});

test('--check-config reports a missing sip.passwordFile; the schema takes authUser and authRetryMs', (t) => {
  const bad = (() => {
    try {
      checkedAgentConfig('agent.json', base({ passwordFile: path.join(dir, 'missing.secret') }));
    } catch (err) {
      return (err as { context?: { problems?: string[] } }).context?.problems;
    }
    return undefined;
  })();
  t.true(bad?.some((p) => p.startsWith('sip/passwordFile: cannot use')), JSON.stringify(bad));
  const ok = validateAgentConfig(base({ passwordFile: file('good.secret', 'abc\n'), authUser: 'u-1001@example.org', authRetryMs: 5000 }));
  t.true(ok.ok);
  const r = validateAgentConfig(base({ authUser: 'has space', authRetryMs: 10 }));
  t.false(r.ok);
  t.true(!r.ok && r.problems.some((p) => p.startsWith('sip/authUser')) && r.problems.some((p) => p.startsWith('sip/authRetryMs')), JSON.stringify(!r.ok && r.problems));
});
