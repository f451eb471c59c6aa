/**
 * `ipphone-admin` command lines → a typed request, or a usage error naming
 * what is wrong. Pure: reads no files, never throws.
 */
import { REBASE_MAX_LIFETIME_MS } from '../protocol/codec.js';
import { BROKER_SCHEMES, urlProblems } from '../protocol/pointers.js';
import { DEFAULT_PREFIX, isValidId } from '../protocol/topics.js';
import { POINTER_REASONS, type PointerReason } from '../protocol/types.js';
import { SUBCOMMAND_USAGE, type Subcommand } from './usage.js';

/** How to reach the broker; shared by config, pointers and status. */
export interface ConnArgs {
  broker: string;
  /** Topic prefix (default `ipphone/v1`). */
  prefix: string;
  /** MQTT protocol version (default 5). */
  mqttVersion: 4 | 5;
  username?: string;
  password?: string;
  /** File holding the password (first line); read by main, never printed. */
  passwordFile?: string;
  /** PEM file of the CA(s) that sign the broker's certificate (`--ca`). */
  ca?: string;
  /** PEM file of this client's certificate (`--cert`); its CN is the identity the broker's ACL sees. */
  cert?: string;
  /** PEM file of the private key of `cert` (`--tls-key`). */
  key?: string;
  /** Give up connecting after this many ms (default 10000). */
  connectTimeoutMs: number;
}

/** What signed messages need. */
export interface SignArgs {
  phone: string;
  /** Path of the PKCS#8 PEM private key. */
  key: string;
  kid: string;
  /** Body version; default is the send time (ms since the epoch). */
  version?: number;
  /** Body expires this many ms after it is made. */
  expiresInMs?: number;
}

export type AdminArgs =
  | { kind: 'help'; sub?: Subcommand }
  | { kind: 'usage'; sub?: Subcommand; error: string }
  | { kind: 'keygen'; out: string; force: boolean }
  | ({ kind: 'config'; conn: ConnArgs; file: string; timeoutMs: number } & SignArgs)
  | ({ kind: 'pointers'; conn: ConnArgs; list: string; reason: PointerReason; wait: boolean; timeoutMs: number; /** A rebase: see {@link REBASE_DEFAULT_EXPIRES_MS}, protocol/codec.ts checkRebase. */ rebase: boolean } & SignArgs)
  | { kind: 'status'; conn: ConnArgs; phone?: string; once: boolean; timeoutMs?: number; quietMs: number; /** `--json` or `--table`; absent: a table on a terminal, JSON lines otherwise (admin/status-table.ts). */ format?: StatusFormat }
  | { kind: 'acl'; config: string; operators: string[] };

/** How `status` prints: one JSON line per status (scripts), or a table (people). */
export type StatusFormat = 'json' | 'table';

/** Default wait for a config result or a pointer push (`--timeout`), ms. */
export const DEFAULT_TIMEOUT_MS = 15_000;
/** Default connect timeout, ms. */
export const DEFAULT_CONNECT_TIMEOUT_MS = 10_000;
/** Default lifetime of a rebase (`pointers --rebase` without `--expires-in`), ms: 10 minutes. */
export const REBASE_DEFAULT_EXPIRES_MS = 10 * 60_000;
/** Default quiet time that ends `status --once`, ms. */
export const DEFAULT_QUIET_MS = 1000;

/** `list` flags may be repeated; their values are kept in order. */
type FlagKind = 'string' | 'int' | 'bool' | 'list';

const CONN: Record<string, FlagKind> = {
  '--broker': 'string',
  '--prefix': 'string',
  '--mqtt-version': 'int',
  '--username': 'string',
  '--password': 'string',
  '--password-file': 'string',
  '--connect-timeout': 'int',
  '--ca': 'string',
  '--cert': 'string',
  '--tls-key': 'string',
};
const SIGN: Record<string, FlagKind> = {
  '--phone': 'string',
  '--key': 'string',
  '--kid': 'string',
  '--version': 'int',
  '--expires-in': 'int',
  '--timeout': 'int',
};

const FLAGS: Record<Subcommand, Record<string, FlagKind>> = {
  keygen: { '--out': 'string', '--force': 'bool' },
  config: { ...CONN, ...SIGN, '--file': 'string' },
  pointers: { ...CONN, ...SIGN, '--list': 'string', '--reason': 'string', '--wait': 'bool', '--rebase': 'bool' },
  status: { ...CONN, '--phone': 'string', '--once': 'bool', '--timeout': 'int', '--quiet': 'int', '--json': 'bool', '--table': 'bool' },
  acl: { '--config': 'string', '--operator': 'list' },
};

const REQUIRED: Record<Subcommand, string[]> = {
  keygen: ['--out'],
  config: ['--broker', '--phone', '--key', '--kid', '--file'],
  pointers: ['--broker', '--phone', '--key', '--kid', '--list'],
  status: ['--broker'],
  acl: ['--config'],
};

type Values = Map<string, string | number | boolean | string[]>;

function isSubcommand(s: string | undefined): s is Subcommand {
  return s !== undefined && Object.hasOwn(SUBCOMMAND_USAGE, s);
}

/** Flags of one subcommand; `--help` anywhere wins, whatever else is wrong. */
function readFlags(sub: Subcommand, argv: readonly string[]): Values | { help: true } | { error: string } {
  if (argv.some((a) => a === '--help' || a === '-h')) return { help: true };
  const spec = FLAGS[sub];
  const values: Values = new Map();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i] ?? '';
    const eq = a.startsWith('--') ? a.indexOf('=') : -1;
    const flag = eq > 0 ? a.slice(0, eq) : a;
    const kind = spec[flag];
    if (kind === undefined) return { error: `unknown argument ${JSON.stringify(a)}` };
    if (values.has(flag) && kind !== 'list') return { error: `${flag} given twice` };
    if (kind === 'bool') {
      if (eq > 0) return { error: `${flag} takes no value` };
      values.set(flag, true);
      continue;
    }
    const v = eq > 0 ? a.slice(eq + 1) : argv[++i];
    if (v === undefined || v === '') return { error: `${flag} needs a value` };
    if (kind === 'list') {
      const list = values.get(flag);
      values.set(flag, Array.isArray(list) ? [...list, v] : [v]);
    } else if (kind === 'int') {
      const n = /^\d{1,16}$/.test(v) ? Number(v) : Number.NaN;
      if (!Number.isSafeInteger(n)) return { error: `${flag} needs a whole number (got ${JSON.stringify(v)})` };
      values.set(flag, n);
    } else {
      values.set(flag, v);
    }
  }
  return values;
}

/** The scheme of a URL, for messages that must not echo credentials. */
function safeScheme(url: string): string {
  return /^[a-z][a-z0-9+.-]*:/i.exec(url)?.[0] ?? url.slice(0, 8);
}

function str(v: Values, flag: string): string | undefined {
  const x = v.get(flag);
  return typeof x === 'string' ? x : undefined;
}
function list(v: Values, flag: string): string[] {
  const x = v.get(flag);
  return Array.isArray(x) ? x : [];
}
function num(v: Values, flag: string): number | undefined {
  const x = v.get(flag);
  return typeof x === 'number' ? x : undefined;
}

/** Every problem with the values beyond their syntax. */
function problems(sub: Subcommand, v: Values): string[] {
  const out: string[] = [];
  for (const flag of REQUIRED[sub]) if (!v.has(flag)) out.push(`${flag} is required`);
  const broker = str(v, '--broker');
  if (broker !== undefined) out.push(...urlProblems(broker, '--broker', BROKER_SCHEMES));
  const phone = str(v, '--phone');
  if (phone !== undefined && !isValidId(phone)) out.push(`--phone must be a phone id of 1 to 64 characters from A-Z a-z 0-9 . _ - (got ${JSON.stringify(phone)})`);
  const prefix = str(v, '--prefix');
  if (prefix !== undefined && (/[+#\0]/.test(prefix) || prefix.replace(/\/+$/, '') === '')) out.push(`--prefix must be a topic without + or # (got ${JSON.stringify(prefix)})`);
  const mv = num(v, '--mqtt-version');
  if (mv !== undefined && mv !== 4 && mv !== 5) out.push(`--mqtt-version must be 4 or 5 (got ${mv})`);
  if (v.has('--password') && v.has('--password-file')) out.push('give --password or --password-file, not both');
  if (v.has('--json') && v.has('--table')) out.push('give --json or --table, not both');
  if (v.has('--cert') !== v.has('--tls-key')) out.push('give --cert and --tls-key together (a client certificate and its key)');
  const tlsFlags = ['--ca', '--cert', '--tls-key'].filter((f) => v.has(f));
  if (broker !== undefined && tlsFlags.length > 0 && !/^(mqtts|wss):/i.test(broker)) {
    out.push(`${tlsFlags.join(', ')} need an mqtts: or wss: --broker (got ${JSON.stringify(safeScheme(broker))}); without TLS they would be ignored`);
  }
  const reason = str(v, '--reason');
  if (reason !== undefined && !(POINTER_REASONS as readonly string[]).includes(reason)) out.push(`--reason must be one of ${POINTER_REASONS.join(', ')} (got ${JSON.stringify(reason)})`);
  for (const flag of ['--version', '--expires-in', '--timeout', '--connect-timeout', '--quiet']) {
    if (num(v, flag) === 0) out.push(`${flag} must be at least 1`);
  }
  const expiresIn = num(v, '--expires-in');
  if (v.has('--rebase') && expiresIn !== undefined && expiresIn > REBASE_MAX_LIFETIME_MS) out.push(`--expires-in must be at most ${REBASE_MAX_LIFETIME_MS} with --rebase (the phone refuses a longer-lived rebase)`);
  const timeout = num(v, '--timeout');
  if (timeout !== undefined && timeout > 86_400_000) out.push(`--timeout must be at most 86400000 (a day)`);
  return out;
}

function conn(v: Values): ConnArgs {
  const c: ConnArgs = {
    broker: str(v, '--broker')!,
    prefix: str(v, '--prefix') ?? DEFAULT_PREFIX,
    mqttVersion: (num(v, '--mqtt-version') ?? 5) as 4 | 5,
    connectTimeoutMs: num(v, '--connect-timeout') ?? DEFAULT_CONNECT_TIMEOUT_MS,
  };
  const user = str(v, '--username');
  const pass = str(v, '--password');
  const passFile = str(v, '--password-file');
  if (user !== undefined) c.username = user;
  if (pass !== undefined) c.password = pass;
  if (passFile !== undefined) c.passwordFile = passFile;
  const ca = str(v, '--ca');
  const cert = str(v, '--cert');
  const key = str(v, '--tls-key');
  if (ca !== undefined) c.ca = ca;
  if (cert !== undefined) c.cert = cert;
  if (key !== undefined) c.key = key;
  return c;
}

function sign(v: Values): SignArgs {
  const s: SignArgs = { phone: str(v, '--phone')!, key: str(v, '--key')!, kid: str(v, '--kid')! };
  const version = num(v, '--version');
  const expires = num(v, '--expires-in');
  if (version !== undefined) s.version = version;
  if (expires !== undefined) s.expiresInMs = expires;
  return s;
}

/** Parse the command line (without `node` and the script). Never throws. */
export function parseAdminArgs(argv: readonly string[]): AdminArgs {
  const [first, ...rest] = argv;
  if (first === undefined) return { kind: 'usage', error: 'a subcommand is required (keygen, config, pointers, status or acl)' };
  if (first === '--help' || first === '-h' || first === 'help') return { kind: 'help' };
  if (!isSubcommand(first)) return { kind: 'usage', error: `unknown subcommand ${JSON.stringify(first)}` };
  const sub = first;
  const read = readFlags(sub, rest);
  if ('help' in read) return { kind: 'help', sub };
  if ('error' in read) return { kind: 'usage', sub, error: read.error };
  const found = problems(sub, read);
  if (found.length > 0) return { kind: 'usage', sub, error: found.join('; ') };
  switch (sub) {
    case 'keygen':
      return { kind: 'keygen', out: str(read, '--out')!, force: read.has('--force') };
    case 'config':
      return { kind: 'config', conn: conn(read), ...sign(read), file: str(read, '--file')!, timeoutMs: num(read, '--timeout') ?? DEFAULT_TIMEOUT_MS };
    case 'pointers':
      return {
        kind: 'pointers',
        conn: conn(read),
        ...sign(read),
        list: str(read, '--list')!,
        reason: (str(read, '--reason') ?? 'admin') as PointerReason,
        wait: read.has('--wait'),
        timeoutMs: num(read, '--timeout') ?? DEFAULT_TIMEOUT_MS,
        rebase: read.has('--rebase'),
      };
    case 'status': {
      const out: AdminArgs = { kind: 'status', conn: conn(read), once: read.has('--once'), quietMs: num(read, '--quiet') ?? DEFAULT_QUIET_MS };
      const phone = str(read, '--phone');
      const timeout = num(read, '--timeout');
      if (phone !== undefined) out.phone = phone;
      if (timeout !== undefined) out.timeoutMs = timeout;
      if (read.has('--json')) out.format = 'json';
      if (read.has('--table')) out.format = 'table';
      return out;
    }
    case 'acl':
      // Operator names are checked by the generator (src/admin/acl.ts), which names every bad one.
      return { kind: 'acl', config: str(read, '--config')!, operators: list(read, '--operator') };
  }
}
