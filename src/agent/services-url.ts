/**
 * Where a services link lives, and the same page on another call manager.
 *
 * A link is *under* a services base when scheme, host and port are the same
 * (URL origins, so `http://h` and `http://h:80` match and host case does not
 * matter) and its path is the base's path or continues it after a `/` — `/a`
 * is under `/a` and `/a/`, never under `/ab`. Paths are compared after the URL
 * parser's normalisation (dot segments resolved, case kept, `%2F` not a `/`).
 * A base's own query and fragment play no part in matching. The part after
 * the base — the rest of the path and the link's query — carries over to
 * another base unchanged; a fragment is dropped (a phone never sends it).
 *
 * Pure functions, no I/O.
 */
import type { Pointer } from '../protocol/types.js';

function parse(url: string): URL | null {
  try {
    const u = new URL(url);
    return u.protocol === 'http:' || u.protocol === 'https:' ? u : null;
  } catch {
    return null;
  }
}

/** A base's path without trailing slashes (`''` for the root). */
function basePath(base: URL): string {
  return base.pathname.replace(/\/+$/, '');
}

/**
 * What follows `base` in `url` — the rest of the path (`''` or starting with
 * `/`) and the query (`''` or starting with `?`) — or null when `url` is not
 * under `base` (or either is not an http(s) URL).
 */
export function underBase(url: string, base: string): string | null {
  const u = parse(url);
  const b = parse(base);
  if (u === null || b === null || u.origin !== b.origin) return null;
  const bp = basePath(b);
  const p = u.pathname;
  if (p !== bp && !p.startsWith(`${bp}/`)) return null;
  return p.slice(bp.length) + u.search;
}

/** `rest` (from {@link underBase}) put under `base`: the same page on another services server. */
export function onBase(rest: string, base: string): string {
  const b = parse(base);
  if (b === null) throw new TypeError(`not an http(s) URL: ${base}`);
  return `${b.origin}${basePath(b)}${rest}`;
}

/**
 * The pointer whose services base `url` is under, and what follows it; null
 * for an external link. When several bases hold it, the longest base path
 * wins (the most specific server), then the earlier pointer.
 */
export function ownerOf(url: string, list: readonly Pointer[]): { pointer: Pointer; rest: string } | null {
  let best: { pointer: Pointer; rest: string; len: number } | null = null;
  for (const p of list) {
    const rest = underBase(url, p.services);
    if (rest === null) continue;
    const b = parse(p.services)!;
    const len = basePath(b).length;
    if (best === null || len > best.len) best = { pointer: p, rest, len };
  }
  return best === null ? null : { pointer: best.pointer, rest: best.rest };
}
