/**
 * The agent's flash state (pointer list, its version, the config version and
 * overlay) in two A/B slots under `stateDir`. Boot takes the newest slot whose
 * CRC and content are valid; when none is, `load()` returns null and the
 * caller uses the config file's list. A save writes only when the canonical
 * JSON differs from what was last loaded or saved, so flash wear tracks real
 * changes and {@link FileStateStore.writes} shows how many there were.
 */
import type { AgentState, PendingConfig, RebaseTaken, StateStore } from '../agent/ports.js';
import { IpphoneError, errorMessage, isIpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import type { Pointer } from '../protocol/types.js';
import { AbSlots } from './ab-slots.js';
import { errnoCode, type DurableFs } from './durable-file.js';

/** Base name of the slot files: `agent-state.a`, `agent-state.b`. */
export const STATE_FILE_NAME = 'agent-state';
/** Most pointers a saved list may hold (as the config allows). */
export const MAX_STATE_POINTERS = 16;

export type StateCheck = { ok: true; state: AgentState } | { ok: false; problems: string[] };

const isPlainObject = (v: unknown): v is Record<string, unknown> =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && (Object.getPrototypeOf(v) === Object.prototype || Object.getPrototypeOf(v) === null);

const isVersion = (v: unknown): v is number => typeof v === 'number' && Number.isSafeInteger(v) && v >= 0;

/**
 * Check that `value` has the shape of an {@link AgentState}, returning every
 * problem. On success the state is normalised: pointers keep only
 * `id`/`broker`/`services`, and `configOverlay` is present only when set.
 */
export function checkAgentState(value: unknown): StateCheck {
  const problems: string[] = [];
  if (!isPlainObject(value)) return { ok: false, problems: ['state is not an object'] };
  const { pointers, pointersVersion, configVersion, configOverlay, pendingConfig, fileHash, rebasesTaken } = value;
  const list = checkPointers(pointers, 'pointers', problems);
  if (!isVersion(pointersVersion)) problems.push('pointersVersion must be a non-negative safe integer');
  if (!isVersion(configVersion)) problems.push('configVersion must be a non-negative safe integer');
  if (configOverlay !== undefined && !isPlainObject(configOverlay)) problems.push('configOverlay must be a plain object');
  if (fileHash !== undefined && (typeof fileHash !== 'string' || !/^[0-9a-f]{16,64}$/.test(fileHash))) problems.push('fileHash must be a hex string');
  const pending = pendingConfig === undefined ? undefined : checkPending(pendingConfig, problems);
  const rebases = rebasesTaken === undefined ? undefined : checkRebases(rebasesTaken, problems);
  if (problems.length > 0) return { ok: false, problems };
  const state: AgentState = { pointers: list, pointersVersion: pointersVersion as number, configVersion: configVersion as number };
  if (configOverlay !== undefined) state.configOverlay = configOverlay as Record<string, unknown>;
  if (pending !== undefined) state.pendingConfig = pending;
  if (fileHash !== undefined) state.fileHash = fileHash as string;
  if (rebases !== undefined) state.rebasesTaken = rebases;
  return { ok: true, state };
}

/** `rebasesTaken`: up to {@link MAX_REBASES_TAKEN} `{ rebase, version, expires }` of versions. */
function checkRebases(v: unknown, problems: string[]): RebaseTaken[] | undefined {
  if (!Array.isArray(v) || v.length > MAX_REBASES_TAKEN || !v.every((r) => isPlainObject(r) && isVersion(r.rebase) && isVersion(r.version) && isVersion(r.expires))) {
    problems.push(`rebasesTaken must be an array of at most ${MAX_REBASES_TAKEN} { rebase, version, expires } of non-negative safe integers`);
    return undefined;
  }
  return v.map((r: Record<string, unknown>) => ({ rebase: r.rebase as number, version: r.version as number, expires: r.expires as number }));
}

/** Most rebases a state remembers (each lives at most REBASE_MAX_LIFETIME_MS; an operator sends few). */
export const MAX_REBASES_TAKEN = 32;

function checkPointers(pointers: unknown, at: string, problems: string[]): Pointer[] {
  const list: Pointer[] = [];
  if (!Array.isArray(pointers) || pointers.length === 0 || pointers.length > MAX_STATE_POINTERS) {
    problems.push(`${at} must be an array of 1 to ${MAX_STATE_POINTERS} entries`);
    return list;
  }
  pointers.forEach((p: unknown, i) => {
    if (!isPlainObject(p)) return void problems.push(`${at}[${i}] is not an object`);
    const bad = (['id', 'broker', 'services'] as const).filter((k) => typeof p[k] !== 'string' || p[k] === '');
    if (bad.length > 0) return void problems.push(`${at}[${i}] needs non-empty string ${bad.join(', ')}`);
    // A pointer's SIP registrar (issue 11) survives a reboot with the list.
    const sip = typeof p['sip'] === 'string' && p['sip'] !== '' ? { sip: p['sip'] } : {};
    list.push({ id: p['id'] as string, broker: p['broker'] as string, services: p['services'] as string, ...sip });
  });
  return list;
}

/** The unconfirmed change kept for commit-confirmed across a power cut (reconfig.ts). */
function checkPending(v: unknown, problems: string[]): PendingConfig | undefined {
  if (!isPlainObject(v)) return void problems.push('pendingConfig must be an object');
  const { version, remainingMs, restart, pointersTouched, prev } = v;
  const before = problems.length;
  if (!isVersion(version)) problems.push('pendingConfig.version must be a non-negative safe integer');
  if (!isVersion(remainingMs)) problems.push('pendingConfig.remainingMs must be a non-negative safe integer');
  if (!Array.isArray(restart) || !restart.every((r) => typeof r === 'string')) problems.push('pendingConfig.restart must be an array of strings');
  if (typeof pointersTouched !== 'boolean') problems.push('pendingConfig.pointersTouched must be a boolean');
  if (!isPlainObject(prev)) return void problems.push('pendingConfig.prev must be an object');
  if (!isPlainObject(prev['overlay'])) problems.push('pendingConfig.prev.overlay must be a plain object');
  if (!isVersion(prev['pointersVersion'])) problems.push('pendingConfig.prev.pointersVersion must be a non-negative safe integer');
  const list = checkPointers(prev['pointers'], 'pendingConfig.prev.pointers', problems);
  if (problems.length > before) return undefined;
  return {
    version: version as number,
    remainingMs: remainingMs as number,
    restart: restart as string[],
    pointersTouched: pointersTouched as boolean,
    prev: { overlay: prev['overlay'] as Record<string, unknown>, pointers: list, pointersVersion: prev['pointersVersion'] as number },
  };
}

/**
 * JSON with object keys sorted at every depth, so two equal states always
 * serialise to the same bytes (the change test and the slot payload).
 */
export function canonicalJson(value: unknown): string {
  return JSON.stringify(value, (_key, v: unknown) =>
    isPlainObject(v) ? Object.fromEntries(Object.keys(v).sort().map((k) => [k, v[k]])) : v,
  );
}

/** Decode a slot payload into a valid state, or say why not. */
function decodeState(payload: Buffer): StateCheck {
  let parsed: unknown;
  try {
    parsed = JSON.parse(payload.toString('utf8'));
  } catch (err) {
    return { ok: false, problems: [`not JSON: ${errorMessage(err)}`] };
  }
  return checkAgentState(parsed);
}

export interface FileStateStoreOptions {
  /** The agent's `stateDir`; created with mode 0700 on first use. */
  dir: string;
  log: Logger;
  /** File operations; default the real filesystem. Tests inject recorders and failures. */
  fs?: DurableFs;
  /** Base name of the slot files; default {@link STATE_FILE_NAME}. */
  name?: string;
}

/** {@link StateStore} on A/B slot files. Loads and saves are serialised. */
export class FileStateStore implements StateStore {
  private readonly dir: string;
  private readonly log: Logger;
  private readonly slots: AbSlots;
  /** Canonical JSON of the last state loaded or saved; undefined before either. */
  private last: string | null | undefined;
  private writeCount = 0;
  private failedWriteCount = 0;
  private tail: Promise<unknown> = Promise.resolve();

  constructor(opts: FileStateStoreOptions) {
    this.dir = opts.dir;
    this.log = opts.log.child({ mod: 'store' });
    this.slots = new AbSlots({
      dir: opts.dir,
      name: opts.name ?? STATE_FILE_NAME,
      ...(opts.fs !== undefined ? { fs: opts.fs } : {}),
      validate: (payload) => {
        const res = decodeState(payload);
        return res.ok ? null : res.problems.join('; ');
      },
    });
  }

  /** Slot writes completed by this process. */
  get writes(): number {
    return this.writeCount;
  }

  /** Slot writes attempted by this process that failed. */
  get failedWrites(): number {
    return this.failedWriteCount;
  }

  /**
   * The newest valid saved state, or null when no slot is valid (the caller
   * then uses the config file's list). Rejects with `STORE_IO` only when the
   * state directory itself cannot be created or listed.
   */
  load(): Promise<AgentState | null> {
    return this.enqueue(async () => {
      let removed: string[];
      let res: Awaited<ReturnType<AbSlots['load']>>;
      try {
        removed = await this.slots.open();
        res = await this.slots.load();
      } catch (err) {
        throw new IpphoneError('state directory unusable', 'STORE_IO', { dir: this.dir, error: errorMessage(err), errno: errnoCode(err) }, { cause: err });
      }
      if (removed.length > 0) this.log.info({ dir: this.dir, removed }, 'removed leftover temp files');
      const bothMissing = res.invalid.length === 2 && res.invalid.every((p) => p.kind === 'missing');
      for (const p of res.invalid) {
        // An absent slot is normal (first boot, or only one write so far); anything else is damage worth a warning.
        const ctx = { dir: this.dir, slot: p.slot, kind: p.kind, reason: p.detail };
        if (p.kind === 'missing') this.log.info(ctx, 'state slot absent');
        else this.log.warn(ctx, 'state slot invalid');
      }
      if (res.payload === null) {
        this.last = null;
        this.log.warn({ dir: this.dir, problems: res.problems, firstBoot: bothMissing }, 'no valid state slot');
        return null;
      }
      const dec = decodeState(res.payload);
      // Same bytes the slot validator just accepted; a failure here would be a bug, not disk damage.
      if (!dec.ok) throw new IpphoneError('accepted state slot failed to decode', 'STORE_CORRUPT', { dir: this.dir, slot: res.slot, problems: dec.problems });
      this.last = canonicalJson(dec.state);
      this.log.info(
        { dir: this.dir, slot: res.slot, seq: res.seq, pointersVersion: dec.state.pointersVersion, configVersion: dec.state.configVersion },
        'state loaded',
      );
      return dec.state;
    });
  }

  /**
   * Persist `state` unless it equals (canonically) the last loaded or saved
   * one. Resolves true when a slot was written. Rejects with `PAYLOAD_INVALID`
   * for a malformed state (nothing written), `STORE_IO` when the write failed
   * (the previous valid slot is intact and a later save retries).
   */
  save(state: AgentState): Promise<boolean> {
    return this.enqueue(async () => {
      const check = checkAgentState(state);
      if (!check.ok) throw new IpphoneError('agent state invalid', 'PAYLOAD_INVALID', { problems: check.problems });
      const text = canonicalJson(check.state);
      if (text === this.last) return false;
      let written: { slot: string; seq: number };
      try {
        written = await this.slots.write(Buffer.from(text, 'utf8'));
      } catch (err) {
        if (isIpphoneError(err)) throw err;
        this.failedWriteCount++;
        const errno = errnoCode(err);
        this.log.error({ dir: this.dir, errno, err: errorMessage(err) }, 'state write failed');
        throw new IpphoneError(`state write failed: ${errorMessage(err)}`, 'STORE_IO', { dir: this.dir, errno }, { cause: err });
      }
      this.writeCount++;
      this.last = text;
      this.log.info(
        { dir: this.dir, slot: written.slot, seq: written.seq, pointersVersion: check.state.pointersVersion, configVersion: check.state.configVersion, writes: this.writeCount },
        'state saved',
      );
      return true;
    });
  }

  private enqueue<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.tail.then(fn, fn);
    this.tail = run.catch(() => undefined);
    return run;
  }
}
