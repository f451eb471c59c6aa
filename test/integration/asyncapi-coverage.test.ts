/**
 * Every topic real programs publish or subscribe to is a channel of
 * asyncapi.yaml, and every payload on the wire conforms to its channel's
 * schema: two call managers and an agent (child processes) on an in-process
 * aedes broker whose publish and subscribe hooks record everything, through a
 * homing and a kill -9 failover (state will, rehomed event, pushed lists).
 */
import test from 'ava';
import type { AedesPublishPacket, Client, Subscription } from 'aedes';
import { channelSchemas } from '../../src/protocol/asyncapi-gen.js';
import { compile } from '../../src/protocol/payload-schemas.js';
import { DEFAULT_PREFIX } from '../../src/protocol/topics.js';
import { channelMatcher } from '../helpers/asyncapi-match.js';
import { startAedes } from '../helpers/aedes.js';
import { Cluster } from '../helpers/cluster.js';

test('topics and payloads of a running group + agent (homing, kill -9 failover) are all in asyncapi.yaml', async (t) => {
  const broker = await startAedes();
  t.teardown(() => broker.close());
  const published: Array<{ topic: string; payload: Buffer; client: string }> = [];
  const subscribed: Array<{ topic: string; client: string }> = [];
  // The test's own observer (obs-…) is not the code under test.
  const ours = (c: Client | null) => c !== null && !c.id.startsWith('obs-');
  broker.broker.on('publish', (packet: AedesPublishPacket, client: Client | null) => {
    if (packet.topic.startsWith('$SYS/')) return;
    // A will comes with the dead client (or none): kept either way.
    if (client !== null && !ours(client)) return;
    published.push({ topic: packet.topic, payload: Buffer.from(packet.payload), client: client?.id ?? '(broker)' });
  });
  broker.broker.on('subscribe', (subs: Subscription[], client: Client) => {
    if (ours(client)) for (const s of subs) subscribed.push({ topic: s.topic, client: client.id });
  });

  // aedes speaks MQTT 3.1.1.
  const c = await Cluster.group(t, broker.url, ['cm-a', 'cm-b'], { mqtt: { protocolVersion: 4 } });
  c.startAgent('p-cov', c.agentConfig('p-cov', { mqtt: { connectTimeoutMs: 2000, backoff: { baseMs: 200, maxMs: 2000 }, protocolVersion: 4 } }));
  await c.waitHome('p-cov', 'cm-a');
  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-cov', 'cm-b');

  // The cluster runs under its own topicPrefix; the document's addresses use the default one.
  const channels = channelSchemas().map((ch) => ({
    ...ch,
    address: `${c.prefix}${ch.address.slice(DEFAULT_PREFIX.length)}`,
    checks: ch.schemas.map((s) => compile(s)),
  }));
  t.true(channels.every((ch) => ch.address.startsWith(`${c.prefix}/`)));
  const match = channelMatcher(channels);
  const unknownPubs = [...new Set(published.filter((p) => match(p.topic) === undefined).map((p) => p.topic))];
  const unknownSubs = [...new Set(subscribed.filter((s) => match(s.topic, { filter: true }) === undefined).map((s) => s.topic))];
  t.deepEqual(unknownPubs, [], 'published topics without a channel');
  t.deepEqual(unknownSubs, [], 'subscriptions without a channel');

  const bad: string[] = [];
  for (const p of published) {
    if (p.payload.length === 0) continue; // a retained message cleared
    const ch = match(p.topic)!;
    const value: unknown = JSON.parse(p.payload.toString('utf8'));
    if (!ch.checks.some((k) => k.Check(value))) bad.push(`${p.topic} from ${p.client}: ${p.payload.toString('utf8').slice(0, 200)}`);
  }
  t.deepEqual(bad, [], 'payloads that do not conform to their channel schema');

  // Not vacuous: the run used the main channels, both directions.
  const pubChannels = new Set(published.map((p) => match(p.topic)!.name));
  const subChannels = new Set(subscribed.map((s) => match(s.topic, { filter: true })!.name));
  t.true(pubChannels.has('cmKeepalive') || pubChannels.has('cmPhoneKeepalive'), 'keep-alives published');
  for (const name of ['cmState', 'cmLoad', 'phoneAck', 'phoneStatus', 'phoneEvent']) t.true(pubChannels.has(name), `published on ${name}`);
  for (const name of ['cmState', 'phoneAck', 'phonePointers', 'phoneConfig', 'phoneStatus']) t.true(subChannels.has(name), `subscribed to ${name}`);
  const offline = (p: { topic: string; payload: Buffer }) =>
    p.topic.endsWith('/cm/cm-a/state') && p.payload.length > 0 && (JSON.parse(p.payload.toString('utf8')) as { online?: unknown }).online === false;
  t.true(published.some(offline), 'cm-a\'s will (its signed offline) was published and checked');
  t.log(`published on ${[...pubChannels].join(', ')}; subscribed to ${[...subChannels].join(', ')}; ${published.length} messages`);
});
