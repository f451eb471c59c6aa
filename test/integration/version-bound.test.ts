/**
 * Issue 15 §1 end to end, on the production broker shape: a TLS-only
 * mosquitto, client certificates made by openssl (test/helpers/pki.ts), the CN
 * as identity, and the ACL `ipphone-admin acl` prints (src/admin/acl.ts).
 *
 * 1. The attack: an MQTT client with an ordinary phone certificate sends 30
 *    keep-alives on the one keep-alive topic the ACL lets it write, each a day
 *    further ahead. Judged by a separate subscriber (an operator's
 *    certificate): the next list cm-a issues — in a genuine phone's status and
 *    cm-a's load — is versioned within cm-a's clock + 24 h, and cm-b still takes
 *    cm-a's versions (after cm-a dies, cm-b's list reaches the phone above
 *    them). Before the fix cm-a's next list was ~30 days ahead, cm-b ignored it
 *    as implausible, and its lists never reached the phone again.
 * 2. The recovery: a real agent dragged to a version 30 days ahead (an
 *    operator's push, as a call manager with a wrong clock would) refuses the
 *    group's lists; `ipphone-admin pointers --rebase` brings it back, after which
 *    the failover and restored lists reach it; the recorded rebase replayed
 *    later is refused.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type MqttClient } from 'mqtt';
import { aclFile } from '../../src/admin/acl.js';
import { parsePrivateKey, signEnvelope } from '../../src/protocol/envelope.js';
import { Cluster, OBSERVER_CN } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { makePki, type Pki } from '../helpers/pki.js';
import { programArgs, ROOT } from '../helpers/programs.js';

const OPERATOR = 'ops-admin';
/** The separate subscriber: an operator identity of its own (one CN, one session: use_username_as_clientid). */
const JUDGE = 'ops-judge';
const DAY = 24 * 3600_000;
const WAIT = { timeoutMs: 30_000 };

let pki: Pki;
test.before(async () => {
  pki = await makePki();
});
test.after.always(() => pki?.remove());

type Teardown = { teardown(fn: () => Promise<void> | void): void };

/** cm-a and cm-b on a TLS broker under the generated ACL, watched by an observer with operator rights. */
async function tlsGroup(t: Teardown): Promise<{ c: Cluster; broker: Mosquitto }> {
  const c = new Cluster({ tls: pki });
  t.teardown(() => c.close());
  const acl = pki.writeFile(`acl-${c.prefix.replace(/\W/g, '_')}.conf`, aclFile({ prefix: c.prefix, callManagers: ['cm-a', 'cm-b'], operators: [OBSERVER_CN, OPERATOR, JUDGE] }));
  const broker = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, aclFile: acl } });
  t.teardown(() => broker.stop());
  await c.defineGroup([
    { id: 'cm-a', broker: broker.url },
    { id: 'cm-b', broker: broker.url },
  ]);
  await c.observe(broker.url);
  // Loads every second: peers see each other's versions without waiting for the default 5 s.
  await Promise.all(['cm-a', 'cm-b'].map((id) => c.startCm(id, { rebalance: { enabled: false, periodMs: 1000 } })));
  return { c, broker };
}

/** A plain mqtt.js client with the certificate of `cn`. */
async function clientAs(t: Teardown, url: string, cn: string): Promise<MqttClient> {
  const client = connect(url, { reconnectPeriod: 0, ...(await pki.clientTls(cn)) });
  t.teardown(() => client.endAsync(true));
  await new Promise<void>((done, fail) => {
    client.once('connect', () => done());
    client.once('error', fail);
  });
  return client;
}

/** The latest retained/streamed JSON of each topic matching `filter`, as seen by `client`. */
async function watch(client: MqttClient, filter: string): Promise<Map<string, Record<string, unknown>>> {
  const latest = new Map<string, Record<string, unknown>>();
  client.on('message', (topic, payload) => {
    try {
      latest.set(topic, JSON.parse(payload.toString()) as Record<string, unknown>);
    } catch {
      /* not JSON */
    }
  });
  await client.subscribeAsync(filter, { qos: 1 });
  return latest;
}

const hours = (v: number): string => `${((v - Date.now()) / 3600_000).toFixed(1)} h`;

test.serial('versions-bounded-by-wall-clock: a phone certificate sending 30 keep-alives each a day further ahead cannot push cm-a\'s next list past its clock + 24 h, nor split it from cm-b', async (t) => {
  const { c, broker } = await tlsGroup(t);
  const P = c.prefix;
  await c.identity('p-genuine');
  c.startAgent('p-genuine', c.agentConfig('p-genuine', { fallback: { holdMs: 60_000 } }));
  await c.waitHome('p-genuine', 'cm-a', 30_000);

  // The separate judge: an operator's certificate reads the call managers' loads.
  const judge = await clientAs(t, broker.url, JUDGE);
  const loads = await watch(judge, `${P}/cm/+/load`);

  // The attacker: an ordinary phone certificate, on the keep-alive topic the ACL lets it write.
  const evil = await clientAs(t, broker.url, 'p-evil');
  let acks = 0;
  evil.on('message', () => acks++);
  await evil.subscribeAsync(`${P}/phone/p-evil/ack`, { qos: 0 });
  const t0 = Date.now();
  for (let i = 1; i <= 30; i++) {
    // Each just within a day of the one before: what the pre-fix bound, max(last, now) + 24 h, let through.
    const ka = { phone: 'p-evil', seq: i, pointersVersion: t0 + i * (DAY - 60_000), busy: false };
    await evil.publishAsync(`${P}/cm/cm-a/keepalive/p-evil`, JSON.stringify(ka), { qos: 0 });
  }
  await waitFor(() => acks >= 30, { ...WAIT, what: 'cm-a answered the 30 keep-alives' });
  // Then the most a phone can still do: one report just inside the phones' bound (wall + 12 h).
  const edge = Date.now() + 12 * 3600_000 - 5 * 60_000;
  await evil.publishAsync(`${P}/cm/cm-a/keepalive/p-evil`, JSON.stringify({ phone: 'p-evil', seq: 31, pointersVersion: edge, busy: false }), { qos: 0 });
  await waitFor(() => acks >= 31, { ...WAIT, what: 'cm-a answered it' });
  // Seen from outside, too: the operator's scrape of cm-a counts the 30 reports that moved nothing (the edge one moved the clock).
  const metrics = await (await fetch(new URL('/metrics', c.group.find((g) => g.id === 'cm-a')!.services))).text();
  t.regex(metrics, /^ipphone_cm_version_reports_ignored_total\{why="implausible"\} 30$/m);
  t.regex(metrics, /^ipphone_cm_version_reports_ignored_total\{why="rate-limited"\} 0$/m);

  // cm-b dies: cm-a issues its next list (the failover list), which the genuine phone takes in its ack.
  c.cms.get('cm-b')!.signal('SIGKILL');
  const before = Number(c.status('p-genuine')?.pointersVersion);
  await waitFor(() => Number(c.status('p-genuine')?.pointersVersion) > before, { ...WAIT, what: "cm-a's next list in the phone's status" });
  const next = Number(c.status('p-genuine')?.pointersVersion);
  await waitFor(() => Number(loads.get(`${P}/cm/cm-a/load`)?.version) >= next, { ...WAIT, what: "cm-a's load advertising it" });
  const advertised = Number(loads.get(`${P}/cm/cm-a/load`)?.version);
  t.log(`cm-a's next list is ${hours(next)} ahead of the wall clock; its load advertises ${hours(advertised)}`);
  t.true(next <= Date.now() + DAY, `cm-a's next list ${hours(next)} ahead (was ~720 h: 30 days)`);
  t.true(next > edge, 'the report within the bound was observed: the next list is above it');
  t.true(advertised <= Date.now() + DAY, `cm-a's load ${hours(advertised)} ahead`);

  // No split: cm-b restarted takes cm-a's versions (12 h ahead: within a peer's 23 h), and once cm-a dies its list reaches the phone above them.
  await c.startCm('cm-b', { rebalance: { enabled: false, periodMs: 1000 } });
  await waitFor(() => loads.get(`${P}/cm/cm-b/load`) !== undefined && Number(c.status('p-genuine')?.pointersVersion) > next, { ...WAIT, what: "cm-a's restored list (cm-b back) in the phone's status" });
  const held = Number(c.status('p-genuine')?.pointersVersion);
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-genuine', 'cm-b', 30_000);
  await waitFor(() => Number(c.status('p-genuine')?.pointersVersion) > held, { ...WAIT, what: "cm-b's failover list taken above cm-a's versions" }).catch((err: Error) => {
    throw new Error(`${err.message}\n${c.cms.get('cm-b')!.output().slice(-3000)}`);
  });
  t.notRegex(c.cms.get('cm-b')!.output(), /implausibly far ahead/, 'cm-b ignored none of cm-a\'s versions');
  t.deepEqual(c.events('p-genuine', 'rejected').filter((e) => e.payload.code === 'VERSION_REPLAYED'), [], 'the phone refused no list as not newer');
});

/** Run `ipphone-admin` to its end. */
function admin(args: string[], timeoutMs = 30_000): Promise<{ code: number; stdout: string; stderr: string }> {
  return new Promise((done) => {
    const child = spawn(process.execPath, [...programArgs('ipphone-admin'), ...args], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (b: Buffer) => (stdout += b.toString()));
    child.stderr.on('data', (b: Buffer) => (stderr += b.toString()));
    const killer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.once('exit', (code) => {
      clearTimeout(killer);
      done({ code: code ?? -1, stdout, stderr });
    });
  });
}

test.serial('rebase-recovers-far-ahead-phone: a phone holding a version 30 days ahead takes the group\'s lists again after ipphone-admin pointers --rebase; the recorded rebase replayed is refused', async (t) => {
  const { c, broker } = await tlsGroup(t);
  const P = c.prefix;
  const phone = 'p-ahead';
  await c.identity(phone);
  c.startAgent(phone, c.agentConfig(phone, { fallback: { holdMs: 60_000 } }));
  await c.waitHome(phone, 'cm-a', 30_000);
  const op = await pki.client(OPERATOR);
  const tls = ['--ca', pki.ca.cert, '--cert', op.cert, '--tls-key', op.key];
  const list = c.group.map(({ id, broker: b, services }) => ({ id, broker: b, services }));
  const listFile = join(c.dir, 'group.json');
  writeFileSync(listFile, JSON.stringify(list));

  // Dragged 30 days ahead: a signed list versioned by a clock a month fast (as a pre-fix call manager's were).
  const far = Date.now() + 30 * DAY;
  const judge = await clientAs(t, broker.url, JUDGE);
  await judge.publishAsync(`${P}/phone/${phone}/pointers`, JSON.stringify(signEnvelope({ version: far, reason: 'admin', list, phone }, parsePrivateKey(c.privatePem), 'ops-1')), { qos: 1 });
  await waitFor(() => c.status(phone)?.pointersVersion === far, { ...WAIT, what: 'the phone holding the far-ahead version' });

  // The group's failover list (cm-b dies) cannot reach it: cm-a takes the phone for holding it (a higher version).
  const loads = await watch(judge, `${P}/cm/+/load`);
  await waitFor(() => loads.has(`${P}/cm/cm-a/load`), { ...WAIT, what: "cm-a's load" });
  const issuedBefore = Number(loads.get(`${P}/cm/cm-a/load`)?.version);
  let acksAfter = 0;
  let failoverIssued = false;
  judge.on('message', (topic) => {
    if (failoverIssued && topic === `${P}/phone/${phone}/ack`) acksAfter++;
  });
  await judge.subscribeAsync(`${P}/phone/${phone}/ack`, { qos: 0 });
  c.cms.get('cm-b')!.signal('SIGKILL');
  await waitFor(() => (failoverIssued = Number(loads.get(`${P}/cm/cm-a/load`)?.version) > issuedBefore), { ...WAIT, what: "cm-a's failover list issued" });
  await waitFor(() => acksAfter >= 3, { ...WAIT, what: 'three acks after it' });
  t.is(c.status(phone)?.pointersVersion, far, 'the phone is stuck at the far version');

  // The rebase: recorded by the judge as it goes by.
  const pushed: string[] = [];
  judge.on('message', (topic, payload) => topic === `${P}/phone/${phone}/pointers` && pushed.push(payload.toString()));
  await judge.subscribeAsync(`${P}/phone/${phone}/pointers`, { qos: 1 });
  const r = await admin(['pointers', '--broker', broker.url, ...tls, '--prefix', P, '--phone', phone, '--key', c.keyPath, '--kid', 'ops-1', '--list', listFile, '--rebase', '--wait']);
  t.is(r.code, 0, r.stderr);
  // With --wait the line is the phone's status showing the new version.
  const rebased = Number((JSON.parse(r.stdout.trim().split('\n').at(-1)!) as { pointersVersion: number }).pointersVersion);
  t.true(rebased < far && rebased <= Date.now(), `rebased to ${rebased}`);
  await waitFor(() => c.status(phone)?.pointersVersion === rebased, { ...WAIT, what: 'the status at the rebased version' });

  // Afterwards the group's lists reach the phone: cm-b back → cm-a's restored list; cm-a killed → cm-b's failover list.
  await c.startCm('cm-b', { rebalance: { enabled: false, periodMs: 1000 } });
  await waitFor(() => Number(c.status(phone)?.pointersVersion) > rebased, { ...WAIT, what: "cm-a's list taken after the rebase" });
  const restored = Number(c.status(phone)?.pointersVersion);
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome(phone, 'cm-b', 30_000);
  await waitFor(() => Number(c.status(phone)?.pointersVersion) > restored, { ...WAIT, what: "cm-b's failover list taken" });
  t.true(Number(c.status(phone)?.pointersVersion) <= Date.now() + DAY);

  // The recorded rebase, replayed: refused, nothing rolls back.
  const isRebase = (env: string): boolean => 'rebase' in (JSON.parse(Buffer.from((JSON.parse(env) as { body: string }).body, 'base64').toString()) as Record<string, unknown>);
  await waitFor(() => pushed.some(isRebase), { ...WAIT, what: 'the rebase recorded' });
  const rejectedBefore = c.events(phone, 'rejected').length;
  const now = Number(c.status(phone)?.pointersVersion);
  await judge.publishAsync(`${P}/phone/${phone}/pointers`, pushed.find(isRebase)!, { qos: 1 });
  await waitFor(() => c.events(phone, 'rejected').length > rejectedBefore, { ...WAIT, what: 'the replayed rebase refused' });
  t.like(c.events(phone, 'rejected').at(-1)?.payload, { code: 'VERSION_REPLAYED' });
  t.is(Number(c.status(phone)?.pointersVersion), now, 'the version did not roll back');
});
