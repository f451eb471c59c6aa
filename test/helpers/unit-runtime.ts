/**
 * The agent as its systemd unit runs it: node with the unit's options (its
 * `ExecStart=` node flags and any NODE_OPTIONS), under W^X (no page may be writable and executable at once, no page may
 * become executable later) like `MemoryDenyWriteExecute=yes`.
 *
 * systemd 252 enforces MemoryDenyWriteExecute with a seccomp filter; newer
 * systemd uses the kernel's PR_SET_MDWE (Linux ≥ 6.3) when it can. There is
 * no running systemd here, so tests and benchmarks set PR_SET_MDWE themselves
 * (perl's syscall(), then exec node): the same rule, enforced by the kernel.
 */
import { spawnSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { arch } from 'node:os';
import { join } from 'node:path';
import { ROOT } from './programs.js';
import { parseUnit, unitEnvironment, unitExecStart, type ExecCommand, type Setting } from './systemd-unit.js';

/** A shipped unit's parsed settings, environment and command (test/helpers/systemd-unit.ts). */
export function shippedUnit(unit: string): { settings: Setting[]; env: Record<string, string>; exec: ExecCommand } {
  const settings = parseUnit(readFileSync(join(ROOT, 'systemd', unit), 'utf8'));
  const env = unitEnvironment(settings, unit);
  return { settings, env, exec: unitExecStart(settings, unit, env) };
}

/**
 * The options a shipped unit starts node with: NODE_OPTIONS from its
 * `Environment=` (split as node splits it) followed by the node flags of its
 * `ExecStart=` (the words between the node binary and the script), in the
 * order node applies them. For benchmarks and checks that run node with the
 * unit's options outside the unit; test/integration/unit-exec runs the unit's
 * own command line.
 */
export function unitNodeOptions(unit = 'ipphone-agent.service'): string[] {
  const { env, exec } = shippedUnit(unit);
  if (!/\/node$/.test(exec.path)) throw new Error(`systemd/${unit}: ExecStart= does not run node (${exec.path})`);
  const script = exec.argv.findIndex((a, i) => i > 0 && !a.startsWith('-'));
  if (script < 0) throw new Error(`systemd/${unit}: ExecStart= names no script`);
  const fromEnv = (env.NODE_OPTIONS ?? '').trim();
  return [...(fromEnv === '' ? [] : fromEnv.split(/\s+/)), ...exec.argv.slice(1, script)];
}

/** prctl's syscall number on the architectures a phone or CI may run. */
const PRCTL: Partial<Record<string, number>> = { x64: 157, arm64: 167, arm: 172, riscv64: 167 };
const PR_SET_MDWE = 65;
const PR_MDWE_REFUSE_EXEC_GAIN = 1;

export type WxWrapper = { supported: true; command: string; args: string[] } | { supported: false; why: string };

let probed: WxWrapper | undefined;

/**
 * A command prefix that runs its arguments under PR_SET_MDWE, or why it
 * cannot here (no perl, an architecture without a known prctl number, a
 * kernel older than 6.3).
 */
export function wxWrapper(): WxWrapper {
  if (probed !== undefined) return probed;
  const nr = PRCTL[arch()];
  if (nr === undefined) return (probed = { supported: false, why: `no prctl syscall number known for ${arch()}` });
  const script = `syscall(${nr}, ${PR_SET_MDWE}, ${PR_MDWE_REFUSE_EXEC_GAIN}, 0, 0, 0) == 0 or die "PR_SET_MDWE: $!\\n"; exec { $ARGV[0] } @ARGV or die "exec $ARGV[0]: $!\\n"`;
  const r = spawnSync('perl', ['-e', script, 'true'], { encoding: 'utf8', timeout: 10_000 });
  if (r.error !== undefined) return (probed = { supported: false, why: `perl: ${r.error.message}` });
  if (r.status !== 0) return (probed = { supported: false, why: r.stderr.trim() || `exit ${r.status}` });
  return (probed = { supported: true, command: 'perl', args: ['-e', script] });
}
