/**
 * Listening ports for the programs a test starts (mosquitto, Kamailio, baresip,
 * call managers), allocated so that two of them never get the same one.
 *
 * Why not "bind :0, read the port, close": that port comes from the kernel's
 * ephemeral range (`/proc/sys/net/ipv4/ip_local_port_range`, 32768–60999 here),
 * the same range every outgoing connection of every other test draws its local
 * port from; between the close and the child's bind, someone's `connect()` may
 * take it ("Address already in use": `integration › baresip › a stopped baresip
 * (SIGSTOP)` in issue 15). So:
 *
 * - Ports come from OUTSIDE the ephemeral range, read at run time ({@link portPool}):
 *   nothing takes them unasked. Below {@link POOL_FLOOR} is left to what picks
 *   its own ports (baresip's RTP, `rtp_ports` in baresip.ts; well-known services).
 * - Each port is claimed by a lock file created atomically (`link(2)`, which
 *   fails on an existing name) in a directory shared by every test process on
 *   the machine ({@link LOCK_DIR}; ava runs test files in separate processes,
 *   and other checkouts' runs use the same directory). The claim lasts until the
 *   claiming process exits, so a broker restarted on "its" port finds it still
 *   its own. A lock whose process is gone (same pid, other start time: a reused
 *   pid is not its owner) is reclaimed.
 * - A claimed port is also bound once (TCP, and UDP for SIP children) to skip
 *   one that something outside this scheme holds.
 *
 * A child may still lose its port to something outside the scheme: the helpers
 * that start children claim a NEW port and start again when the child reports
 * "address in use" ({@link isAddressInUse}).
 *
 * The pure parts (pool, candidate choice, lock text, staleness) are unit-tested in
 * test/unit/helpers/ports.test.ts.
 */
import { chmodSync, linkSync, mkdirSync, readFileSync, renameSync, statSync, unlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import dgram from 'node:dgram';
import path from 'node:path';
import { removeAtExit } from './reaper.js';

/** An inclusive range of ports. */
export interface PortRange {
  readonly low: number;
  readonly high: number;
}

/** Lowest port handed out; 10000–19999 is baresip's RTP range (test/helpers/baresip.ts). */
export const POOL_FLOOR = 20_000;
/** Highest port there is. */
export const PORT_MAX = 65_535;
/** Linux's default ephemeral range, used when /proc cannot be read. */
export const DEFAULT_EPHEMERAL: PortRange = { low: 32_768, high: 60_999 };
/** Where the lock files live: one directory for every test process on the machine. */
export const LOCK_DIR = path.join(tmpdir(), 'ipphone-test-ports');

/** `/proc/sys/net/ipv4/ip_local_port_range`'s text ("32768\t60999\n") as a range; undefined when it is not one. */
export function parseEphemeralRange(text: string): PortRange | undefined {
  const m = /^\s*(\d+)\s+(\d+)\s*$/.exec(text);
  if (!m) return undefined;
  const low = Number(m[1]);
  const high = Number(m[2]);
  if (!(low >= 1 && low <= high && high <= PORT_MAX)) return undefined;
  return { low, high };
}

/**
 * The ranges ports are claimed from: [floor, ceiling] less the ephemeral range.
 * When the ephemeral range leaves nothing (a machine that made 1024–65535
 * ephemeral), the whole [floor, ceiling]: the locks and the bind check still
 * keep test processes apart, only outgoing connections are no longer ruled out.
 */
export function portPool(ephemeral: PortRange, floor = POOL_FLOOR, ceiling = PORT_MAX): PortRange[] {
  const out: PortRange[] = [];
  const below = { low: floor, high: Math.min(ceiling, ephemeral.low - 1) };
  const above = { low: Math.max(floor, ephemeral.high + 1), high: ceiling };
  for (const r of [below, above]) if (r.low <= r.high) out.push(r);
  return out.length > 0 ? out : [{ low: floor, high: ceiling }];
}

/**
 * A candidate first port P with P…P+span−1 all inside one range of `pool`, uniform
 * over all such P; `random` in [0, 1). Undefined when no range is `span` long.
 */
export function pickCandidate(pool: readonly PortRange[], span: number, random: () => number): number | undefined {
  const starts = pool.map((r) => Math.max(0, r.high - r.low + 2 - span));
  const total = starts.reduce((a, b) => a + b, 0);
  if (total === 0) return undefined;
  let i = Math.min(total - 1, Math.floor(random() * total));
  for (let k = 0; k < pool.length; k++) {
    if (i < starts[k]!) return pool[k]!.low + i;
    i -= starts[k]!;
  }
  return undefined;
}

/** Who holds a lock: a pid and that process's start time (field 22 of /proc/PID/stat), so a reused pid is told apart. */
export interface LockOwner {
  readonly pid: number;
  readonly start: string;
}

/** A lock file's text. */
export function lockText(owner: LockOwner): string {
  return `${owner.pid} ${owner.start}\n`;
}

/** A lock file's owner; undefined when the text is not a lock (empty, torn, foreign). */
export function parseLock(text: string): LockOwner | undefined {
  const m = /^(\d+) (\S+)\n$/.exec(text);
  return m ? { pid: Number(m[1]), start: m[2]! } : undefined;
}

/** The start time of process `pid` (clock ticks since boot, field 22 of /proc/PID/stat); undefined when there is no such process. */
export function parseProcStart(stat: string): string | undefined {
  // Field 2 (comm) is in parentheses and may hold spaces and ')': the fields after the last ')' start at field 3.
  const rest = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return rest[22 - 3];
}

/**
 * True when the lock's owner is gone: `startOf(pid)` is undefined (no such process)
 * or differs from the start the lock recorded (the pid was reused). A text that is
 * not a lock is stale only once older than `graceMs` (a writer never leaves one:
 * locks appear whole through link(2); this is for litter).
 */
export function lockIsStale(text: string, ageMs: number, startOf: (pid: number) => string | undefined, graceMs = 10_000): boolean {
  const owner = parseLock(text);
  if (owner === undefined) return ageMs > graceMs;
  const now = startOf(owner.pid);
  return now === undefined || now !== owner.start;
}

function procStart(pid: number): string | undefined {
  try {
    return parseProcStart(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return undefined;
  }
}

function ephemeralRange(): PortRange {
  try {
    return parseEphemeralRange(readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8')) ?? DEFAULT_EPHEMERAL;
  } catch {
    return DEFAULT_EPHEMERAL;
  }
}

const errno = (err: unknown): string | undefined => (err as NodeJS.ErrnoException | undefined)?.code;

/** Create lock `file` holding `text`, atomically: true when it is now ours, false when it exists. */
function createLock(file: string, text: string): boolean {
  const tmp = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}.tmp`;
  writeFileSync(tmp, text);
  try {
    linkSync(tmp, file);
    return true;
  } catch (err) {
    if (errno(err) === 'EEXIST') return false;
    throw err;
  } finally {
    unlinkSync(tmp);
  }
}

/**
 * Take lock `file` over from a dead owner. It is renamed away first (one rename
 * wins) and the moved text checked: had a live process claimed it between our
 * read and the rename, its lock is put back and the port left alone.
 */
function reclaim(file: string, staleText: string): boolean {
  const grave = `${file}.${process.pid}.${Math.random().toString(16).slice(2)}.stale`;
  try {
    renameSync(file, grave);
  } catch {
    return false; // someone else got there first
  }
  const moved = readFileSync(grave, 'utf8');
  if (moved !== staleText) {
    try {
      linkSync(grave, file);
    } catch {
      // taken again meanwhile: its new owner's lock stands
    }
    unlinkSync(grave);
    return false;
  }
  unlinkSync(grave);
  return true;
}

/** True when `port` can be bound on 127.0.0.1 right now over TCP (and UDP when `udp`). */
export async function canBind(port: number, udp: boolean): Promise<boolean> {
  const tcp = await new Promise<boolean>((resolve) => {
    const s = net.createServer();
    s.once('error', () => resolve(false));
    s.listen({ port, host: '127.0.0.1', exclusive: true }, () => s.close(() => resolve(true)));
  });
  if (!tcp || !udp) return tcp;
  return new Promise<boolean>((resolve) => {
    const s = dgram.createSocket('udp4');
    s.once('error', () => {
      s.close();
      resolve(false);
    });
    s.bind(port, '127.0.0.1', () => s.close(() => resolve(true)));
  });
}

export interface ClaimOptions {
  /** Adjacent ports to claim, P…P+span−1 (baresip's `sip_listen P` also takes P+1 for TLS). Default 1. */
  span?: number;
  /** Check UDP too (a SIP child listens on UDP as well as TCP). Default false. */
  udp?: boolean;
  /** Candidates tried before giving up. Default 200. */
  attempts?: number;
  /** Default Math.random. */
  random?: () => number;
  /** Default {@link LOCK_DIR}. */
  dir?: string;
  /** Default {@link portPool} of this machine's ephemeral range. */
  pool?: readonly PortRange[];
}

/**
 * Claim a port (or `span` adjacent ports) that no other test process on this
 * machine holds and that is bindable now; returns the first. Held until this
 * process exits.
 */
export async function claimPort(opts: ClaimOptions = {}): Promise<number> {
  const span = opts.span ?? 1;
  const dir = opts.dir ?? LOCK_DIR;
  const random = opts.random ?? Math.random;
  if (mkdirSync(dir, { recursive: true }) !== undefined) {
    // Created now: shared by every user's test runs on the machine, like /tmp (the umask cut the mode).
    try {
      chmodSync(dir, 0o1777);
    } catch {
      // not ours to change
    }
  }
  const pool = opts.pool ?? portPool(ephemeralRange());
  const me = lockText({ pid: process.pid, start: procStart(process.pid) ?? 'unknown' });
  const attempts = opts.attempts ?? 200;
  for (let i = 0; i < attempts; i++) {
    const first = pickCandidate(pool, span, random);
    if (first === undefined) break;
    const held: string[] = [];
    let ok = true;
    for (let p = first; p < first + span && ok; p++) {
      const file = path.join(dir, String(p));
      ok = tryLock(file, me);
      if (ok) held.push(file);
    }
    if (ok) {
      for (let p = first; p < first + span && ok; p++) ok = await canBind(p, opts.udp ?? false);
    }
    if (ok) {
      for (const f of held) removeAtExit(f);
      return first;
    }
    for (const f of held) unlinkSync(f);
  }
  throw new Error(`claimPort: no free run of ${span} port(s) in ${JSON.stringify(pool)} after ${attempts} tries (locks in ${dir})`);
}

/** Lock `file` for us: create it, or take it over from a dead owner. */
function tryLock(file: string, me: string): boolean {
  if (createLock(file, me)) return true;
  let text: string;
  let ageMs: number;
  try {
    text = readFileSync(file, 'utf8');
    ageMs = Date.now() - statSync(file).mtimeMs;
  } catch (err) {
    // Released between our create and our read: try once more.
    if (errno(err) === 'ENOENT') return createLock(file, me);
    throw err;
  }
  if (!lockIsStale(text, ageMs, procStart)) return false;
  return reclaim(file, text) && createLock(file, me);
}

/** True when a child's output says its listen address was taken ("Address already in use", EADDRINUSE). */
export function isAddressInUse(output: string): boolean {
  return /address already in use|EADDRINUSE/i.test(output);
}
