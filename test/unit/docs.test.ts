/**
 * docs/ cannot silently drift from the code (issue 12): every topic the code builds
 * (src/protocol/topics.ts), every field of the shipped JSON Schemas (schema/*.json, recursively),
 * every HTTP path the call manager serves and every /metrics family must appear in docs/.
 * Sources of truth are the code and the generated schemas, read as they are, so a new topic,
 * field, path or metric fails here until it is written down.
 */
import test from 'ava';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { topics, DEFAULT_PREFIX } from '../../src/protocol/topics.js';

const ROOT = join(import.meta.dirname, '../..');
const DOCS = join(ROOT, 'docs');
const docFiles = readdirSync(DOCS).filter((f) => f.endsWith('.md'));
const docs = docFiles.map((f) => readFileSync(join(DOCS, f), 'utf8')).join('\n');
/** Every `code span` of docs/, for "appears as a name" checks. */
const spans = [...docs.matchAll(/`([^`\n]+)`/g)].map((m) => m[1]!);

test('docs/ has the index and the pages it links', (t) => {
  const index = readFileSync(join(DOCS, 'README.md'), 'utf8');
  for (const f of docFiles.filter((f) => f !== 'README.md')) t.true(index.includes(`](${f})`), `docs/README.md links ${f}`);
  for (const m of index.matchAll(/\]\(([a-z-]+\.md)\)/g)) t.true(docFiles.includes(m[1]!), `docs/${m[1]} exists`);
});

test('every topic of src/protocol/topics.ts is in docs/ (P = prefix, {cmId}, {phoneId})', (t) => {
  const tp = topics(DEFAULT_PREFIX);
  const asDoc = (topic: string): string => topic.replace(DEFAULT_PREFIX, 'P').replace(/CMID/g, '{cmId}').replace(/PHONEID/g, '{phoneId}');
  const built: string[] = [];
  for (const [name, v] of Object.entries(tp)) {
    if (name === 'idOf') continue;
    if (typeof v === 'string') built.push(v);
    else if (name.startsWith('cm')) built.push((v as (a: string, b: string) => string)('CMID', 'PHONEID'));
    else built.push((v as (a: string) => string)('PHONEID'));
  }
  t.true(built.length >= 14, `topics found: ${built.length}`);
  for (const topic of built) t.true(docs.includes(`\`${asDoc(topic)}\``), `docs/ names ${asDoc(topic)}`);
  t.true(docs.includes(`\`${DEFAULT_PREFIX}\``), 'the default prefix');
});

/** Property paths of a JSON Schema: `a.b`, with `[]` after arrays (`pointers[].id`). */
function schemaPaths(schema: unknown): { path: string }[] {
  const out: { path: string }[] = [];
  const walk = (node: unknown, prefix: string): void => {
    if (Array.isArray(node)) {
      for (const n of node) walk(n, prefix);
      return;
    }
    if (typeof node !== 'object' || node === null) return;
    const o = node as Record<string, unknown>;
    if (typeof o.properties === 'object' && o.properties !== null) {
      for (const [k, v] of Object.entries(o.properties)) {
        const path = prefix + k;
        out.push({ path });
        walk(v, `${path}.`);
      }
    }
    if (o.items !== undefined) walk(o.items, prefix.replace(/\.$/, '[].'));
    for (const k of ['anyOf', 'oneOf', 'allOf']) if (o[k] !== undefined) walk(o[k], prefix);
  };
  walk(schema, '');
  return out;
}

for (const file of readdirSync(join(ROOT, 'schema')).filter((f) => f.endsWith('.json'))) {
  test(`every field of schema/${file} is in docs/`, (t) => {
    const paths = schemaPaths(JSON.parse(readFileSync(join(ROOT, 'schema', file), 'utf8')));
    t.true(paths.length > 5, `fields found: ${paths.length}`);
    const named = (name: string): boolean => spans.some((s) => new RegExp(`(^|[^A-Za-z0-9])${name.replace(/[.[\]]/g, '\\$&')}($|[^A-Za-z0-9])`).test(s));
    for (const p of paths) {
      // The full path as (part of) a code span: `keepalive.intervalMs`, `pointers[].sip`, `keypad.rows[].chip`.
      t.true(named(p.path), `docs/ names ${p.path} (schema/${file})`);
    }
  });
}

test('every HTTP path the call manager serves is in docs/http.md', (t) => {
  const http = readFileSync(join(DOCS, 'http.md'), 'utf8');
  const sources = ['http-server.ts', 'console.ts'].map((f) => readFileSync(join(ROOT, 'src/callmanager', f), 'utf8')).join('\n');
  const paths = new Set([...sources.matchAll(/path [!=]== '(\/[^']*)'/g)].map((m) => m[1]!));
  for (const p of ['/', '/healthz', '/metrics', '/services', '/console/events', '/console/phone']) t.true(paths.has(p), `found ${p} in the code`);
  for (const p of paths) t.true(new RegExp(`\`(GET|POST) ${p.replace(/[/]/g, '\\/')}[?\`]`).test(http), `docs/http.md has GET or POST ${p}`);
});

test('every /metrics family is in docs/http.md', (t) => {
  const http = readFileSync(join(DOCS, 'http.md'), 'utf8');
  const names = [...readFileSync(join(ROOT, 'src/callmanager/metrics.ts'), 'utf8').matchAll(/family\('(ipphone_[a-z_]+)'/g)].map((m) => m[1]!);
  t.true(names.length >= 10, `families found: ${names.length}`);
  for (const n of names) t.true(http.includes(`\`${n}`), `docs/http.md names ${n}`);
});

test('every rehome and pointer-list reason of the code is in docs/mqtt.md', async (t) => {
  const { REHOME_REASONS, POINTER_REASONS } = await import('../../src/protocol/types.js');
  const mqtt = readFileSync(join(DOCS, 'mqtt.md'), 'utf8');
  for (const r of [...REHOME_REASONS, ...POINTER_REASONS]) t.true(mqtt.includes(`\`${r}\``), `docs/mqtt.md names ${r}`);
});
