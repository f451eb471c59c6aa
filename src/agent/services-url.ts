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
 * A link is *beside* a base when, on the same origin, its path starts with the
 * base's directory: the base's path up to and including its last `/` (RFC 3986
 * §5.2.3, the prefix a relative reference on the base page is merged with). A
 * services URL is often a page (CUCM: `/ccmcip/getservicesmenu.jsp`) whose menu
 * links are its siblings (`/ccmcip/xmldirectory.jsp`); those count as on that
 * server too, and map to the same place beside another base: what follows the
 * directory is put after the other base's directory. So for `/services` (no
 * trailing `/`) the directory is `/` and `/x` is beside it, while `/services/x`
 * is under it; a base ending in `/` is its own directory, and beside adds
 * nothing to under.
 *
 * Under is the rule tried first: a link under any pointer's base belongs to
 * it (the longest base path wins), even when it is beside another's; only a
 * link under none is matched beside (the longest directory wins). A link that
 * is both under and beside one base (`/services/x` for `/services`) is mapped
 * as under: `/x` after the other base, not `services/x` in its directory.
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
 * The base's directory: its path up to and including the last `/` (RFC 3986
 * §5.2.3), `/ccmcip/` for `/ccmcip/getservicesmenu.jsp`, `/` for `/services`.
 */
function baseDir(base: URL): string {
  return base.pathname.slice(0, base.pathname.lastIndexOf('/') + 1);
}

/**
 * What follows `base`'s directory in `url` — the rest of the path (no leading
 * `/`; `''` for the directory itself) and the query — or null when `url` is
 * not beside `base` (other origin, outside the directory, or not http(s)).
 */
export function besideBase(url: string, base: string): string | null {
  const u = parse(url);
  const b = parse(base);
  if (u === null || b === null || u.origin !== b.origin) return null;
  const dir = baseDir(b);
  if (!u.pathname.startsWith(dir)) return null;
  return u.pathname.slice(dir.length) + u.search;
}

/** `rest` (from {@link besideBase}) put beside `base`: the same sibling page on another services server. */
export function besideOn(rest: string, base: string): string {
  const b = parse(base);
  if (b === null) throw new TypeError(`not an http(s) URL: ${base}`);
  return `${b.origin}${baseDir(b)}${rest}`;
}

/** Where a link sits relative to its owner's services URL, as {@link ownerOf} found it. */
export interface ServicesPlace {
  /** `under` the services URL, or `beside` it in its directory. */
  how: 'under' | 'beside';
  /** What follows the base ({@link underBase}) or its directory ({@link besideBase}). */
  rest: string;
}

/** The page at `place` on the services server whose URL is `base`. */
export function placeOn(place: ServicesPlace, base: string): string {
  return place.how === 'under' ? onBase(place.rest, base) : besideOn(place.rest, base);
}

/**
 * The pointer whose services server holds `url`, and where: under a base
 * first (the longest base path wins, then the earlier pointer), else beside
 * one (the longest directory wins, then the earlier pointer); null for an
 * external link.
 */
export function ownerOf(url: string, list: readonly Pointer[]): ({ pointer: Pointer } & ServicesPlace) | null {
  let best: { pointer: Pointer; rest: string; len: number } | null = null;
  for (const p of list) {
    const rest = underBase(url, p.services);
    if (rest === null) continue;
    const len = basePath(parse(p.services)!).length;
    if (best === null || len > best.len) best = { pointer: p, rest, len };
  }
  if (best !== null) return { pointer: best.pointer, how: 'under', rest: best.rest };
  for (const p of list) {
    const rest = besideBase(url, p.services);
    if (rest === null) continue;
    const len = baseDir(parse(p.services)!).length;
    if (best === null || len > best.len) best = { pointer: p, rest, len };
  }
  return best === null ? null : { pointer: best.pointer, how: 'beside', rest: best.rest };
}
