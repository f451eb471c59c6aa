/**
 * What the phone's screen shows, as plain rows of text. Row 0 is the status
 * row: the home call manager's id, or that there is no service.
 */

export interface ScreenModel {
  cols: number;
  rows: number;
  home: string | null;
  phase: string;
  /** Id of the pointer whose services page is shown. */
  services: string | null;
  /** The services page (Cisco IP Phone XML), if any. */
  page: string | null;
}

/** Text of the first `<Title>` of a services page, unescaped; '' when none. */
export function pageTitle(page: string | null): string {
  if (page === null) return '';
  const m = /<Title>([^<]{0,200})<\/Title>/.exec(page);
  if (!m) return '';
  return m[1]!
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&apos;/g, "'")
    .replace(/&amp;/g, '&');
}

export function renderStatusScreen(m: ScreenModel): string[] {
  const rows: string[] = [];
  if (m.home !== null) rows.push(`CM ${m.home}${m.phase === 'moving' ? ' >' : ''}`);
  else rows.push(m.phase === 'starting' ? 'Starting…' : 'No service');
  const title = pageTitle(m.page);
  if (title) rows.push(title);
  if (m.services !== null && m.services !== m.home) rows.push(`(services: ${m.services})`);
  while (rows.length < m.rows) rows.push('');
  return rows.slice(0, m.rows).map((r) => (r.length > m.cols ? r.slice(0, m.cols) : r));
}
