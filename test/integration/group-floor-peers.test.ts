/**
 * Floors raised when a peer's group changes (src/callmanager/group-floor.ts), as
 * users run it: `ipphone-cm` child processes against a real mosquitto. A member
 * restarted with the new group announces its floor in its signed state; a member
 * running the same group with a lower floor takes it, so a phone holding a list
 * between the two floors (one a member still running the old group signed) is
 * given the new group in its next ack — the group simulation's seeds 600,012 and 714.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import test, { type ExecutionContext } from 'ava';
import { connectAsync } from 'mqtt';
import { generateKeyPair, openEnvelope, parsePublicKey } from '../../src/protocol/envelope.js';
import type { AckPayload, Envelope, PointersBody } from '../../src/protocol/types.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { freePort, waitFor } from '../helpers/net.js';
import { programArgs } from '../helpers/programs.js';

const ROOT = path.resolve(import.meta.dirname, '../..');
const P = 'ipphone/v1';
const keys = generateKeyPair();
const trusted = new Map([['ops-1', parsePublicKey(keys.publicPem)]]);

interface Cm {
  child: ChildProcess;
  stdout: () => string;
  exit: Promise<unknown>;
}

/** Start `cmId` with the group `ids` (all on `broker`) and `retired`, its state directory under `dir`. */
async function startCm(t: ExecutionContext, dir: string, broker: string, cmId: string, ports: Record<string, number>, retired: string[]): Promise<Cm> {
  const keyFile = path.join(dir, 'ops-1.pem');
  writeFileSync(keyFile, keys.privatePem);
  const group = Object.entries(ports).map(([id, port]) => ({ id, broker, services: `http://127.0.0.1:${port}/services`, capacity: 100 }));
  const config = { cmId, broker, http: { host: '127.0.0.1', port: ports[cmId] }, group, retired, signingKey: keyFile, keyId: 'ops-1', stateDir: path.join(dir, `state-${cmId}`), log: { level: 'info' } };
  const file = path.join(dir, `${cmId}.json`);
  writeFileSync(file, JSON.stringify(config));
  const child = spawn(process.execPath, [...programArgs('ipphone-cm'), '--config', file], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  let err = '';
  child.stdout?.setEncoding('utf8').on('data', (s: string) => (out += s));
  child.stderr?.setEncoding('utf8').on('data', (s: string) => (err += s));
  const exit = new Promise((resolve) => child.once('exit', resolve));
  t.teardown(() => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  });
  await waitFor(() => out.includes('"call manager started"') || child.exitCode !== null, { timeoutMs: 60_000, what: `${cmId} started` });
  if (child.exitCode !== null) throw new Error(`${cmId} exited: ${err}`);
  return { child, stdout: () => out, exit };
}

async function stop(cm: Cm): Promise<void> {
  cm.child.kill('SIGTERM');
  await cm.exit;
}

/** The signed body of a state message (throws unless it verifies). */
function stateBody(text: string): { online: boolean; floor?: number; group?: string } {
  const o = JSON.parse(text) as Envelope;
  return JSON.parse(openEnvelope({ kid: o.kid, body: o.body, sig: o.sig }, trusted).toString('utf8')) as { online: boolean; floor?: number; group?: string };
}

test('a member whose peer restarted with the same new group and a higher floor gives a phone holding a version between the two floors the new group; the floor survives its restart', async (t) => {
  const mq = await startMosquitto();
  t.teardown(() => mq.stop());
  const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-floor-it-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const ports = { 'cm-a': await freePort(), 'cm-b': await freePort() };
  const w = await connectAsync(mq.url, { reconnectPeriod: 0 });
  t.teardown(() => w.endAsync(true));
  const got: { topic: string; text: string }[] = [];
  w.on('message', (topic, payload) => got.push({ topic, text: payload.toString('utf8') }));
  await w.subscribeAsync([`${P}/cm/+/state`, `${P}/phone/p1/ack`], { qos: 1 });
  const states = (cm: string) => got.filter((m) => m.topic === `${P}/cm/${cm}/state` && m.text !== '').map((m) => stateBody(m.text));

  // cm-b ran the old group, then was restarted with the operator's edit (cm-x retired): its floor rises to about now.
  await stop(await startCm(t, dir, mq.url, 'cm-b', ports, []));
  const b = await startCm(t, dir, mq.url, 'cm-b', ports, ['cm-x']);
  t.true(b.stdout().includes('group changed since the last start'));
  await waitFor(() => states('cm-b').some((s) => s.online && s.floor !== undefined && s.floor > 1_000_000), { what: 'cm-b announces its raised floor' });
  const floor = states('cm-b').filter((s) => s.online).at(-1)!.floor!;

  // cm-a starts with the same new group and an empty state directory: its own floor is pointersVersion (1).
  const a = await startCm(t, dir, mq.url, 'cm-a', ports, ['cm-x']);
  await waitFor(() => a.stdout().includes('group floor raised'), { timeoutMs: 30_000, what: 'cm-a takes cm-b\'s floor' });

  // A phone holding version 1000 (above cm-a's own floor, below cm-b's: a list of the old group) gets the group list.
  await w.publishAsync(`${P}/cm/cm-a/keepalive`, JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 1000, busy: false, intervalMs: 60_000 }));
  await waitFor(() => got.some((m) => m.topic === `${P}/phone/p1/ack`), { what: 'ack' });
  const ack = JSON.parse(got.find((m) => m.topic === `${P}/phone/p1/ack`)!.text) as AckPayload;
  t.truthy(ack.pointers, 'a full ack: the list, not a short one');
  const body = JSON.parse(openEnvelope(ack.pointers!, trusted).toString('utf8')) as PointersBody;
  t.is(body.version, floor);
  t.deepEqual(body.list.map((p) => p.id), ['cm-a', 'cm-b']);
  t.true(body.owns?.includes('cm-x'));

  // Restarted, cm-a keeps the floor (its group slot) and announces it.
  const before = states('cm-a').length;
  await stop(a);
  await startCm(t, dir, mq.url, 'cm-a', ports, ['cm-x']);
  await waitFor(() => states('cm-a').slice(before).some((s) => s.online), { what: 'cm-a online again' });
  t.is(states('cm-a').slice(before).find((s) => s.online)!.floor, floor);
});
