import { readFileSync } from 'node:fs';
import type { TSchema } from '@sinclair/typebox';
import { ValueErrorType, type ValueError } from '@sinclair/typebox/errors';
import { Value } from '@sinclair/typebox/value';
import { errorMessage, IpphoneError } from '../lib/errors.js';
import { parsePublicKey } from '../protocol/envelope.js';
import { show } from '../protocol/pointers.js';

/**
 * Config problems in words: TypeBox's `Value.Errors` turned into one
 * `path: what is wrong (got …)` line per offending field, so an operator
 * sees every problem of a file at once, not only the first.
 */

/** Same rule as `isValidId` in protocol/topics.ts, spelled for JSON Schema. */
export const ID_PATTERN = '^[A-Za-z0-9._-]{1,64}$';
/** An MQTT topic prefix: no wildcards. */
export const PREFIX_PATTERN = '^[^+#]+$';

const PATTERN_WORDS: Record<string, string> = {
  [ID_PATTERN]: 'an id of 1 to 64 characters from A-Z a-z 0-9 . _ -',
  [PREFIX_PATTERN]: 'a topic prefix without + or #',
};

/** Pino levels, including `silent`. */
export const LOG_LEVELS = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

type Loose = Record<string, unknown>;

function range(s: Loose): string {
  const min = typeof s.minimum === 'number' ? s.minimum : undefined;
  const max = typeof s.maximum === 'number' ? s.maximum : undefined;
  if (min !== undefined && max !== undefined) return ` from ${min} to ${max}`;
  if (min !== undefined) return ` ≥ ${min}`;
  if (max !== undefined) return ` ≤ ${max}`;
  if (s.exclusiveMinimum === 0) return ' > 0';
  return '';
}

/** What a schema accepts, in words ("an integer from 1 to 100", "a string or null", …). */
export function describe(schema: TSchema): string {
  const s = schema as Loose;
  if (Array.isArray(s.anyOf)) {
    const parts = (s.anyOf as TSchema[]).map(describe);
    return parts.length <= 2 ? parts.join(' or ') : `one of ${parts.slice(0, -1).join(', ')} or ${parts.at(-1) ?? ''}`;
  }
  if ('const' in s) return JSON.stringify(s.const);
  switch (s.type) {
    case 'integer':
      return `an integer${range(s)}`;
    case 'number':
      return `a number${range(s)}`;
    case 'string':
      if (typeof s.pattern === 'string') return PATTERN_WORDS[s.pattern] ?? `a string matching ${s.pattern}`;
      return s.minLength === 1 ? 'a non-empty string' : 'a string';
    case 'boolean':
      return 'true or false';
    case 'null':
      return 'null';
    case 'array':
      return 'an array';
    case 'object':
      return 'an object';
    default:
      return 'a valid value';
  }
}

/** `/a/0/b` → `a/0/b`; the root is `(root)`. */
export function fieldPath(pointer: string): string {
  if (pointer === '') return '(root)';
  return pointer.slice(1).replace(/~1/g, '/').replace(/~0/g, '~');
}

function words(e: ValueError): string {
  const path = fieldPath(e.path);
  switch (e.type) {
    case ValueErrorType.ObjectRequiredProperty:
      return `${path}: is required`;
    case ValueErrorType.ObjectAdditionalProperties:
      return `${path}: unknown field (typo?)`;
    case ValueErrorType.ArrayMinItems:
    case ValueErrorType.ArrayMaxItems: {
      const s = e.schema as Loose;
      return `${path}: must hold ${String(s.minItems ?? 0)} to ${String(s.maxItems ?? 'any number of')} entries (got ${Array.isArray(e.value) ? e.value.length : show(e.value)})`;
    }
    default:
      return `${path}: must be ${describe(e.schema)} (got ${show(e.value)})`;
  }
}

/**
 * Every schema problem of `value`, one line per field (the first error
 * TypeBox reports for a path wins). `skip(pointer)` drops errors a more
 * specific check reports itself (e.g. pointer lists).
 */
export function schemaProblems(schema: TSchema, value: unknown, skip: (pointer: string) => boolean = () => false): string[] {
  const seen = new Set<string>();
  const out: string[] = [];
  for (const e of Value.Errors(schema, value)) {
    if (seen.has(e.path) || skip(e.path)) continue;
    seen.add(e.path);
    out.push(words(e));
  }
  return out;
}

/** Deepest nesting a config or board file may have (real ones nest 4 deep; the root object is 0). */
export const MAX_CONFIG_DEPTH = 32;

/**
 * What TypeBox cannot be handed: nesting deeper than `maxDepth` (its clone and
 * checks recurse, so a file a few thousand levels deep overflowed the stack
 * with a RangeError) and own `__proto__` fields (JSON.parse makes them; the
 * clone turned one into the prototype, hiding it from the unknown-field check).
 * Walks without recursion; reports at most 20 problems.
 */
export function structureProblems(raw: unknown, maxDepth = MAX_CONFIG_DEPTH): string[] {
  const problems: string[] = [];
  const stack: Array<[unknown, string, number]> = [[raw, '', 0]];
  while (stack.length > 0 && problems.length < 20) {
    const [v, path, depth] = stack.pop()!;
    if (typeof v !== 'object' || v === null) continue;
    if (depth >= maxDepth) {
      problems.push(`${path === '' ? '(root)' : path}: nests deeper than ${maxDepth} levels`);
      continue;
    }
    for (const [k, child] of Object.entries(v)) {
      const at = path === '' ? k : `${path}/${k}`;
      if (k === '__proto__') problems.push(`${at}: unknown field (a __proto__ field is never allowed)`);
      else stack.push([child, at, depth + 1]);
    }
  }
  return problems;
}

/** Read and parse a JSON file; unreadable or bad JSON comes back as a problem. */
export function readJsonFile(path: string): { ok: true; value: unknown } | { ok: false; problems: string[] } {
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (err) {
    return { ok: false, problems: [`(file): cannot read ${path}: ${(err as Error).message}`] };
  }
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch (err) {
    return { ok: false, problems: [`(file): ${path} is not valid JSON: ${(err as Error).message}`] };
  }
}

/** The CONFIG_INVALID error of a config file: every problem, one per line. */
export function configInvalid(path: string, problems: string[]): IpphoneError {
  return new IpphoneError(problems.join('\n'), 'CONFIG_INVALID', { problems, path });
}

/** Make every property of a config type required, all the way down (after defaults are filled). */
export type Defaulted<T> = T extends readonly (infer U)[]
  ? Defaulted<U>[]
  : T extends object
    ? { [K in keyof T]-?: Defaulted<T[K]> }
    : T;

/** `trust.keys` values that are not usable Ed25519 public keys, one line each (agent and call manager configs). */
export function trustKeyProblems(keys: unknown): string[] {
  if (typeof keys !== 'object' || keys === null) return [];
  const problems: string[] = [];
  for (const [kid, text] of Object.entries(keys)) {
    if (typeof text !== 'string') continue; // the schema reports it
    try {
      parsePublicKey(text);
    } catch (err) {
      problems.push(`trust/keys/${kid}: key ${show(kid)} is not a usable Ed25519 public key: ${errorMessage(err)}`);
    }
  }
  return problems;
}
