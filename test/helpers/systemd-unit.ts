/**
 * A systemd unit file read as systemd reads it, as far as starting the
 * service needs: sections and settings (continuation lines, comments), the
 * `Environment=` assignments and the `ExecStart=` command line with systemd's
 * quoting (systemd.syntax(7), systemd.service(7) "Command lines",
 * systemd.exec(7) `Environment=`).
 *
 * Pure functions of the text, so the rules are tested with table rows
 * (test/unit/systemd/systemd-unit.test.ts); test/integration/unit-exec runs
 * the result. Anything systemd would refuse, or would only warn about and
 * ignore, is an error here: a shipped unit must not depend on it.
 */

/** A unit file's syntax or a setting it cannot be started with; `line` is 1-based. */
export class UnitSyntaxError extends Error {
  constructor(
    message: string,
    readonly line?: number,
  ) {
    super(line === undefined ? message : `line ${line}: ${message}`);
    this.name = 'UnitSyntaxError';
  }
}

export interface Setting {
  section: string;
  key: string;
  value: string;
  line: number;
}

/** Every `Key=value` in order, continuation lines joined (the backslash becomes a space), comments dropped. */
export function parseUnit(text: string): Setting[] {
  const out: Setting[] = [];
  const lines = text.split(/\r?\n/);
  let section: string | undefined;
  for (let i = 0; i < lines.length; i++) {
    const start = i + 1;
    let l = lines[i]!.trim();
    if (l === '' || l.startsWith('#') || l.startsWith(';')) continue;
    // A continued line takes the next lines; comment lines inside it are skipped, as systemd does.
    while (l.endsWith('\\') && i + 1 < lines.length) {
      let next = lines[++i]!.trim();
      while ((next.startsWith('#') || next.startsWith(';')) && i + 1 < lines.length) next = lines[++i]!.trim();
      l = `${l.slice(0, -1)} ${next}`;
    }
    if (l.startsWith('[')) {
      if (!l.endsWith(']')) throw new UnitSyntaxError(`bad section header ${JSON.stringify(l)}`, start);
      section = l.slice(1, -1);
      continue;
    }
    const eq = l.indexOf('=');
    if (eq <= 0) throw new UnitSyntaxError(`not a Key=value line: ${JSON.stringify(l)}`, start);
    if (section === undefined) throw new UnitSyntaxError('setting before any [Section]', start);
    out.push({ section, key: l.slice(0, eq).trim(), value: l.slice(eq + 1).trim(), line: start });
  }
  return out;
}

const SIMPLE_ESCAPES: Record<string, string> = { a: '\x07', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t', v: '\v', '\\': '\\', '"': '"', "'": "'", s: ' ', ' ': ' ' };

/** One C escape at `s[i]` (just after the backslash): the character(s) and how many input characters it used. */
function cUnescape(s: string, i: number, line?: number): [string, number] {
  const c = s[i];
  if (c === undefined) throw new UnitSyntaxError('trailing backslash', line);
  if (c in SIMPLE_ESCAPES) return [SIMPLE_ESCAPES[c]!, 1];
  const hex = (n: number): [string, number] => {
    const h = s.slice(i + 1, i + 1 + n);
    if (h.length !== n || !/^[0-9a-fA-F]+$/.test(h)) throw new UnitSyntaxError(`bad \\${c} escape`, line);
    const cp = parseInt(h, 16);
    if (cp === 0 || cp > 0x10ffff) throw new UnitSyntaxError(`\\${c}${h} is not a character systemd accepts`, line);
    return [String.fromCodePoint(cp), n + 1];
  };
  if (c === 'x') return hex(2);
  if (c === 'u') return hex(4);
  if (c === 'U') return hex(8);
  if (/[0-7]/.test(c)) {
    const o = s.slice(i, i + 3);
    if (!/^[0-7]{3}$/.test(o) || parseInt(o, 8) === 0) throw new UnitSyntaxError(`bad octal escape \\${o}`, line);
    return [String.fromCharCode(parseInt(o, 8)), 3];
  }
  throw new UnitSyntaxError(`unknown escape \\${c}`, line);
}

/**
 * Split a value into words as systemd's extract_first_word() with
 * EXTRACT_UNQUOTE|EXTRACT_CUNESCAPE does: whitespace separates, single or
 * double quotes (anywhere in a word) group, backslash escapes work inside and
 * outside quotes (`\ ` is a space, EXTRACT_UNESCAPE_SEPARATORS); an
 * unterminated quote or a trailing backslash is an error.
 * `relax` (used for a `$VAR` value) drops escaping and tolerates an open quote.
 */
export function splitWords(value: string, line?: number, relax = false): string[] {
  const words: string[] = [];
  let i = 0;
  while (i < value.length) {
    while (i < value.length && /\s/.test(value[i]!)) i++;
    if (i >= value.length) break;
    let word = '';
    let quote: string | null = null;
    for (; i < value.length; i++) {
      const c = value[i]!;
      if (quote === null && /\s/.test(c)) break;
      if (c === '\\' && !relax) {
        const [ch, used] = cUnescape(value, i + 1, line);
        word += ch;
        i += used;
      } else if (quote !== null && c === quote) quote = null;
      else if (quote === null && (c === '"' || c === "'")) quote = c;
      else word += c;
    }
    if (quote !== null && !relax) throw new UnitSyntaxError(`unterminated ${quote} quote in ${JSON.stringify(value)}`, line);
    words.push(word);
  }
  return words;
}

/**
 * Specifiers (systemd.unit(7) "Specifiers") in a value: `%%` and the few that
 * are fixed for a system service; any other is an error rather than a guess.
 */
export function expandSpecifiers(value: string, unitName: string, line?: number): string {
  const prefix = unitName.replace(/\.[^.]+$/, '');
  const table: Record<string, string> = { '%': '%', n: unitName, N: prefix, p: prefix, t: '/run', S: '/var/lib', C: '/var/cache', L: '/var/log', E: '/etc', T: '/tmp', V: '/var/tmp' };
  return value.replace(/%(.?)/g, (_m, c: string) => {
    const v = table[c];
    if (v === undefined) throw new UnitSyntaxError(`unsupported specifier %${c}`, line);
    return v;
  });
}

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * The `Environment=` assignments of a unit's [Service], in order: several per
 * line, later ones override, an empty `Environment=` clears the list.
 */
export function unitEnvironment(settings: Setting[], unitName: string): Record<string, string> {
  let env: Record<string, string> = {};
  for (const s of settings) {
    if (s.section !== 'Service' || s.key !== 'Environment') continue;
    if (s.value === '') {
      env = {};
      continue;
    }
    for (const w of splitWords(expandSpecifiers(s.value, unitName, s.line), s.line)) {
      const eq = w.indexOf('=');
      if (eq <= 0 || !ENV_NAME.test(w.slice(0, eq))) throw new UnitSyntaxError(`invalid environment assignment ${JSON.stringify(w)}`, s.line);
      env[w.slice(0, eq)] = w.slice(eq + 1);
    }
  }
  return env;
}

export interface ExecCommand {
  /** The file executed. */
  path: string;
  /** The argument vector, argv[0] included (with `@` it differs from `path`). */
  argv: string[];
  /** `-`: a failing exit status is not a failure. */
  ignoreFailure: boolean;
  /** `+`: run with full privileges (User=, sandboxing and the like do not apply). */
  privileged: boolean;
  /** `!` / `!!`: User= applies but systemd does not drop the other credentials itself. */
  noSetCredentials: boolean;
}

/**
 * Expand `${NAME}` anywhere (one word, whitespace kept) and `$NAME` standing
 * alone as a word (split at whitespace into zero or more words), `$$` into
 * `$`; unset names expand to nothing (replace_env_argv()). `$NAME` inside a
 * longer word is left as it is, as systemd does.
 */
export function expandArgv(words: string[], env: Record<string, string>): string[] {
  const out: string[] = [];
  for (const w of words) {
    const alone = /^\$([A-Za-z_][A-Za-z0-9_]*)$/.exec(w);
    if (alone !== null) {
      out.push(...splitWords(env[alone[1]!] ?? '', undefined, true));
      continue;
    }
    out.push(w.replace(/\$\$|\$\{([^}]*)\}/g, (m, name: string | undefined) => (m === '$$' ? '$' : (env[name!] ?? ''))));
  }
  return out;
}

/** The service's one `ExecStart=` command (an empty assignment resets; a second command is refused). */
export function unitExecStart(settings: Setting[], unitName: string, env: Record<string, string>): ExecCommand {
  let chosen: Setting | undefined;
  for (const s of settings) {
    if (s.section !== 'Service' || s.key !== 'ExecStart') continue;
    if (s.value === '') chosen = undefined;
    else if (chosen !== undefined) throw new UnitSyntaxError('more than one ExecStart= (only Type=oneshot may have several)', s.line);
    else chosen = s;
  }
  if (chosen === undefined) throw new UnitSyntaxError('no ExecStart=');
  let v = chosen.value;
  const flags = { ignoreFailure: false, privileged: false, noSetCredentials: false, argv0: false, noEnv: false };
  for (;;) {
    if (v.startsWith('!!') || v.startsWith('!')) (flags.noSetCredentials = true), (v = v.slice(v.startsWith('!!') ? 2 : 1));
    else if (v.startsWith('-')) (flags.ignoreFailure = true), (v = v.slice(1));
    else if (v.startsWith('@')) (flags.argv0 = true), (v = v.slice(1));
    else if (v.startsWith(':')) (flags.noEnv = true), (v = v.slice(1));
    else if (v.startsWith('+')) (flags.privileged = true), (v = v.slice(1));
    else break;
  }
  let words = splitWords(expandSpecifiers(v, unitName, chosen.line), chosen.line);
  if (words.includes(';')) throw new UnitSyntaxError('";" separates commands; ExecStart= of this type takes one', chosen.line);
  if (!flags.noEnv) words = expandArgv(words, env);
  const path = words[0];
  if (path === undefined || path === '') throw new UnitSyntaxError('ExecStart= names no program', chosen.line);
  if (!path.startsWith('/')) throw new UnitSyntaxError(`ExecStart= program ${JSON.stringify(path)} is not an absolute path (the units ship with absolute ones)`, chosen.line);
  const argv = flags.argv0 ? words.slice(1) : words;
  if (argv.length === 0) throw new UnitSyntaxError('ExecStart=@ needs argv[0] after the program', chosen.line);
  return { path, argv, ignoreFailure: flags.ignoreFailure, privileged: flags.privileged, noSetCredentials: flags.noSetCredentials };
}

/** The last value of a single-valued [Service] setting, or undefined. */
export function serviceSetting(settings: Setting[], key: string): string | undefined {
  return settings.filter((s) => s.section === 'Service' && s.key === key).at(-1)?.value;
}

/** Every value of a list-valued [Service] setting, split into words; an empty assignment clears it. */
export function serviceList(settings: Setting[], key: string): string[] {
  let out: string[] = [];
  for (const s of settings) if (s.section === 'Service' && s.key === key) out = s.value === '' ? [] : [...out, ...splitWords(s.value, s.line)];
  return out;
}
