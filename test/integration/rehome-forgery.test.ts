/**
 * A confined phone forges `rehomed` events (issue 15 §5), on the production
 * broker shape: a TLS-only mosquitto, client certificates, the CN as user
 * name and client id, and the ACL `ipphone-admin acl` prints. Under that ACL
 * every phone may publish on its own `P/phone/{id}/event`, so the attacker —
 * a plain MQTT client with the phone certificate `p-evil` — publishes 60
 * `rehomed` events claiming a failover to cm-b. What it did before the fix:
 * cm-b's `ipphone_cm_rehomes_total` went from 2 (two real failovers) to 62
 * and all 50 of the console's recent rehomes became its own. The effect is
 * judged by cm-b's `/metrics` and its console's data (with the operators'
 * token), and a separate subscriber (the cluster's observer, operator
 * rights) proves the 60 reached the broker.
 */
import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { aclFile } from '../../src/admin/acl.js';
import { REHOME_BURST, REHOMES_PER_PHONE } from '../../src/callmanager/console-model.js';
import { Cluster, OBSERVER_CN } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';

const TOKEN = 'rehome-forgery-console-token-0123456789';
const FORGED = 60;

let pki: Pki;
let dir: string;
test.before(async () => {
  pki = await makePki();
  dir = mkdtempSync(join(tmpdir(), 'ipphone-forgery-'));
});
test.after.always(() => {
  pki?.remove();
  if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
});

/** One sample of a Prometheus text, or undefined. */
function sample(text: string, series: string): number | undefined {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

/** `ipphone_cm_rehomes_total` over every reason (a real kill -9 is `cm-offline`, or `keepalive-loss` when the phone noticed first). */
function rehomesTotal(text: string): number {
  return text
    .split('\n')
    .filter((l) => l.startsWith('ipphone_cm_rehomes_total{'))
    .reduce((sum, l) => sum + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
}

test('rehome-rate-limited-per-phone + recent-rehomes-fair: 60 forged rehomed events from a confined phone over TLS + the printed ACL add 2 to ipphone_cm_rehomes_total and hold 2 of the 50 recent rehomes', async (t) => {
  t.timeout(180_000);
  const c = new Cluster({ tls: pki });
  t.teardown(() => c.close());
  const acl = pki.writeFile(`acl-${c.prefix.replace(/\W/g, '_')}.conf`, aclFile({ prefix: c.prefix, callManagers: ['cm-a', 'cm-b'], operators: [OBSERVER_CN] }));
  const broker = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, aclFile: acl } });
  t.teardown(() => broker.stop());
  await c.defineGroup([
    { id: 'cm-a', broker: broker.url },
    { id: 'cm-b', broker: broker.url },
  ]);
  await c.observe(broker.url);
  const tokenFile = join(dir, 'console.token');
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
  const withConsole = { console: { enabled: true, tokenFile } };
  await Promise.all([c.startCm('cm-a', withConsole), c.startCm('cm-b', withConsole)]);
  const cmB = c.group.find((g) => g.id === 'cm-b')!.services.replace(/\/services$/, '');
  const metrics = async (): Promise<string> => (await fetch(`${cmB}/metrics`)).text();
  const recent = async (): Promise<{ phone: string; reason: string }[]> => {
    const res = await fetch(`${cmB}/console/events`, { headers: { authorization: `Bearer ${TOKEN}` } });
    const reader = res.body!.getReader();
    let text = '';
    while (!text.includes('event: snapshot')) text += Buffer.from((await reader.read()).value ?? new Uint8Array()).toString();
    while (!/event: snapshot\ndata: .*\n/.test(text)) text += Buffer.from((await reader.read()).value ?? new Uint8Array()).toString();
    await reader.cancel();
    return (JSON.parse(/event: snapshot\ndata: (.*)\n/.exec(text)![1]!) as { rehomes: { phone: string; reason: string }[] }).rehomes;
  };

  // Two real failovers: p-1 and p-2 homed on cm-a, cm-a killed, both rehome to cm-b.
  for (const p of ['p-1', 'p-2']) {
    await c.identity(p);
    c.startAgent(p);
  }
  for (const p of ['p-1', 'p-2']) await c.waitHome(p, 'cm-a', 30_000);
  c.cms.get('cm-a')!.signal('SIGKILL');
  for (const p of ['p-1', 'p-2']) await c.waitHome(p, 'cm-b', 30_000);
  await waitFor(async () => rehomesTotal(await metrics()) === 2, { timeoutMs: 20_000, what: 'cm-b counted the two real rehomes' });
  const before = { rehomes: 2, recent: (await recent()).map((r) => r.phone).sort() };
  t.deepEqual(before.recent, ['p-1', 'p-2']);

  // The attacker: a plain MQTT client with a phone's certificate, publishing what the ACL lets it.
  const evil = connect(broker.url, { reconnectPeriod: 0, protocolVersion: 5, ...(await pki.clientTls('p-evil')) });
  t.teardown(() => evil.end(true));
  await new Promise<void>((done, fail) => {
    evil.once('connect', () => done());
    evil.once('error', fail);
  });
  for (let i = 0; i < FORGED; i++) {
    await evil.publishAsync(`${c.prefix}/phone/p-evil/event`, JSON.stringify({ type: 'rehomed', from: 'cm-a', to: 'cm-b', reason: 'cm-offline', detectMs: 1, rehomeMs: 1, n: i }), { qos: 1 });
  }
  // A separate subscriber saw all 60 pass the broker (the ACL admits a phone's own event topic) …
  await waitFor(() => c.events('p-evil', 'rehomed').length === FORGED, { timeoutMs: 20_000, what: `the observer saw the ${FORGED} forged events` });
  // … and cm-b took every one of them in: believed or limited.
  await waitFor(async () => sample(await metrics(), 'ipphone_cm_rehome_events_limited_total') === FORGED - REHOME_BURST, { timeoutMs: 20_000, what: 'cm-b heard all forged events' });

  const text = await metrics();
  const after = { rehomes: rehomesTotal(text), limited: sample(text, 'ipphone_cm_rehome_events_limited_total'), recent: await recent() };
  t.log(`ipphone_cm_rehomes_total (all reasons): before ${before.rehomes}, after ${after.rehomes} (${FORGED} forged; ${after.limited} limited)`);
  t.log(`console recent rehomes after: ${after.recent.length} entries, ${after.recent.filter((r) => r.phone === 'p-evil').length} of p-evil, others: ${after.recent.filter((r) => r.phone !== 'p-evil').map((r) => r.phone).sort().join(', ')}`);
  t.is(after.rehomes, 2 + REHOME_BURST, 'was 62 before the limit');
  t.is(after.limited, FORGED - REHOME_BURST);
  t.is(after.recent.filter((r) => r.phone === 'p-evil').length, REHOMES_PER_PHONE, 'was all 50 before');
  t.deepEqual(after.recent.filter((r) => r.phone !== 'p-evil').map((r) => r.phone).sort(), ['p-1', 'p-2'], 'the real rehomes are still listed');
});
