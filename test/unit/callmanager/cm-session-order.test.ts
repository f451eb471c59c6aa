import { EventEmitter } from 'node:events';
import test from 'ava';
import mqttPacket from 'mqtt-packet';
import type { MqttClient } from 'mqtt';
import { CmSession } from '../../../src/callmanager/cm-session.js';
import { CmRun } from '../../../src/callmanager/run-state.js';
import { validateCmConfig } from '../../../src/config/cm-config.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { generateKeyPair, parsePrivateKey, signEnvelope } from '../../../src/protocol/envelope.js';
import { topics } from '../../../src/protocol/topics.js';
import { capturingLogger } from '../../helpers/log-capture.js';

/**
 * The session over a stand-in for mqtt.js's client whose `publish` encodes the
 * packet onto the same socket stream the ack frames go to, as mqtt.js does: the
 * bytes the broker would read, in the order it would read them.
 */
function setup() {
  const r = validateCmConfig({ cmId: 'cm-b', broker: 'mqtt://127.0.0.1:1883', group: [{ id: 'cm-a', sip: 'sip:a.example:5060', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8081', capacity: 100 }, { id: 'cm-b', sip: 'sip:b.example:5060', broker: 'mqtt://127.0.0.1:1883', services: 'http://127.0.0.1:8082', capacity: 100 }], signingKey: 'k.pem', keyId: 'ops-1' });
  if (!r.ok) throw new Error(r.problems.join('\n'));
  const config = r.config;
  const key = parsePrivateKey(generateKeyPair().privatePem);
  const clock = new FakeClock();
  const { log } = capturingLogger();
  const chunks: Buffer[] = [];
  let corks = 0;
  const stream = {
    writable: true,
    destroyed: false,
    writableLength: 0,
    cork: () => void corks++,
    uncork: () => void corks--,
    write: (b: Buffer) => (chunks.push(Buffer.from(b)), true),
  };
  let messageId = 0;
  const client = Object.assign(new EventEmitter(), {
    connected: true,
    disconnecting: false,
    stream,
    options: {} as Record<string, unknown>,
    subscribe: () => client,
    publish: (topic: string, payload: string, opts: { qos: 0 | 1 }) => {
      stream.write(mqttPacket.generate({ cmd: 'publish', topic, payload, qos: opts.qos, dup: false, retain: false, messageId: opts.qos > 0 ? ++messageId : undefined } as mqttPacket.IPublishPacket, { protocolVersion: 5 }));
      return client;
    },
  });
  const run = new CmRun({ cmId: 'cm-b', bdSeq: 1, sign: (b) => signEnvelope(b, key, 'ops-1'), clock, publish: () => undefined, log });
  const session = new CmSession({
    config,
    log,
    clock,
    connect: () => client as unknown as MqttClient,
    topics: topics(),
    run,
    onKeepalive: () => undefined,
    onPeerMessage: () => undefined,
    onChallenge: () => undefined,
    onConnect: () => undefined,
  });
  /** Topics of every packet written so far, in the order written. */
  const written = (): string[] => {
    const parser = mqttPacket.parser({ protocolVersion: 5 });
    const out: string[] = [];
    parser.on('packet', (p) => out.push((p as mqttPacket.IPublishPacket).topic));
    parser.parse(Buffer.concat(chunks));
    return out;
  };
  return { session, written, corks: () => corks };
}

test('a-push-goes-out-right-behind-its-own-ack: in a batch of arrivals each phone\'s list follows its ack, not the batch\'s last ack (the broker reads one connection in order)', async (t) => {
  const { session, written, corks } = setup();
  const list = JSON.stringify({ body: 'x'.repeat(500), sig: 'y'.repeat(86), kid: 'ops-1' });
  for (let i = 0; i < 5; i++) {
    session.ack(`ipphone/v1/phone/p-${i}/ack`, `{"cm":"cm-b","seq":${i}}`);
    session.pushList(`ipphone/v1/phone/p-${i}/pointers`, list);
  }
  session.ack('ipphone/v1/phone/q/ack', '{"cm":"cm-b","seq":9}');
  t.deepEqual(written(), [], 'nothing written before the end of the turn');
  await new Promise((r) => setImmediate(r));
  t.deepEqual(written(), [
    ...Array.from({ length: 5 }, (_, i) => [`ipphone/v1/phone/p-${i}/ack`, `ipphone/v1/phone/p-${i}/pointers`]).flat(),
    'ipphone/v1/phone/q/ack',
  ]);
  await new Promise((r) => process.nextTick(r));
  t.is(corks(), 0, 'the socket is uncorked again on the next tick');
});
