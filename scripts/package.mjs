// `npm run package [-- --arch arm64|armhf]`: Debian packages of the two sides, built
// from the staged image tree of `npm run bundle` (dist/image/ for this
// machine's architecture, dist/image-ARCH/ for another) with dpkg-deb alone:
//
//   dist/deb/ipphone-agent_VERSION_ARCH.deb   the phone: agent, its native addons,
//       unit, udev rules, sysusers.d user, tmpfiles.d state directory,
//       /etc/ipphone-agent/{agent.json,board.json} (conffiles), docs
//   dist/deb/ipphone-cm_VERSION_ARCH.deb      the server: call manager and
//       ipphone-admin, unit (DynamicUser=, secrets by LoadCredential=),
//       /etc/ipphone-cm/cm.json (conffile), docs
//
// The two have no file in common, so one machine may carry both (a lab): the
// agent's bundle and chunks are in /usr/lib/ipphone/ as in the image, the call
// manager's in /usr/lib/ipphone/cm/ with /usr/lib/ipphone/ipphone-cm.mjs a
// link to it (node resolves the link, so its chunks load from cm/chunks/).
// Node itself is a dependency (nodejs >= 20.11, and the major the addons were
// built for): README, "Debian packages", says where it comes from on Debian 12.
// Templates and maintainer scripts: deploy/debian/.
//
// Options: --arch amd64|arm64 (default: this machine's), --out DIR (default
// dist/deb), --image DIR (a staged image tree, packaged as it is). Without
// --image, this machine's image is staged first when it is missing or older
// than the sources (npm run bundle); another architecture's must be staged by
// hand (npm run bundle -- --arch ARCH) and is refused when missing or stale.
import { execFileSync, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, cpSync, existsSync, lstatSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { gzipSync } from 'node:zlib';

const ROOT = path.resolve(path.dirname(new URL(import.meta.url).pathname), '..');
const DEBIAN = path.join(ROOT, 'deploy/debian');
/** Debian architecture of node's process.arch. */
const DEB_ARCH = { x64: 'amd64', arm64: 'arm64', arm: 'armhf' };
/** What each Debian architecture is called in prebuilds/ directories and by the cross binutils. */
const TARGET = {
  amd64: { prebuilds: 'linux-x64', strip: ['strip', 'x86_64-linux-gnu-strip'], machine: 62 /* EM_X86_64 */ },
  arm64: { prebuilds: 'linux-arm64', strip: ['aarch64-linux-gnu-strip'], machine: 183 /* EM_AARCH64 */ },
  armhf: { prebuilds: 'linux-arm', strip: ['arm-linux-gnueabihf-strip'], machine: 40 /* EM_ARM */ },
};
/** Node's NODE_MODULE_VERSION (ABI of addons built with nan) → major (nodejs.org/en/download/releases). */
const NODE_ABI = { 115: 20, 120: 21, 127: 22, 131: 23, 137: 24 };
/** The oldest Node the programs support (package.json "engines"). */
const NODE_MIN = '20.11';

function fail(message) {
  process.stderr.write(`npm run package: ${message}\n`);
  process.exit(1);
}

function parseArgs(argv) {
  const host = DEB_ARCH[process.arch];
  const o = { arch: host, out: path.join(ROOT, 'dist/deb'), image: undefined };
  for (let i = 0; i < argv.length; i++) {
    const [flag, inline] = argv[i].startsWith('--') && argv[i].includes('=') ? [argv[i].slice(0, argv[i].indexOf('=')), argv[i].slice(argv[i].indexOf('=') + 1)] : [argv[i], undefined];
    const value = () => inline ?? argv[++i] ?? fail(`${flag} needs a value`);
    if (flag === '--help' || flag === '-h') {
      process.stdout.write('Usage: npm run package [-- --arch amd64|arm64|armhf] [--out DIR] [--image DIR]\n  Debian packages ipphone-agent and ipphone-cm from the staged image (npm run bundle [-- --arch ARCH]).\n');
      process.exit(0);
    } else if (flag === '--arch') o.arch = value();
    else if (flag === '--out') o.out = path.resolve(value());
    else if (flag === '--image') o.image = path.resolve(value());
    else fail(`unknown argument ${JSON.stringify(argv[i])}`);
  }
  if (!(o.arch in TARGET)) fail(`--arch ${o.arch}: amd64, arm64 or armhf`);
  o.hostImage = o.arch === host;
  o.imageGiven = o.image !== undefined;
  o.image ??= path.join(ROOT, o.hostImage ? 'dist/image' : `dist/image-${o.arch}`);
  return o;
}

/** Newest mtime under p (a file or a directory tree). */
function newest(p) {
  const st = statSync(p);
  if (!st.isDirectory()) return st.mtimeMs;
  return Math.max(st.mtimeMs, ...readdirSync(p).map((e) => newest(path.join(p, e))));
}

/** Every file (not directory) under dir, relative, sorted. */
function walk(dir, rel = '') {
  const out = [];
  for (const e of readdirSync(path.join(dir, rel), { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const r = path.join(rel, e.name);
    if (e.isDirectory()) out.push(...walk(dir, r));
    else out.push(r);
  }
  return out;
}

/**
 * The image is what gets packaged: refuse a missing one, and one older than
 * the sources it was staged from (the units and udev rules in it are copies).
 */
function checkImage(o) {
  const agent = path.join(o.image, 'usr/lib/ipphone/ipphone-agent.mjs');
  const stage = o.hostImage ? 'npm run bundle' : `npm run bundle -- --arch ${o.arch}`;
  const inputs = ['src', 'systemd', 'hw', 'scripts/bundle.mjs', 'scripts/lib', 'scripts/shims'].map((p) => path.join(ROOT, p)).filter(existsSync);
  const stale = () => !o.imageGiven && statSync(agent).mtimeMs < Math.max(...inputs.map(newest));
  // This machine's image is staged here when missing or stale (what a fresh checkout needs); another
  // architecture's needs its cross-built addons (README, "Device image"), so that is left to the operator.
  if (o.hostImage && !o.imageGiven && (!existsSync(agent) || stale())) {
    console.log(`npm run package: staging ${path.relative(ROOT, o.image)}/ first (${stage})`);
    const r = spawnSync('npm', ['run', 'bundle'], { cwd: ROOT, stdio: 'inherit' });
    if (r.status !== 0) fail(`${stage} failed (exit ${r.status})`);
  }
  if (!existsSync(agent)) fail(`${path.relative(ROOT, o.image) || o.image}/ is not staged: the ${o.arch} image must be staged first (${stage}), then run this again`);
  if (stale()) fail(`${path.relative(ROOT, o.image)}/ is older than the sources it is staged from: stage it again (${stage})`);
  const missing = IMAGE_FILES.filter((f) => !existsSync(path.join(o.image, f)));
  if (missing.length > 0) fail(`${path.relative(ROOT, o.image) || o.image}/ lacks ${missing.join(', ')}: a partly staged image? Stage it again (${stage})`);
}

/** What the packages take from the image (scripts/bundle.mjs stages them). */
const IMAGE_FILES = [
  'usr/lib/ipphone/ipphone-agent.mjs',
  'usr/lib/ipphone/ipphone-cm.mjs',
  'usr/lib/ipphone/ipphone-admin.mjs',
  'lib/systemd/system/ipphone-agent.service',
  'lib/systemd/system/ipphone-cm.service',
  'lib/udev/rules.d',
  'usr/share/ipphone/boards/headless.json',
  'usr/share/ipphone/schema/agent-config.schema.json',
  'usr/share/ipphone/schema/board.schema.json',
  'usr/share/ipphone/schema/cm-config.schema.json',
];

/** Relative `.mjs` files a bundle file imports (static or dynamic), as paths relative to lib. */
function importsOf(lib, file) {
  const text = readFileSync(path.join(lib, file), 'utf8');
  const out = new Set();
  for (const m of text.matchAll(/["'`](\.{1,2}\/[\w./-]+\.mjs)["'`]/g)) {
    const target = path.normalize(path.join(path.dirname(file), m[1]));
    if (existsSync(path.join(lib, target))) out.add(target);
  }
  return out;
}

/** The programs' files and every chunk they reach. */
function closure(lib, entries) {
  const seen = new Set();
  const todo = [...entries];
  while (todo.length > 0) {
    const f = todo.pop();
    if (seen.has(f)) continue;
    seen.add(f);
    todo.push(...importsOf(lib, f));
  }
  return [...seen].sort();
}

/** Does any of these bundle files load a package from node_modules (the native addons)? */
function needsNodeModules(lib, files) {
  return files.some((f) => /["'](onoff|epoll|node-gyp-build|serialport|@serialport\/[\w-]+)["']/.test(readFileSync(path.join(lib, f), 'utf8')));
}

/** A regular file (not a link) that is an ELF object. */
const isElf = (file) => lstatSync(file).isFile() && readFileSync(file).subarray(0, 4).equals(Buffer.from([0x7f, 0x45, 0x4c, 0x46]));
/** ELF e_machine (little-endian u16 at offset 18). */
const elfMachine = (file) => readFileSync(file).readUInt16LE(18);

/** Directories of npm packages that nothing loads at run time (node_gyp_bins: node-gyp's link to the build machine's python). */
const PRUNED_DIRS = new Set(['test', 'tests', 'integration-test', 'example', 'examples', 'doc', 'docs', 'benchmark', '.github', 'node_gyp_bins']);

/**
 * Copy the image's node_modules for one architecture: serialport's prebuilds
 * only for this target's glibc (the other platforms' binaries would be dead
 * weight, and foreign ELF objects in the package), no build intermediates
 * (obj.target/, .deps/, object files), ELF objects stripped as dh_strip does.
 */
function copyNodeModules(from, to, arch) {
  const keepPrebuilds = TARGET[arch].prebuilds;
  const skipped = [];
  cpSync(from, to, {
    recursive: true,
    filter: (src) => {
      const rel = path.relative(from, src).split(path.sep);
      const pb = rel.indexOf('prebuilds');
      if (pb >= 0 && rel.length > pb + 1 && rel[pb + 1] !== keepPrebuilds) return false;
      if (pb >= 0 && rel.length > pb + 2 && /\.musl\.node$/.test(rel.at(-1))) return (skipped.push(rel.join('/')), false);
      if (rel.includes('obj.target') || rel.includes('.deps')) return false;
      // The packages' own tests, examples and API docs: not loaded at run time (lintian: executables and images in /usr/lib).
      if (rel.slice(0, -1).concat(lstatSync(src).isDirectory() ? [rel.at(-1)] : []).some((d) => PRUNED_DIRS.has(d))) return false;
      if (/\.(o|a|d)$/.test(rel.at(-1))) return false;
      // .npmignore, .travis.yml, .eslintrc…: packaging leftovers (lintian: package-contains-npm-ignore-file).
      if (rel.at(-1).startsWith('.')) return false;
      return true;
    },
  });
  const strip = TARGET[arch].strip.find((s) => spawnSync(s, ['--version'], { stdio: 'ignore' }).status === 0);
  const elves = walk(to).filter((f) => isElf(path.join(to, f)));
  const foreign = elves.filter((f) => elfMachine(path.join(to, f)) !== TARGET[arch].machine);
  if (foreign.length > 0) fail(`the image's node_modules hold ELF objects for another machine than ${arch}: ${foreign.join(', ')} (stage the ${arch} image again)`);
  for (const f of elves) {
    if (strip === undefined) {
      process.stderr.write(`npm run package: no ${TARGET[arch].strip.join(' or ')}: ${f} left unstripped\n`);
      continue;
    }
    execFileSync(strip, ['--remove-section=.comment', '--remove-section=.note', '--strip-unneeded', path.join(to, f)]);
  }
  return elves;
}

/**
 * The Node major the image's nan addons were built for, or undefined when
 * every addon is N-API (any Node ≥ 20 loads those). The image's
 * usr/share/ipphone/image.json says it when scripts/bundle.mjs wrote one
 * (cross-built addons: node-gyp's config.gypi then records the build
 * machine's node, not the target's); else each addon's build/config.gypi
 * (`node_module_version`).
 */
function addonNodeMajor(o, modules) {
  const info = path.join(o.image, 'usr/share/ipphone/image.json');
  if (existsSync(info)) {
    const image = JSON.parse(readFileSync(info, 'utf8'));
    if (image.debArch !== undefined && image.debArch !== o.arch) fail(`${path.relative(ROOT, info)} says the image is for ${image.debArch}, not ${o.arch}`);
    const modulesVersion = image.node?.modules;
    const hasNan = existsSync(path.join(modules, 'epoll'));
    if (hasNan && modulesVersion !== undefined) {
      const major = NODE_ABI[modulesVersion];
      if (major === undefined) fail(`${path.relative(ROOT, info)}: node.modules ${modulesVersion} is not a Node line this script knows (${Object.values(NODE_ABI).join(', ')})`);
      return major;
    }
    if (!hasNan) return undefined;
  }
  const majors = new Set();
  for (const f of existsSync(modules) ? walk(modules) : []) {
    if (!f.endsWith(`build${path.sep}config.gypi`)) continue;
    const m = /"node_module_version":\s*(\d+)/.exec(readFileSync(path.join(modules, f), 'utf8'));
    if (m === null) continue;
    const major = NODE_ABI[m[1]];
    if (major === undefined) fail(`${f}: node_module_version ${m[1]} is not a Node line this script knows (${Object.values(NODE_ABI).join(', ')})`);
    majors.add(major);
  }
  if (majors.size > 1) fail(`the image's addons were built for different Node majors: ${[...majors].join(', ')}`);
  return [...majors][0];
}

/** dpkg-shlibdeps on the package's ELF objects: the libc6/libstdc++6 it needs, for that architecture. */
function sharedLibDepends(stage, elves, arch) {
  if (elves.length === 0) return [];
  const work = mkdtempSync(path.join(tmpdir(), 'ipphone-shlibdeps-'));
  try {
    mkdirSync(path.join(work, 'debian'));
    writeFileSync(path.join(work, 'debian/control'), 'Source: ipphone\n\nPackage: ipphone\nArchitecture: any\n');
    const r = spawnSync('dpkg-shlibdeps', ['-O', '--ignore-missing-info', ...elves.map((e) => `-e${e}`)], { cwd: work, encoding: 'utf8', env: { ...process.env, DEB_HOST_ARCH: arch } });
    if (r.error?.code === 'ENOENT') fail('dpkg-shlibdeps is missing: apt-get install -y dpkg-dev');
    if (r.status !== 0) fail(`dpkg-shlibdeps failed${arch !== DEB_ARCH[process.arch] ? ` (the ${arch} libraries must be installed: apt-get install -y libc6:${arch} libstdc++6:${arch})` : ''}:\n${r.stderr}`);
    const line = /shlibs:Depends=(.*)/.exec(r.stdout)?.[1] ?? '';
    return line.split(',').map((s) => s.trim()).filter(Boolean);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

/** The packages the bundles were made from, with their licenses (dist/bundle/meta.json, node_modules/NAME/package.json). */
function bundledPackages(files) {
  const meta = path.join(ROOT, 'dist/bundle/meta.json');
  if (!existsSync(meta)) return [];
  const outputs = JSON.parse(readFileSync(meta, 'utf8')).outputs;
  const names = new Set();
  for (const [out, o] of Object.entries(outputs)) {
    if (!files.has(path.basename(out)) && !files.has(path.join('chunks', path.basename(out)))) continue;
    for (const input of Object.keys(o.inputs ?? {})) {
      const m = /(?:^|\/)node_modules\/((?:@[^/]+\/)?[^/]+)\//.exec(input);
      if (m !== null) names.add(m[1]);
    }
  }
  return [...names].sort().map((n) => {
    const pj = path.join(ROOT, 'node_modules', n, 'package.json');
    const p = existsSync(pj) ? JSON.parse(readFileSync(pj, 'utf8')) : {};
    return `${n} ${p.version ?? ''} (${typeof p.license === 'string' ? p.license : 'see its package'})`.replace('  ', ' ');
  });
}

function copyright(o, bundled, withModules) {
  return [
    'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/',
    'Upstream-Name: ipphone',
    '',
    'Files: *',
    `Copyright: ${o.years} the ipphone authors`,
    'License: Expat',
    ...(bundled.length > 0
      ? [
          'Comment: usr/lib/ipphone/**/*.mjs are bundles (esbuild) that also hold the',
          ' JavaScript of these npm packages, each under its own license:',
          ...bundled.map((b) => ` ${b}`),
        ]
      : []),
    ...(withModules
      ? [
          '',
          'Files: usr/lib/ipphone/node_modules/*',
          'Copyright: the authors of each package (see its package.json and LICENSE)',
          'License: Expat',
          'Comment: serialport, onoff, epoll and what they load, with their native addons.',
        ]
      : []),
    '',
    'License: Expat',
    ' Permission is hereby granted, free of charge, to any person obtaining a copy',
    ' of this software and associated documentation files (the "Software"), to deal',
    ' in the Software without restriction, including without limitation the rights',
    ' to use, copy, modify, merge, publish, distribute, sublicense, and/or sell',
    ' copies of the Software, and to permit persons to whom the Software is',
    ' furnished to do so, subject to the following conditions:',
    ' .',
    ' The above copyright notice and this permission notice shall be included in',
    ' all copies or substantial portions of the Software.',
    ' .',
    ' THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR',
    ' IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,',
    ' FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE',
    ' AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER',
    ' LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,',
    ' OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN',
    ' THE SOFTWARE.',
    '',
  ].join('\n');
}

/** A native package's changelog (Debian policy 12.7), one entry for this build. */
function changelog(pkg, version, maintainer, epoch, commit) {
  const date = new Date(epoch * 1000).toUTCString().replace(/GMT$/, '+0000');
  return `${pkg} (${version}) unstable; urgency=medium\n\n  * Built from ipphone ${version}${commit ? ` (git ${commit})` : ''} by npm run package.\n\n -- ${maintainer}  ${date}\n`;
}

function git(args) {
  const r = spawnSync('git', args, { cwd: ROOT, encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : '';
}

/** Install a repository file into the package tree. */
function put(stage, dest, text, mode = 0o644) {
  const file = path.join(stage, dest);
  mkdirSync(path.dirname(file), { recursive: true });
  writeFileSync(file, text);
  chmodSync(file, mode);
}

/** The docs every package carries under /usr/share/doc/PKG/ (the units' Documentation= points there). */
function putDocs(stage, pkg, extra) {
  const doc = `usr/share/doc/${pkg}`;
  put(stage, `${doc}/README.md`, readFileSync(path.join(ROOT, 'README.md')));
  for (const f of readdirSync(path.join(ROOT, 'docs')).filter((f) => f.endsWith('.md'))) put(stage, `${doc}/docs/${f}`, readFileSync(path.join(ROOT, 'docs', f)));
  put(stage, `${doc}/systemd/README.md`, readFileSync(path.join(ROOT, 'systemd/README.md')));
  for (const [from, to] of extra) put(stage, `${doc}/${to}`, readFileSync(path.join(ROOT, from)));
}

/** Normalise modes: directories 0755, scripts 0755, other files 0644 (ELF objects included: they are loaded, not run). */
function normaliseModes(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isSymbolicLink()) continue;
    if (e.isDirectory()) {
      chmodSync(p, 0o755);
      normaliseModes(p);
      continue;
    }
    // A script (#!) is executable; the programs' bundles start with `#!/usr/bin/env node` too.
    const exec = readFileSync(p).subarray(0, 2).toString() === '#!';
    chmodSync(p, exec ? 0o755 : 0o644);
  }
}

function md5sums(stage, conffiles) {
  return walk(stage)
    .filter((f) => !f.startsWith(`DEBIAN${path.sep}`) && !lstatSync(path.join(stage, f)).isSymbolicLink() && !conffiles.includes(`/${f}`))
    .map((f) => `${createHash('md5').update(readFileSync(path.join(stage, f))).digest('hex')}  ${f}\n`)
    .join('');
}

function installedSizeKiB(stage) {
  let bytes = 0;
  for (const f of walk(stage)) if (!f.startsWith(`DEBIAN${path.sep}`)) bytes += lstatSync(path.join(stage, f)).size;
  return Math.ceil(bytes / 1024);
}

/** Control file, conffiles, maintainer scripts, md5sums; then dpkg-deb. */
function build(o, pkg, stage, fields, conffiles) {
  normaliseModes(stage);
  const control = path.join(stage, 'DEBIAN');
  mkdirSync(control, { recursive: true });
  for (const s of ['postinst', 'prerm', 'postrm']) put(stage, `DEBIAN/${s}`, readFileSync(path.join(DEBIAN, pkg, s)), 0o755);
  put(stage, 'DEBIAN/conffiles', conffiles.map((c) => `${c}\n`).join(''));
  put(stage, 'DEBIAN/md5sums', md5sums(stage, conffiles));
  const text = [
    `Package: ${pkg}`,
    `Version: ${o.version}`,
    `Architecture: ${o.arch}`,
    `Maintainer: ${o.maintainer}`,
    `Installed-Size: ${installedSizeKiB(stage)}`,
    ...Object.entries(fields).filter(([, v]) => v !== undefined && v !== '').map(([k, v]) => `${k}: ${v}`),
  ].join('\n');
  put(stage, 'DEBIAN/control', `${text}\n`);
  const deb = path.join(o.out, `${pkg}_${o.version}_${o.arch}.deb`);
  rmSync(deb, { force: true });
  const r = spawnSync('dpkg-deb', ['--root-owner-group', '-Zxz', '--build', stage, deb], { encoding: 'utf8', env: { ...process.env, SOURCE_DATE_EPOCH: String(o.epoch) } });
  if (r.error?.code === 'ENOENT') fail('dpkg-deb is missing (Debian package dpkg)');
  if (r.status !== 0) fail(`dpkg-deb --build ${pkg} failed:\n${r.stderr}${r.stdout}`);
  return deb;
}

/**
 * `nodejs (>= 20.11~)` for JavaScript alone; with nan addons built for one
 * major, that line from its oldest supported release (package.json
 * "engines": `^22.11` → 22.11) to the next major.
 */
function nodeDepends(major) {
  if (major === undefined) return `nodejs (>= ${NODE_MIN}~)`;
  const engines = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).engines?.node ?? '';
  const min = new RegExp(`\\^(${major}\\.\\d+)`).exec(engines)?.[1];
  if (min === undefined) fail(`the image's addons are built for Node ${major}, which package.json "engines" (${engines}) does not support`);
  return `nodejs (>= ${min}~), nodejs (<< ${major + 1}~)`;
}

function agentPackage(o, work) {
  const pkg = 'ipphone-agent';
  const stage = path.join(work, pkg);
  const lib = path.join(o.image, 'usr/lib/ipphone');
  const files = closure(lib, ['ipphone-agent.mjs']);
  for (const f of files) put(stage, `usr/lib/ipphone/${f}`, readFileSync(path.join(lib, f)));
  const elves = needsNodeModules(lib, files) ? copyNodeModules(path.join(lib, 'node_modules'), path.join(stage, 'usr/lib/ipphone/node_modules'), o.arch) : [];
  const major = addonNodeMajor(o, path.join(stage, 'usr/lib/ipphone/node_modules'));
  put(stage, 'lib/systemd/system/ipphone-agent.service', readFileSync(path.join(o.image, 'lib/systemd/system/ipphone-agent.service')));
  for (const r of readdirSync(path.join(o.image, 'lib/udev/rules.d'))) put(stage, `lib/udev/rules.d/${r}`, readFileSync(path.join(o.image, 'lib/udev/rules.d', r)));
  put(stage, 'usr/lib/sysusers.d/ipphone-agent.conf', readFileSync(path.join(DEBIAN, pkg, 'sysusers.conf')));
  put(stage, 'usr/lib/tmpfiles.d/ipphone-agent.conf', readFileSync(path.join(DEBIAN, pkg, 'tmpfiles.conf')));
  cpSync(path.join(o.image, 'usr/share/ipphone/boards'), path.join(stage, 'usr/share/ipphone/boards'), { recursive: true });
  for (const s of ['agent-config.schema.json', 'board.schema.json']) put(stage, `usr/share/ipphone/schema/${s}`, readFileSync(path.join(o.image, 'usr/share/ipphone/schema', s)));
  // What the image's addons were built for (scripts/bundle.mjs), when it says.
  if (existsSync(path.join(o.image, 'usr/share/ipphone/image.json'))) put(stage, 'usr/share/ipphone/image.json', readFileSync(path.join(o.image, 'usr/share/ipphone/image.json')));
  put(stage, 'etc/ipphone-agent/agent.json', readFileSync(path.join(DEBIAN, pkg, 'agent.json')));
  put(stage, 'etc/ipphone-agent/board.json', readFileSync(path.join(o.image, 'usr/share/ipphone/boards/headless.json')));
  putDocs(stage, pkg, [['hw/udev/README.md', 'hw/udev/README.md']]);
  const doc = `usr/share/doc/${pkg}`;
  put(stage, `${doc}/copyright`, copyright(o, bundledPackages(new Set(files)), elves.length > 0 || existsSync(path.join(stage, 'usr/lib/ipphone/node_modules'))));
  put(stage, `${doc}/changelog.gz`, gzipSync(changelog(pkg, o.version, o.maintainer, o.epoch, o.commit), { level: 9 }).fill(0, 4, 8));
  const depends = [nodeDepends(major), ...sharedLibDepends(stage, elves.map((e) => path.join(stage, 'usr/lib/ipphone/node_modules', e)), o.arch)];
  return build(o, pkg, stage, {
    Section: 'net',
    Priority: 'optional',
    Depends: depends.join(', '),
    Recommends: 'systemd',
    Description: [
      'ipphone on-phone agent: keeps a Linux IP desk phone homed to a live call manager',
      ' The agent homes the phone to the first call manager of its signed pointer',
      ' list that answers keep-alives over MQTT, and rehomes within a second when',
      ' that call manager, its broker or its services server fails. It drives the',
      " phone's display, keypad, hook switch and lamps (serial LCD, sysfs GPIO,",
      ' kernel input devices, LED class) as its board profile says.',
      ' .',
      ' Runs as the system user ipphone under a hardened systemd unit; configure',
      ' /etc/ipphone-agent/agent.json and board.json, then enable ipphone-agent.',
    ].join('\n'),
  }, ['/etc/ipphone-agent/agent.json', '/etc/ipphone-agent/board.json']);
}

function cmPackage(o, work) {
  const pkg = 'ipphone-cm';
  const stage = path.join(work, pkg);
  const lib = path.join(o.image, 'usr/lib/ipphone');
  const files = closure(lib, ['ipphone-cm.mjs', 'ipphone-admin.mjs']);
  if (needsNodeModules(lib, files)) fail('the call manager bundle loads a package from node_modules: it would need the native addons (this script does not put them in ipphone-cm)');
  for (const f of files) put(stage, `usr/lib/ipphone/cm/${f}`, readFileSync(path.join(lib, f)));
  for (const p of ['ipphone-cm.mjs', 'ipphone-admin.mjs']) symlinkSync(`cm/${p}`, path.join(stage, 'usr/lib/ipphone', p));
  put(stage, 'lib/systemd/system/ipphone-cm.service', readFileSync(path.join(o.image, 'lib/systemd/system/ipphone-cm.service')));
  put(stage, 'usr/share/ipphone/schema/cm-config.schema.json', readFileSync(path.join(o.image, 'usr/share/ipphone/schema/cm-config.schema.json')));
  put(stage, 'etc/ipphone-cm/cm.json', readFileSync(path.join(DEBIAN, pkg, 'cm.json')));
  putDocs(stage, pkg, []);
  const doc = `usr/share/doc/${pkg}`;
  put(stage, `${doc}/copyright`, copyright(o, bundledPackages(new Set(files)), false));
  put(stage, `${doc}/changelog.gz`, gzipSync(changelog(pkg, o.version, o.maintainer, o.epoch, o.commit), { level: 9 }).fill(0, 4, 8));
  return build(o, pkg, stage, {
    Section: 'net',
    Priority: 'optional',
    Depends: nodeDepends(undefined),
    Suggests: 'mosquitto',
    Description: [
      'ipphone call manager: keep-alive responder, services server and rebalancer',
      ' One member of a group of call managers that IP desk phones running',
      ' ipphone-agent home to: it answers their keep-alives over MQTT, serves their',
      ' services pages, reports its load, signs pointer lists and moves phones to',
      " keep the group's loads even. Also ipphone-admin, the operators' tool",
      ' (/usr/lib/ipphone/ipphone-admin.mjs).',
      ' .',
      ' Runs under a hardened systemd unit with a dynamic user; its secrets reach',
      ' it by LoadCredential= from /etc/ipphone-cm. Configure',
      ' /etc/ipphone-cm/cm.json, then enable ipphone-cm.',
    ].join('\n'),
  }, ['/etc/ipphone-cm/cm.json']);
}

const o = parseArgs(process.argv.slice(2));
checkImage(o);
o.version = JSON.parse(readFileSync(path.join(ROOT, 'package.json'), 'utf8')).version;
if (!/^[0-9][A-Za-z0-9.+~]*$/.test(o.version)) fail(`package.json version ${o.version} is not a Debian native version`);
o.maintainer = process.env.IPPHONE_DEB_MAINTAINER ?? 'ipphone maintainers <ipphone@example.org>';
o.commit = git(['rev-parse', '--short=12', 'HEAD']);
o.epoch = Number(process.env.SOURCE_DATE_EPOCH ?? (git(['log', '-1', '--format=%ct']) || Math.floor(Date.now() / 1000)));
{
  const first = new Date(Number(git(['log', '--reverse', '--format=%ct', '--max-parents=0']).split('\n')[0] || o.epoch) * 1000).getUTCFullYear();
  const last = new Date(o.epoch * 1000).getUTCFullYear();
  o.years = first === last ? `${last}` : `${first}-${last}`;
}
mkdirSync(o.out, { recursive: true });
const work = mkdtempSync(path.join(tmpdir(), 'ipphone-package-'));
try {
  for (const deb of [agentPackage(o, work), cmPackage(o, work)]) {
    console.log(`${path.relative(process.cwd(), deb)}: ${(statSync(deb).size / 1024).toFixed(0)} KiB`);
  }
} finally {
  rmSync(work, { recursive: true, force: true });
}
