/**
 * What the liveness tests share: a separate subscriber that keeps everything it
 * hears, the signed body of a call manager's state, cm-b's "peer state changed"
 * lines, and libfaketime for a process whose wall clock runs elsewhere.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { connect, type IClientOptions, type MqttClient } from 'mqtt';
import { openEnvelope, parsePublicKey } from '../../src/protocol/envelope.js';
import type { Cluster } from './cluster.js';

/** libfaketime's thread-safe build (node is multi-threaded), wherever the multiarch directory is. */
export function libfaketime(): string {
  for (const dir of ['/usr/lib', '/usr/lib64', '/usr/local/lib']) {
    if (!existsSync(dir)) continue;
    for (const sub of ['', ...readdirSync(dir)]) {
      const p = join(dir, sub, 'faketime', 'libfaketimeMT.so.1');
      if (existsSync(p)) return p;
    }
  }
  throw new Error('libfaketime not found: install the Debian package faketime (.ci/run does)');
}

/** The signed body of a call manager's `state` (the fields the tests read). */
export type StateBody = { cm: string; online: boolean; bdSeq: number; conn: number; nonce: string; seq: number; will?: true; challenge?: string };

type Teardown = { teardown(fn: () => Promise<void> | void): void };

/** An mqtt.js client that keeps every message of its subscriptions, in arrival order; ended at the test's teardown. */
export async function watch(t: Teardown, url: string, topics: string[], opts: IClientOptions = {}) {
  const client: MqttClient = connect(url, { reconnectPeriod: 0, clientId: `watch-${Math.random().toString(16).slice(2)}`, ...opts });
  t.teardown(async () => void (await client.endAsync(true)));
  const got: { topic: string; text: string; at: number }[] = [];
  client.on('message', (topic, payload) => got.push({ topic, text: payload.toString('utf8'), at: Date.now() }));
  await new Promise<void>((done, fail) => {
    client.once('connect', () => done());
    client.once('error', fail);
  });
  if (topics.length > 0) await client.subscribeAsync(topics, { qos: 1 });
  return { client, got, on: (topic: string) => got.filter((m) => m.topic === topic) };
}

/** The verified body of a state message signed with the cluster's key (`ops-1`). */
export const bodyOf = (c: Cluster, text: string): StateBody => {
  const o = JSON.parse(text) as { kid: string; body: string; sig: string };
  return JSON.parse(openEnvelope(o, new Map([['ops-1', parsePublicKey(c.publicPem)]])).toString('utf8')) as StateBody;
};

/** A call manager's (default cm-b's) "peer state changed" log lines — its offline sets — from `from` chars of its output on. */
export const peerChanges = (c: Cluster, from = 0, cm = 'cm-b'): string[][] =>
  c.cms
    .get(cm)!
    .output()
    .slice(from)
    .split('\n')
    .flatMap((l) => {
      try {
        const o = JSON.parse(l) as { msg?: string; offline?: string[] };
        return o.msg === 'peer state changed' ? [o.offline ?? []] : [];
      } catch {
        return [];
      }
    });
