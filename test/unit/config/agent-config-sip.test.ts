import test from 'ava';
import { validateAgentConfig } from '../../../src/config/agent-config.js';

const base = { phoneId: 'p1', pointers: [{ id: 'cm-a', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8080/', sip: 'sip:127.0.0.1:5071;transport=tcp' }] };

test('sip is optional; absent means no SIP', (t) => {
  const r = validateAgentConfig(base);
  t.true(r.ok);
  if (r.ok) t.true(r.config.sip === undefined);
});

test('sip with driver, ctrl and user gets its defaults; a pointer keeps its sip', (t) => {
  const r = validateAgentConfig({ ...base, sip: { driver: 'baresip', ctrl: '127.0.0.1:4444', user: '1001' } });
  t.true(r.ok);
  if (!r.ok) return;
  t.deepEqual(r.config.sip, { driver: 'baresip', ctrl: '127.0.0.1:4444', user: '1001', regintS: 120, registerTimeoutMs: 4000, authRetryMs: 30000 });
  t.is((r.config.pointers[0] as { sip?: string }).sip, 'sip:127.0.0.1:5071;transport=tcp');
});

test('bad sip settings are refused, each with its path', (t) => {
  const r = validateAgentConfig({ ...base, sip: { driver: 'pjsip', ctrl: 'localhost', user: 'a b', regintS: 5, extra: 1 } });
  t.false(r.ok);
  if (r.ok) return;
  const text = r.problems.join('\n');
  for (const path of ['sip/driver', 'sip/ctrl', 'sip/user', 'sip/regintS', 'sip']) t.true(text.includes(path), `${path} in:\n${text}`);
  const port = validateAgentConfig({ ...base, sip: { driver: 'baresip', ctrl: '127.0.0.1:70000', user: '1001' } });
  t.false(port.ok);
  if (!port.ok) t.true(port.problems.some((p) => p.startsWith('sip/ctrl: port')));
  t.false(validateAgentConfig({ ...base, sip: { driver: 'baresip', user: '1001' } }).ok);
});
