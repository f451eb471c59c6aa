/** Issue 17: every reason a phone's status gives for not being registered (`sip.reason`) is written down in docs/mqtt.md. */
import test from 'ava';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { SIP_UNREGISTERED_REASONS } from '../../../src/agent/sip-registration.js';

test('every sip.reason of the status is in docs/mqtt.md, and so is the sip-auth-failed event', (t) => {
  const mqtt = readFileSync(join(import.meta.dirname, '../../../docs/mqtt.md'), 'utf8');
  t.true(SIP_UNREGISTERED_REASONS.length >= 4);
  for (const r of SIP_UNREGISTERED_REASONS) t.true(mqtt.includes(`\`${r}\``), `docs/mqtt.md names ${r}`);
  t.regex(mqtt, /\| `sip-auth-failed` \| `cm, reason, retryMs` \|/);
});
