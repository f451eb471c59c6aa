import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import test from 'ava';
import { SCHEMA_DIR, schemaTexts, writeSchemas } from '../../../src/config/schema-gen.js';

test('the committed JSON Schema files are up to date (run: npx tsx src/config/schema-gen.ts)', (t) => {
  const texts = schemaTexts();
  t.deepEqual(Object.keys(texts).sort(), ['agent-config.schema.json', 'cm-config.schema.json']);
  for (const [name, text] of Object.entries(texts)) {
    t.is(readFileSync(join(SCHEMA_DIR, name), 'utf8'), text, `${name} is stale`);
  }
});

test('the schemas are plain JSON Schema with $schema, title and the contract’s required fields', (t) => {
  const agent = JSON.parse(schemaTexts()['agent-config.schema.json']!) as Record<string, unknown>;
  const cm = JSON.parse(schemaTexts()['cm-config.schema.json']!) as Record<string, unknown>;
  for (const doc of [agent, cm]) {
    t.regex(String(doc.$schema), /json-schema\.org/);
    t.regex(String(doc.title), /ipphone/);
    t.is(doc.type, 'object');
    t.is(doc.additionalProperties, false);
  }
  t.deepEqual(agent.required, ['phoneId', 'pointers']);
  t.deepEqual(cm.required, ['cmId', 'broker', 'group', 'signingKey', 'keyId']);
  const props = agent.properties as Record<string, { default?: unknown; properties?: Record<string, { default?: unknown }> }>;
  t.is(props.keepalive?.properties?.intervalMs?.default, 5000);
  t.is(props.board?.default, null);
});

test('writeSchemas writes the same texts', (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-schema-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  const written = writeSchemas(dir);
  t.is(written.length, 2);
  for (const [name, text] of Object.entries(schemaTexts())) t.is(readFileSync(join(dir, name), 'utf8'), text);
});
