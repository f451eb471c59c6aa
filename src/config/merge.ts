import { IpphoneError } from '../lib/errors.js';

/**
 * Merge a config patch (the `config` of a signed config change) over a
 * config: plain objects merge key by key, all the way down; arrays and
 * scalars in the patch replace; `null` in the patch sets null; a key absent
 * (or `undefined`) in the patch keeps the base value. Neither input is
 * changed and the result shares no objects with them. The result is
 * untyped on purpose: a patch may put anything anywhere, so validate it
 * (e.g. `validateAgentConfig`) before use.
 *
 * Values a validator only derived from others (see {@link markDerived}) are
 * left out of the result, so validating it derives them again from the merged
 * values: an ack timeout defaulted to 15 % of the file's interval must follow
 * a remote interval, not be kept as if someone had written it down.
 *
 * Throws CONFIG_INVALID when either input has a `__proto__`, `constructor` or
 * `prototype` key at any depth (JSON.parse makes `__proto__` an own key; a
 * merge that followed it would pollute prototypes).
 */
export function mergeConfig(base: Readonly<Record<string, unknown>>, patch: Readonly<Record<string, unknown>>): Record<string, unknown> {
  return mergeObjects(base, patch, '');
}

const FORBIDDEN = new Set(['__proto__', 'constructor', 'prototype']);

/** Non-enumerable marker: the keys of an object that a validator derived (defaults computed from other fields). */
const DERIVED = Symbol('ipphone.derivedKeys');

/**
 * Mark `keys` of `obj` as derived by a validator rather than given: a merge
 * over `obj` leaves them out. The mark is a non-enumerable symbol, invisible
 * to JSON and to `Object.keys`, so a marked config serialises as before.
 */
export function markDerived(obj: object, keys: readonly string[]): void {
  Object.defineProperty(obj, DERIVED, { value: new Set(keys), enumerable: false, configurable: true });
}

function derivedKeys(v: object): ReadonlySet<string> | undefined {
  return (v as { [DERIVED]?: Set<string> })[DERIVED];
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return false;
  const proto: unknown = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** A deep copy of JSON-like data; refuses forbidden keys (in the base too: assigning one would set a prototype). */
function copy(v: unknown, path: string): unknown {
  if (Array.isArray(v)) return v.map((x, i) => copy(x, `${path}/${i}`));
  if (isPlainObject(v)) {
    const out: Record<string, unknown> = {};
    const derived = derivedKeys(v);
    for (const k of Object.keys(v)) {
      refuse(k, path);
      if (derived?.has(k)) continue;
      out[k] = copy(v[k], `${path}/${k}`);
    }
    return out;
  }
  return v;
}

function refuse(key: string, path: string): void {
  if (FORBIDDEN.has(key)) {
    const at = path === '' ? key : `${path.slice(1)}/${key}`;
    throw new IpphoneError(`${at}: key ${JSON.stringify(key)} is not allowed in a config`, 'CONFIG_INVALID', { key });
  }
}

function mergeObjects(base: Readonly<Record<string, unknown>>, patch: Readonly<Record<string, unknown>>, path: string): Record<string, unknown> {
  if (!isPlainObject(patch)) throw new IpphoneError(`${path.slice(1) || '(root)'}: a config patch must be an object`, 'CONFIG_INVALID');
  // The result is built fresh, so a refusal part-way leaves nothing half-merged.
  const out = copy(base, path) as Record<string, unknown>;
  for (const k of Object.keys(patch)) {
    refuse(k, path);
    const p = patch[k];
    if (p === undefined) continue;
    const b = out[k];
    out[k] = isPlainObject(p) && isPlainObject(b) ? mergeObjects(b, p, `${path}/${k}`) : copy(p, `${path}/${k}`);
  }
  return out;
}
