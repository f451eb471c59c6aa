/**
 * The services pages a phone shows, as Cisco IP Phone XML objects
 * (`CiscoIPPhoneMenu`, `CiscoIPPhoneDirectory`, `CiscoIPPhoneText`). Pure
 * string builders; every text and URL is XML-escaped.
 */

/** Escape `& < > " '` for XML text and attribute values. */
export function xmlEscape(s: string): string {
  return s.replace(/[&<>"']/g, (c) => {
    switch (c) {
      case '&':
        return '&amp;';
      case '<':
        return '&lt;';
      case '>':
        return '&gt;';
      case '"':
        return '&quot;';
      default:
        return '&apos;';
    }
  });
}

const XML_DECL = '<?xml version="1.0" encoding="UTF-8"?>\n';

export interface PageContext {
  cmId: string;
  /** The requesting phone's id (already validated). */
  phone: string;
  /** Absolute URL of `/services` on this CM, e.g. `http://127.0.0.1:8081/services`. */
  servicesUrl: string;
}

/** One directory entry. */
export interface DirectoryEntry {
  name: string;
  telephone: string;
}

function link(base: string, sub: string, phone: string): string {
  return `${base.replace(/\/+$/, '')}/${sub}?phone=${encodeURIComponent(phone)}`;
}

/** The top-level menu (`GET /services?phone=ID`). Its Title names the CM. */
export function servicesMenu(ctx: PageContext): string {
  const items: Array<[string, string]> = [
    ['Directory', link(ctx.servicesUrl, 'directory', ctx.phone)],
    ['Status', link(ctx.servicesUrl, 'status', ctx.phone)],
  ];
  return (
    XML_DECL +
    '<CiscoIPPhoneMenu>\n' +
    `<Title>${xmlEscape(`Services — ${ctx.cmId}`)}</Title>\n` +
    `<Prompt>${xmlEscape(`Phone ${ctx.phone}: choose a service`)}</Prompt>\n` +
    items.map(([name, url]) => `<MenuItem><Name>${xmlEscape(name)}</Name><URL>${xmlEscape(url)}</URL></MenuItem>\n`).join('') +
    '</CiscoIPPhoneMenu>\n'
  );
}

/** The directory (`GET /services/directory?phone=ID`). */
export function directoryPage(ctx: PageContext, entries: readonly DirectoryEntry[]): string {
  return (
    XML_DECL +
    '<CiscoIPPhoneDirectory>\n' +
    `<Title>${xmlEscape(`Directory — ${ctx.cmId}`)}</Title>\n` +
    `<Prompt>${xmlEscape(entries.length === 0 ? 'No entries' : 'Select an entry')}</Prompt>\n` +
    entries
      .map((e) => `<DirectoryEntry><Name>${xmlEscape(e.name)}</Name><Telephone>${xmlEscape(e.telephone)}</Telephone></DirectoryEntry>\n`)
      .join('') +
    '</CiscoIPPhoneDirectory>\n'
  );
}

/** The status text (`GET /services/status?phone=ID`): the CM id and the phones homed to it. */
export function statusPage(ctx: PageContext, phonesHomed: number): string {
  const text = `Call manager ${ctx.cmId}\nPhones homed: ${phonesHomed}\nThis phone: ${ctx.phone}`;
  return (
    XML_DECL +
    '<CiscoIPPhoneText>\n' +
    `<Title>${xmlEscape(`Status — ${ctx.cmId}`)}</Title>\n` +
    `<Prompt>${xmlEscape('Call manager status')}</Prompt>\n` +
    `<Text>${xmlEscape(text)}</Text>\n` +
    '</CiscoIPPhoneText>\n'
  );
}
