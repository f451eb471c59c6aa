/**
 * fast-check arbitraries for hostile-input tests: arbitrary bytes, arbitrary
 * JSON, valid payloads of every inbound kind and single-point mutations of
 * them, deep nesting and oversized payloads. Shared by the unit properties
 * (test/unit/hostile) and the live-agent test (test/integration/hostile-agent).
 */
import fc from 'fast-check';
import type { Pointer } from '../../src/protocol/types.js';

/** Arbitrary bytes, up to 2 KiB. */
export const anyBytes = fc.uint8Array({ maxLength: 2048 }).map((u) => Buffer.from(u.buffer, u.byteOffset, u.byteLength));

/** Any JSON value (small and shallow enough for 10,000 runs), as UTF-8 bytes. */
export const anyJson = fc.jsonValue({ maxDepth: 4 });
export const anyJsonBytes = anyJson.map((v) => Buffer.from(JSON.stringify(v) ?? 'null', 'utf8'));

/** Values that are awkward for a typed field: wrong types, edge numbers, huge strings, nesting. */
export const weirdValue: fc.Arbitrary<unknown> = fc.oneof(
  fc.constantFrom(null, true, false, 0, -1, -0.5, 1.5, 2 ** 53, -(2 ** 53), 1e308, -1e308, '', ' ', '0', 'true', 'null', '__proto__', [], {}, [[[]]]),
  fc.string({ maxLength: 80 }),
  fc.integer(),
  fc.double(),
  anyJson,
  fc.integer({ min: 1, max: 200 }).map((d) => nest(d, 1)),
  fc.integer({ min: 64, max: 4096 }).map((n) => 'x'.repeat(n)),
);

/** `value` wrapped in `depth` levels of alternating arrays and objects. */
export function nest(depth: number, value: unknown): unknown {
  let v = value;
  for (let i = 0; i < depth; i++) v = i % 2 === 0 ? [v] : { a: v };
  return v;
}

/** JSON text nested `depth` deep (arrays or objects), built as text so no parser recursion is needed to make it. */
export function deepJsonText(depth: number, kind: 'array' | 'object' | 'mixed'): string {
  if (kind === 'array') return '['.repeat(depth) + ']'.repeat(depth);
  if (kind === 'object') return '{"a":'.repeat(depth) + '1' + '}'.repeat(depth);
  // An object at the top (so the "is it an object" check passes) with deep arrays inside.
  return '{"phone":' + '['.repeat(depth) + ']'.repeat(depth) + '}';
}

/** Deeply nested JSON text, depth 1 … 100,000, as bytes. */
export const deepJsonBytes = fc
  .tuple(
    // Mostly shallow enough to pass the size check (so the depth check is what refuses), some up to 100,000.
    fc.oneof({ arbitrary: fc.integer({ min: 1, max: 13_000 }), weight: 3 }, { arbitrary: fc.integer({ min: 13_000, max: 100_000 }), weight: 1 }),
    fc.constantFrom('array' as const, 'object' as const, 'mixed' as const),
  )
  .map(([d, k]) => Buffer.from(deepJsonText(d, k), 'utf8'));

/** Payloads over 64 KiB: a valid-looking object with a huge string, or raw filler. */
export const hugeBytes = fc
  .tuple(fc.integer({ min: 65_537 - 40, max: 100_000 }), fc.constantFrom('string', 'array', 'raw'))
  .map(([n, how]) => {
    if (how === 'string') return Buffer.from(JSON.stringify({ phone: 'p1', seq: 1, pointersVersion: 0, busy: false, pad: 'x'.repeat(n) }), 'utf8');
    if (how === 'array') return Buffer.from(`{"list":[${'1,'.repeat(Math.floor(n / 2))}1]}`, 'utf8');
    return Buffer.alloc(n + 40, 0x7b);
  });

/** A valid call-manager id. */
export const cmId = fc.stringMatching(/^[A-Za-z0-9._-]{1,12}$/);

/** A valid pointer with id `id`. */
export function pointer(id: string, port = 1883): Pointer {
  return { id, broker: `mqtt://127.0.0.1:${port}`, services: `http://127.0.0.1:8080/services/${id}` };
}

/** A valid pointer list (1–16 unique ids, brokers drawn from `ports`). */
export function pointerList(ports: readonly number[] = [1883, 1884, 1885]): fc.Arbitrary<Pointer[]> {
  return fc
    .uniqueArray(fc.constantFrom('A', 'B', 'C', 'D', 'E', 'F', 'cm-1', 'cm-2'), { minLength: 1, maxLength: 8 })
    .chain((ids) => fc.tuple(fc.constant(ids), fc.array(fc.constantFrom(...ports), { minLength: ids.length, maxLength: ids.length })))
    .map(([ids, ps]) => ids.map((id, i) => pointer(id, ps[i])));
}

/** One top-level edit of a valid object. */
export type Mutation =
  | { kind: 'replace'; field: string; value: unknown }
  | { kind: 'delete'; field: string }
  | { kind: 'add'; field: string; value: unknown }
  | { kind: 'nest'; field: string; depth: number };

/** Apply a mutation to a copy of `obj`; `field` indexes into its keys (mod length) unless it is a new name. */
export function applyMutation(obj: Record<string, unknown>, m: Mutation): Record<string, unknown> {
  const out: Record<string, unknown> = structuredClone(obj);
  const keys = Object.keys(out);
  const pick = (f: string): string => (keys.includes(f) || keys.length === 0 ? f : keys[Math.abs(hash(f)) % keys.length]!);
  switch (m.kind) {
    case 'replace':
      out[pick(m.field)] = m.value;
      break;
    case 'delete':
      delete out[pick(m.field)];
      break;
    case 'add':
      // defineProperty: a field named `__proto__` is an own field, as JSON.parse makes it.
      Object.defineProperty(out, m.field, { value: m.value, enumerable: true, writable: true, configurable: true });
      break;
    case 'nest': {
      const f = pick(m.field);
      out[f] = nest(m.depth, out[f]);
      break;
    }
  }
  return out;
}

function hash(s: string): number {
  let h = 0;
  for (let i = 0; i < s.length; i++) h = (Math.imul(h, 31) + s.charCodeAt(i)) | 0;
  return h;
}

export const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('replace' as const), field: fc.string({ maxLength: 8 }), value: weirdValue }),
  fc.record({ kind: fc.constant('delete' as const), field: fc.string({ maxLength: 8 }) }),
  fc.record({ kind: fc.constant('add' as const), field: fc.oneof(fc.string({ maxLength: 8 }), fc.constantFrom('__proto__', 'constructor', 'prototype')), value: weirdValue }),
  fc.record({ kind: fc.constant('nest' as const), field: fc.string({ maxLength: 8 }), depth: fc.integer({ min: 1, max: 40 }) }),
);

/** Mutate `obj` at a random depth: the mutation applies to the object found by following `path` (plain objects only). */
export function mutateDeep(obj: Record<string, unknown>, path: readonly string[], m: Mutation): Record<string, unknown> {
  if (path.length === 0) return applyMutation(obj, m);
  const [head, ...rest] = path;
  const child = obj[head!];
  if (typeof child !== 'object' || child === null || Array.isArray(child)) return applyMutation(obj, m);
  return { ...obj, [head!]: mutateDeep(child as Record<string, unknown>, rest, m) };
}

/** `valid` objects, each mutated once at a random section, as objects. */
export function mutatedObject(valid: readonly Record<string, unknown>[], paths: readonly (readonly string[])[] = [[]]): fc.Arbitrary<Record<string, unknown>> {
  return fc.tuple(fc.constantFrom(...valid), fc.constantFrom(...paths), mutation).map(([v, p, m]) => mutateDeep(v, p, m));
}

/** `valid` objects mutated once, as bytes (`__proto__` fields survive JSON.stringify since they are own fields). */
export function mutatedBytes(valid: readonly Record<string, unknown>[]): fc.Arbitrary<Buffer> {
  return mutatedObject(valid).map((o) => Buffer.from(JSON.stringify(o), 'utf8'));
}

/** Every hostile kind at once, for tests that want a mix. */
export function hostileBytes(valid: readonly Record<string, unknown>[]): fc.Arbitrary<Buffer> {
  return fc.oneof(anyBytes, anyJsonBytes, mutatedBytes(valid), deepJsonBytes, hugeBytes);
}

/** Plain-object check for contract assertions. */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * A canonical text of a JSON-like value, built without recursion (so it works
 * on 100,000-deep values where JSON.stringify and structuredClone overflow):
 * to check that a function left its input unchanged.
 */
export function fingerprint(value: unknown): string {
  const out: string[] = [];
  const stack: unknown[] = [value];
  const CLOSE = Symbol('close');
  while (stack.length > 0) {
    const v = stack.pop();
    if (v === CLOSE) {
      out.push(')');
      continue;
    }
    if (typeof v !== 'object' || v === null) {
      out.push(typeof v === 'string' ? JSON.stringify(v) : String(v), ',');
      continue;
    }
    out.push(Array.isArray(v) ? '[(' : '{(');
    stack.push(CLOSE);
    const entries = Object.entries(v);
    for (let i = entries.length - 1; i >= 0; i--) {
      const [k, child] = entries[i]!;
      stack.push(child);
      if (!Array.isArray(v)) stack.push(`key:${k}`);
    }
  }
  return out.join('');
}
