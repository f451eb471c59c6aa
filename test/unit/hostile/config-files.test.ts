/**
 * validateAgentConfig / validateCmConfig / validateBoard on hostile input:
 * arbitrary JSON, mutated valid files (any section), deep nesting. They
 * never throw, never change their input, and return `{ ok: true }` or
 * `{ ok: false, problems }` with a non-empty list of non-empty strings.
 */
import test from 'ava';
import fc from 'fast-check';
import { readFileSync } from 'node:fs';
import { validateAgentConfig } from '../../../src/config/agent-config.js';
import { validateCmConfig } from '../../../src/config/cm-config.js';
import { generateKeyPair } from '../../../src/protocol/envelope.js';
import { validateBoard } from '../../../src/hw/board-schema.js';
import { anyJson, fingerprint, isPlainObject, mutatedObject, nest } from '../../helpers/arbitraries.js';
import { agentExample, cmExample } from '../../helpers/contract-examples.js';

const RUNS = 10_000;
const pub = generateKeyPair().publicPem;

const AGENT: Record<string, unknown> = { ...agentExample(pub), mqtt: { ...agentExample(pub).mqtt, backoff: { baseMs: 200, maxMs: 2000 } } };
const AGENT_PATHS = [[], ['keepalive'], ['trust'], ['trust', 'keys'], ['mqtt'], ['mqtt', 'backoff'], ['log'], ['services'], ['fallback']];

const CM: Record<string, unknown> = cmExample();
const CM_PATHS = [[], ['http'], ['rebalance'], ['mqtt'], ['keepalive'], ['log']];

const boardFile = (name: string): Record<string, unknown> => JSON.parse(readFileSync(new URL(`../../../hw/boards/${name}.json`, import.meta.url), 'utf8')) as Record<string, unknown>;
const BOARDS = ['headless', 'sim', 'ref-rpi-20x4', 'ref-16x2-backpack'].map(boardFile);
const BOARD_PATHS = [[], ['display'], ['keypad'], ['hook'], ['leds'], ['leds', 'message']];

type Validate = (raw: unknown) => { ok: true } | { ok: false; problems: string[] };
const VALIDATORS: [string, Validate, Record<string, unknown>[], string[][]][] = [
  ['validateAgentConfig', validateAgentConfig, [AGENT, { phoneId: 'p', pointers: AGENT.pointers }], AGENT_PATHS],
  ['validateCmConfig', validateCmConfig, [CM], CM_PATHS],
  ['validateBoard', validateBoard, BOARDS, BOARD_PATHS],
];

/** Throw (failing the property) unless `validate(raw)` keeps its contract. */
function check(name: string, validate: Validate, raw: unknown): 'ok' | 'refused' {
  const before = fingerprint(raw);
  let r: ReturnType<Validate>;
  try {
    r = validate(raw);
  } catch (err) {
    throw new Error(`${name} threw ${(err as Error)?.constructor?.name}: ${(err as Error)?.message}`);
  }
  if (before !== fingerprint(raw)) throw new Error(`${name} changed its input`);
  if (r.ok === true) return 'ok';
  if (r.ok !== false || !Array.isArray(r.problems) || r.problems.length === 0) throw new Error(`${name} returned ${JSON.stringify(r)}`);
  for (const p of r.problems) if (typeof p !== 'string' || p.trim() === '') throw new Error(`${name} gave an empty problem: ${JSON.stringify(r.problems)}`);
  return 'refused';
}

test('control: the valid seeds pass', (t) => {
  for (const [name, validate, seeds] of VALIDATORS) for (const s of seeds) t.is(check(name, validate, s), 'ok', `${name} ${JSON.stringify(s).slice(0, 60)}`);
});

for (const [name, validate, seeds, paths] of VALIDATORS) {
  test(`${name}: arbitrary JSON values (${RUNS} runs) — never throws, ok or non-empty problems`, (t) => {
    fc.assert(
      fc.property(fc.oneof(anyJson, fc.dictionary(fc.string({ maxLength: 8 }), anyJson, { maxKeys: 6 })), (raw) => {
        check(name, validate, raw);
      }),
      { numRuns: RUNS, seed: 6_0006 },
    );
    t.pass();
  });

  test(`${name}: mutated valid files, any section (${RUNS} runs) — never throws, ok or non-empty problems`, (t) => {
    const outcomes = { ok: 0, refused: 0 };
    fc.assert(
      fc.property(mutatedObject(seeds, paths), (raw) => {
        outcomes[check(name, validate, raw)]++;
      }),
      { numRuns: RUNS, seed: 6_0007 },
    );
    t.true(outcomes.refused > 1000 && outcomes.ok > 100, JSON.stringify(outcomes));
  });

  test(`${name}: deep nesting in any field (up to 20,000 levels) is refused, not a stack overflow`, (t) => {
    fc.assert(
      fc.property(fc.constantFrom(...seeds), fc.constantFrom(...paths), fc.integer({ min: 1, max: 20_000 }), fc.string({ maxLength: 6 }), (seed, path, depth, field) => {
        let o: Record<string, unknown> = structuredClone(seed);
        const root = o;
        for (const p of path) o = isPlainObject(o[p]) ? (o[p] as Record<string, unknown>) : o;
        const keys = Object.keys(o);
        const k = keys.length > 0 ? keys[field.length % keys.length]! : field;
        o[k] = nest(depth, o[k]);
        // Refused unless the nesting went into a field that allows any depth up to the limit.
        if (check(name, validate, root) === 'ok' && depth > 32) throw new Error(`${name} accepted ${depth} levels of nesting`);
      }),
      { numRuns: 300, seed: 6_0008 },
    );
    t.pass();
  });
}

test('a `__proto__` field (own, as JSON.parse makes it) is refused as an unknown field, at the top and in sections', (t) => {
  const cases: [string, Validate, string][] = [
    ['validateAgentConfig', validateAgentConfig, `{"phoneId":"p","pointers":${JSON.stringify(AGENT.pointers)},"__proto__":{"stateDir":"/tmp/elsewhere"}}`],
    ['validateAgentConfig', validateAgentConfig, `{"phoneId":"p","pointers":${JSON.stringify(AGENT.pointers)},"trust":{"__proto__":{"requireSigned":false}}}`],
    ['validateCmConfig', validateCmConfig, JSON.stringify(CM).replace(/}$/, ',"__proto__":{"pointersVersion":7}}')],
    ['validateBoard', validateBoard, JSON.stringify(BOARDS[0]).replace(/}$/, ',"__proto__":{"description":"hidden"}}')],
  ];
  for (const [name, validate, text] of cases) {
    const r = validate(JSON.parse(text));
    t.false(r.ok, `${name} accepted ${text}`);
    if (!r.ok) t.true(r.problems.some((p) => p.includes('__proto__')), `${name}: ${r.problems.join('; ')}`);
  }
});
