/**
 * The operator console's HTML: the console page (`GET /`) and, for a request
 * without credentials, the login form in its place (console-auth.ts). Everything it needs is in
 * it — no fonts, scripts or styles from anywhere (phone networks are often
 * cut off from the internet) — and a strict Content-Security-Policy allows
 * exactly its own inline style and script by hash, and connections to this
 * origin only. The script builds the page with DOM calls and `textContent`,
 * never `innerHTML`: phone ids and reasons come from the network.
 */
import { createHash } from 'node:crypto';
import { REHOMES_MAX, REHOMES_PER_PHONE } from './console-model.js';

/** What the console's "detect ms" column means (its header's tooltip, the legend under the table; docs/http.md says the same). */
export const DETECT_MS_TITLE =
  "ms from the old home's last sign of life (the last keep-alive ack the phone had from it) to the phone's decision that it is lost: about missLimit × intervalMs when it hangs or the network drops its traffic, less than one intervalMs when it crashes or stops (its will or offline state arrives at once); it includes the quiet time before the fault";
/** What "rehome ms" means. */
export const REHOME_MS_TITLE = "ms from that decision to the new home's first keep-alive ack";

const STYLE = `
body{font:14px/1.4 system-ui,sans-serif;margin:1em;color:#222;background:#fafafa}
h1{font-size:1.3em;margin:0 0 .5em}h2{font-size:1.05em;margin:1.2em 0 .3em}
table{border-collapse:collapse;min-width:40em}td,th{border-bottom:1px solid #ddd;padding:.2em .6em;text-align:left}
th{background:#eee}.on{color:#070;font-weight:600}.off{color:#b00;font-weight:600}
meter{width:8em}#live{font-size:.85em;color:#666}#live.down{color:#b00}
.stale{color:#888;font-style:italic}tfoot td{font-weight:600;border-top:2px solid #bbb}
#summary span{margin-right:1em}.legend{font-size:.85em;color:#555;max-width:60em}
th[title]{text-decoration:underline dotted;cursor:help}
pre{background:#fff;border:1px solid #ddd;padding:.5em;max-width:60em;overflow:auto;white-space:pre-wrap}
input{font:inherit;width:16em}
form.out{float:right}.err{color:#b00;font-weight:600}
`;

const SCRIPT = `
'use strict';
(function () {
  var state = { cmId: '', members: [], totals: null, moves: [], movesQueued: 0, rehomes: [], summary: null };
  var $ = function (id) { return document.getElementById(id); };
  function el(tag, text, cls) {
    var e = document.createElement(tag);
    if (text !== undefined && text !== null) e.textContent = String(text);
    if (cls) e.className = cls;
    return e;
  }
  function row(cells) {
    var tr = document.createElement('tr');
    cells.forEach(function (c) { tr.appendChild(c instanceof Node ? wrap(c) : el('td', c)); });
    return tr;
  }
  function wrap(node) { var td = document.createElement('td'); td.appendChild(node); return td; }
  function fill(id, rows) { var b = $(id); b.replaceChildren.apply(b, rows); }
  function time(ms) { return ms ? new Date(ms).toLocaleTimeString() : ''; }
  function num(v) { return v === null || v === undefined ? '?' : String(v); }
  function ms(v) { return v === null || v === undefined ? '?' : String(Math.round(v)); }
  function render() {
    $('cm').textContent = state.cmId;
    fill('members', state.members.map(function (m) {
      var bar = document.createElement('meter');
      bar.min = 0; bar.max = 1; bar.high = 0.9; bar.value = m.load === null ? 0 : Math.min(1, m.load);
      var load = document.createElement('span');
      load.appendChild(bar);
      load.appendChild(el('span', m.load === null ? ' ?' : ' ' + Math.round(m.load * 100) + ' %'));
      // An offline member serves no phone: its last figure is shown as stale and counted nowhere.
      var phones = m.online ? el('span', num(m.phones)) : el('span', m.lastPhones === null ? '-' : '- (had ' + m.lastPhones + ', stale)', 'stale');
      if (!m.online) phones.title = 'offline: not counted; its phones are counted where they rehomed';
      var tr = row([m.id + (m.self ? ' (this one)' : ''), el('span', m.online ? 'online' : 'offline', m.online ? 'on' : 'off'), phones, String(m.capacity), load, m.online ? num(m.servicesRps) : '-']);
      tr.dataset.member = m.id;
      tr.dataset.online = String(m.online);
      return tr;
    }));
    var tt = state.totals;
    fill('totals', tt ? [row(['group: ' + tt.online + ' of ' + tt.members + ' online', '', String(tt.phones), String(tt.capacity), tt.capacity > 0 ? Math.round(tt.phones / tt.capacity * 100) + ' %' : '-', ''])] : []);
    var sum = state.summary, parts = [];
    if (sum) {
      parts.push(el('span', 'Last ' + Math.round(sum.windowMs / 60000) + ' min: ' + sum.total + (sum.total === 1 ? ' rehome' : ' rehomes') + (sum.total > 0 ? ':' : '')));
      sum.byReason.forEach(function (x) { var s = el('span', x.count + ' ' + x.reason); s.dataset.reason = x.reason; s.dataset.count = String(x.count); parts.push(s); });
    }
    fill('summary', parts);
    fill('moves', state.moves.map(function (m) { return row([m.phone, m.to, Math.round(m.ageMs / 1000) + ' s']); }));
    $('queued').textContent = String(state.movesQueued);
    fill('rehomes', state.rehomes.map(function (r) {
      var tr = row([time(r.at), r.phone, r.from === null ? '-' : r.from, r.to, r.reason, ms(r.detectMs), ms(r.rehomeMs)]);
      tr.dataset.reason = r.reason;
      return tr;
    }));
  }
  function live(ok) { var l = $('live'); l.textContent = ok ? 'live' : 'reconnecting…'; l.className = ok ? '' : 'down'; }
  var es = new EventSource('/console/events');
  es.addEventListener('snapshot', function (e) { state = JSON.parse(e.data); live(true); render(); });
  es.addEventListener('members', function (e) { var g = JSON.parse(e.data); state.members = g.members; state.totals = g.totals; state.moves = g.moves; state.movesQueued = g.movesQueued; render(); });
  es.addEventListener('summary', function (e) { state.summary = JSON.parse(e.data); render(); });
  es.addEventListener('rehome', function (e) {
    var r = JSON.parse(e.data), own = 0;
    state.rehomes.unshift(r);
    // As the server keeps them: at most ${REHOMES_PER_PHONE} of one phone, ${REHOMES_MAX} in all.
    state.rehomes = state.rehomes.filter(function (x) { return x.phone !== r.phone || ++own <= ${REHOMES_PER_PHONE}; }).slice(0, ${REHOMES_MAX});
    render();
  });
  // The server ended this stream for good: its login expired (reload: the login form), or newer streams took its place.
  es.addEventListener('ended', function (e) {
    es.close();
    if (JSON.parse(e.data).why === 'expired') { location.reload(); return; }
    var l = $('live'); l.textContent = 'closed: too many console streams, reload to reconnect'; l.className = 'down';
  });
  es.onerror = function () {
    live(false);
    // Logged out or expired: the page itself answers 401 now, with the login form.
    fetch('/', { method: 'HEAD', cache: 'no-store' }).then(function (r) { if (r.status === 401) location.reload(); }).catch(function () {});
  };
  function lookup() {
    var id = $('phone').value.trim();
    var out = $('phoneout');
    if (id === '') return;
    out.textContent = 'looking up…';
    fetch('/console/phone?id=' + encodeURIComponent(id), { headers: { accept: 'application/json' } })
      .then(function (r) { return r.json().then(function (j) { return { ok: r.ok, j: j }; }); })
      .then(function (x) { out.textContent = x.ok ? JSON.stringify(x.j, null, 2) : (x.j.error || 'not found'); })
      .catch(function (err) { out.textContent = 'lookup failed: ' + err; });
  }
  $('go').addEventListener('click', lookup);
  $('phone').addEventListener('keydown', function (e) { if (e.key === 'Enter') lookup(); });
})();
`;

const sha256 = (s: string): string => `'sha256-${createHash('sha256').update(s, 'utf8').digest('base64')}'`;

/** The page's Content-Security-Policy: its own inline style and script only, fetches to this origin only. */
export const CONSOLE_CSP = [
  "default-src 'none'",
  `style-src ${sha256(STYLE)}`,
  `script-src ${sha256(SCRIPT)}`,
  "connect-src 'self'",
  "img-src 'none'",
  "font-src 'none'",
  "base-uri 'none'",
  // The log-out button posts to this origin.
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

/** The login form's Content-Security-Policy: its style, no script at all, its form posts to this origin only. */
export const LOGIN_CSP = ["default-src 'none'", `style-src ${sha256(STYLE)}`, "img-src 'none'", "base-uri 'none'", "form-action 'self'", "frame-ancestors 'none'"].join('; ');

/** Headers on the login form. */
export const LOGIN_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': LOGIN_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/** Headers on every console answer (page, JSON, stream). */
export const CONSOLE_HEADERS: Readonly<Record<string, string>> = {
  'content-security-policy': CONSOLE_CSP,
  'x-content-type-options': 'nosniff',
  'referrer-policy': 'no-referrer',
  'x-frame-options': 'DENY',
  'cache-control': 'no-store',
};

/** The page. `cmId` is a validated id (config), escaped anyway. */
export function consolePage(cmId: string): string {
  const title = escapeHtml(`ipphone console — ${cmId}`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}</title><style>${STYLE}</style></head>
<body>
<form method="post" action="/console/logout" class="out"><button id="logout" type="submit">log out</button></form>
<h1>Call-manager group as <span id="cm"></span> sees it <span id="live">connecting…</span></h1>
<h2>Members</h2>
<table><thead><tr><th>member</th><th>state</th><th>phones</th><th>capacity</th><th>load</th><th>services req/s</th></tr></thead><tbody id="members"></tbody><tfoot id="totals"></tfoot></table>
<h2>Rebalance moves in flight (queued: <span id="queued">0</span>)</h2>
<table><thead><tr><th>phone</th><th>to</th><th>since</th></tr></thead><tbody id="moves"></tbody></table>
<h2>Recent rehomes</h2>
<p id="summary"></p>
<table><thead><tr><th>heard</th><th>phone</th><th>from</th><th>to</th><th>reason</th><th id="detect-ms" title="${escapeHtml(DETECT_MS_TITLE)}">detect ms</th><th id="rehome-ms" title="${escapeHtml(REHOME_MS_TITLE)}">rehome ms</th></tr></thead><tbody id="rehomes"></tbody></table>
<p class="legend"><b>detect ms</b>: ${escapeHtml(DETECT_MS_TITLE)}. <b>rehome ms</b>: ${escapeHtml(REHOME_MS_TITLE)}. The summary counts the rehomes this call manager believed in that window, by reason; the list keeps at most ${REHOMES_PER_PHONE} of one phone.</p>
<h2>Look up a phone</h2>
<p><input id="phone" placeholder="phone id" autocomplete="off"> <button id="go" type="button">look up</button></p>
<pre id="phoneout"></pre>
<script>${SCRIPT}</script>
</body></html>
`;
}

/**
 * The login form (`GET /` and `/console/login` without credentials, answered
 * 401): the token goes in a password field and is posted to this origin; no
 * group data, no script. `message` (escaped) says why the last try failed.
 */
export function loginPage(cmId: string, message = ''): string {
  const title = escapeHtml(`ipphone console — ${cmId}`);
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1">
<title>${title}: log in</title><style>${STYLE}</style></head>
<body>
<h1>${title}</h1>
<form method="post" action="/console/login">
<p><label for="token">Console token</label> <input id="token" name="token" type="password" autocomplete="current-password" required autofocus> <button id="login" type="submit">log in</button></p>
</form>
<p id="msg" class="err">${escapeHtml(message)}</p>
<p>The token is in the file named by <code>console.tokenFile</code> in this call manager’s config.</p>
</body></html>
`;
}

/** HTML text escaping (the server-side parts of the page). */
export function escapeHtml(s: string): string {
  return s.replace(/[&<>"']/g, (ch) => `&#${ch.charCodeAt(0)};`);
}
