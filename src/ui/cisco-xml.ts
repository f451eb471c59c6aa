import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { IpphoneError } from '../lib/errors.js';

/**
 * Cisco IP Phone XML objects (the services pages a call manager serves) →
 * a small typed model the screen renders. Only the three objects the
 * project's call managers serve are understood: `CiscoIPPhoneMenu`
 * (and `CiscoIPPhoneIconMenu`, read as a menu), `CiscoIPPhoneText` and
 * `CiscoIPPhoneDirectory`; soft keys, icons and
 * attributes are ignored.
 *
 * Untrusted input: pages are capped at {@link MAX_PAGE_BYTES}, DTDs are
 * refused outright (an internal DTD is the only way to declare entities, and
 * fast-xml-parser 5 would expand them), and entity decoding is our own: the
 * five predefined XML entities and numeric character references, nothing else.
 */

/** Largest page accepted, in UTF-8 bytes (64 KiB). */
export const MAX_PAGE_BYTES = 64 * 1024;
/** Cisco allows up to 100 `MenuItem`s; more are dropped (counted in `dropped`). */
export const MAX_MENU_ITEMS = 100;
/** Cisco allows up to 32 `DirectoryEntry`s; more are dropped (counted in `dropped`). */
export const MAX_DIRECTORY_ENTRIES = 32;

export interface MenuItem {
  name: string;
  url: string;
}

export interface DirectoryEntry {
  name: string;
  telephone: string;
}

interface Common {
  title: string;
  prompt?: string;
  /** Items or entries beyond the Cisco limit that were dropped (absent when none). */
  dropped?: number;
}

export type CiscoObject =
  | (Common & { kind: 'menu'; items: MenuItem[] })
  | (Common & { kind: 'text'; text: string })
  | (Common & { kind: 'directory'; entries: DirectoryEntry[] });

const PREDEFINED: Record<string, string> = { amp: '&', lt: '<', gt: '>', quot: '"', apos: "'" };

/** `&amp;` … and `&#233;` / `&#xE9;`; anything else (`&nbsp;`, DTD names) stays as written. */
export function decodeXmlEntities(text: string): string {
  return text.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[A-Za-z]+);/g, (whole, ref: string) => {
    if (ref.startsWith('#')) {
      const code = ref[1] === 'x' ? Number.parseInt(ref.slice(2), 16) : Number.parseInt(ref.slice(1), 10);
      return code > 0 && code <= 0x10ffff && !(code >= 0xd800 && code <= 0xdfff) ? String.fromCodePoint(code) : whole;
    }
    return PREDEFINED[ref] ?? whole;
  });
}

/** Entity decoder for fast-xml-parser: ours, and deaf to entities a document declares. */
const entityDecoder = {
  setExternalEntities: () => {},
  addInputEntities: () => {},
  reset: () => {},
  setXmlVersion: () => {},
  decode: decodeXmlEntities,
};

const LISTS = new Set(['MenuItem', 'DirectoryEntry']);

const parser = new XMLParser({
  ignoreAttributes: true,
  parseTagValue: false,
  trimValues: true,
  ignoreDeclaration: true,
  ignorePiTags: true,
  processEntities: true,
  entityDecoder,
  isArray: (name) => LISTS.has(name),
});

type Node = Record<string, unknown>;

function invalid(message: string, context: Record<string, unknown> = {}): IpphoneError {
  return new IpphoneError(`services page: ${message}`, 'PAYLOAD_INVALID', context);
}

/** Text content of an element: a string, or the text parts of mixed content; '' when absent. */
function text(v: unknown): string {
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return v.map(text).join('');
  if (typeof v === 'object') {
    const t = (v as Node)['#text'];
    return t === undefined ? '' : text(t);
  }
  return '';
}

function node(v: unknown): Node {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Node) : {};
}

function common(root: Node): Common {
  const prompt = text(root.Prompt);
  return { title: text(root.Title), ...(prompt === '' ? {} : { prompt }) };
}

function capped<T>(list: T[], max: number, c: Common): { list: T[]; c: Common } {
  if (list.length <= max) return { list, c };
  return { list: list.slice(0, max), c: { ...c, dropped: list.length - max } };
}

/**
 * Parse one Cisco IP Phone XML object.
 * @throws IpphoneError PAYLOAD_TOO_LARGE over {@link MAX_PAGE_BYTES};
 *   PAYLOAD_INVALID for malformed XML (the parser's message, with line and
 *   column), a DTD, an unknown root element (named), or a menu item without
 *   a URL.
 */
export function parseCiscoXml(xml: string): CiscoObject {
  const bytes = Buffer.byteLength(xml, 'utf8');
  if (bytes > MAX_PAGE_BYTES) {
    throw new IpphoneError(`services page: ${bytes} bytes is over the limit of ${MAX_PAGE_BYTES}`, 'PAYLOAD_TOO_LARGE', { bytes, limit: MAX_PAGE_BYTES });
  }
  if (/<!DOCTYPE/i.test(xml)) throw invalid('a DTD (<!DOCTYPE>) is not accepted');
  const check = XMLValidator.validate(xml);
  if (check !== true) {
    const { msg, line, col } = check.err;
    const where = typeof col === 'number' ? `line ${line}, column ${col}` : `line ${line}`;
    throw invalid(`malformed XML: ${msg} (${where})`, { line, col });
  }
  let doc: Node;
  try {
    doc = parser.parse(xml) as Node;
  } catch (err) {
    throw invalid(`malformed XML: ${(err as Error).message}`);
  }
  const roots = Object.keys(doc);
  if (roots.length !== 1) throw invalid(roots.length === 0 ? 'no root element' : `more than one root element (${roots.join(', ')})`);
  const rootName = roots[0]!;
  const root = node(doc[rootName]);
  switch (rootName) {
    case 'CiscoIPPhoneMenu':
    case 'CiscoIPPhoneIconMenu': {
      const raw = Array.isArray(root.MenuItem) ? root.MenuItem : [];
      const items = raw.map((it, i): MenuItem => {
        const url = text(node(it).URL);
        if (url === '') throw invalid(`MenuItem ${i + 1} has no URL`);
        return { name: text(node(it).Name), url };
      });
      const { list, c } = capped(items, MAX_MENU_ITEMS, common(root));
      return { kind: 'menu', ...c, items: list };
    }
    case 'CiscoIPPhoneText':
      return { kind: 'text', ...common(root), text: text(root.Text) };
    case 'CiscoIPPhoneDirectory': {
      const raw = Array.isArray(root.DirectoryEntry) ? root.DirectoryEntry : [];
      const entries = raw.map((e): DirectoryEntry => ({ name: text(node(e).Name), telephone: text(node(e).Telephone) }));
      const { list, c } = capped(entries, MAX_DIRECTORY_ENTRIES, common(root));
      return { kind: 'directory', ...c, entries: list };
    }
    default:
      throw invalid(`unknown root element <${rootName}> (expected CiscoIPPhoneMenu, CiscoIPPhoneIconMenu, CiscoIPPhoneText or CiscoIPPhoneDirectory)`, { root: rootName });
  }
}
