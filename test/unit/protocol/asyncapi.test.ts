/**
 * asyncapi.yaml: parses under @asyncapi/parser without errors, equals what
 * the generator writes from the code now, and every topic the Topics builders
 * make is one of its channels (the live-traffic check is
 * test/integration/asyncapi-coverage.test.ts).
 */
import { readFileSync } from 'node:fs';
import { Parser } from '@asyncapi/parser';
import test from 'ava';
import { ASYNCAPI_PATH, asyncapiText, channelSchemas } from '../../../src/protocol/asyncapi-gen.js';
import { topics, type Topics } from '../../../src/protocol/topics.js';
import { channelMatcher } from '../../helpers/asyncapi-match.js';

/** Spectral's DiagnosticSeverity: 0 error, 1 warning, 2 information, 3 hint. */
const ERROR = 0;

test('asyncapi.yaml parses with @asyncapi/parser: no diagnostics of severity error', async (t) => {
  const { document, diagnostics } = await new Parser().parse(readFileSync(ASYNCAPI_PATH, 'utf8'));
  for (const d of diagnostics.filter((x) => x.severity !== ERROR)) t.log(`severity ${d.severity} ${d.code}: ${d.message} at ${d.path.join('.')}`);
  const errors = diagnostics.filter((d) => d.severity === ERROR).map((d) => `${d.code}: ${d.message} at ${d.path.join('.')}`);
  t.deepEqual(errors, []);
  t.truthy(document);
  t.is(document?.version(), '3.0.0');
  // Every channel has its messages, every send/receive its MQTT qos and retain.
  t.is(document?.channels().length, channelSchemas().length);
  for (const op of document?.operations().all() ?? []) {
    const mqtt = op.bindings().get('mqtt')?.value() as { qos?: number; retain?: boolean } | undefined;
    t.true(mqtt?.qos === 0 || mqtt?.qos === 1, `${op.id()} has qos`);
    t.is(typeof mqtt?.retain, 'boolean', `${op.id()} has retain`);
    t.true(op.messages().length > 0, `${op.id()} has messages`);
  }
});

test('the parser refuses a broken document (the parse check can fail)', async (t) => {
  const broken = (await asyncapiText()).replace('$ref: "#/components/schemas/Keepalive"', '$ref: "#/components/schemas/Nope"');
  const { diagnostics } = await new Parser().parse(broken);
  t.true(diagnostics.some((d) => d.severity === ERROR));
});

test('the committed asyncapi.yaml is what `npm run schemas` generates from the code now', async (t) => {
  t.is(readFileSync(ASYNCAPI_PATH, 'utf8'), await asyncapiText(), 'asyncapi.yaml is stale: run `npm run schemas` and commit it');
});

test('every topic and filter the Topics builders make is a channel address of asyncapi.yaml', (t) => {
  const match = channelMatcher(channelSchemas());
  for (const prefix of ['ipphone/v1']) {
    const b: Topics = topics(prefix);
    const made: string[] = [];
    for (const [key, v] of Object.entries(b)) {
      if (key === 'idOf') continue;
      if (typeof v === 'string') made.push(v);
      else if (v.length === 2) made.push((v as (a: string, b: string) => string)('cm-a', 'p-1'));
      else made.push((v as (a: string) => string)(key.startsWith('cm') ? 'cm-a' : 'p-1'));
    }
    t.true(made.length >= 14, `builders found: ${made.length}`);
    for (const topic of made) t.truthy(match(topic, { filter: true }), `${topic} has a channel`);
  }
  t.is(match('ipphone/v1/cm/cm-a/nonsense'), undefined, 'an unknown topic has none');
  t.is(match('ipphone/v1/#', { filter: true }), undefined, 'a # filter is no channel');
});
