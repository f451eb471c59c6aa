// `npm run bundle`: what goes onto a device image.
//
//   dist/bundle/*.mjs          one JavaScript file per program (esbuild), and
//   dist/bundle/chunks/*.mjs   code loaded on demand (board drivers: serial LCD,
//                              GPIO) or shared by several programs
//   dist/image/                a staging root filesystem (this machine's arch;
//                              `--arch arm64` / `--arch armhf` stage dist/image-arm64/,
//                              dist/image-armhf/ with the same layout):
//     usr/lib/ipphone/*.mjs            the bundles
//     usr/lib/ipphone/node_modules/    only the native-addon packages (@serialport/bindings-cpp, onoff) and their
//                                      run-time deps (not the C++ headers they build with: BUILD_ONLY)
//     lib/systemd/system/*.service     the units
//     usr/share/ipphone/boards/*.json  board profiles, and the schemas
//     lib/udev/rules.d/99-ipphone-gpio.rules, 99-ipphone-input.rules
//     usr/share/ipphone/image.json     the image's arch (Node and Debian names), the Node line
//                                      its addons are built for, and each addon with `file`'s word on it
//
// `--arch A` (arm64, armhf; x64/amd64 is this machine): serialport's prebuilds
// pruned to the target's, onoff's epoll cross-built with Debian's cross
// compiler against npm's node-linux-<arch>@MAJOR headers (`--node MAJOR`,
// default 22 for arm64, 20 for armhf: npm has no newer armv7l Node);
// scripts/lib/cross-addons.mjs. Every image's prebuilds are pruned to its
// own arch (glibc), and every .node file in it is checked with `file`.
//
// Loading one bundled file instead of hundreds of ES modules cuts the agent's
// resident memory by about a third (bench/results.md). Native addons stay
// external: they are built for the target (see README, "Device image").
// Splitting keeps dynamic imports lazy: without it esbuild would inline the
// board drivers and hoist their `import 'serialport'` to the top of the
// program, loading serialport, onoff and their dependencies on every phone,
// headless ones included.
import { build } from 'esbuild';
import { cpSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { BUILD_ONLY, closure, NATIVE_ROOTS } from './lib/native-addons.mjs';
import { checkAddons, crossBuildAddons, fetchNode, hostTarget, prunePrebuilds, sizeOf, targetOf, tidyBuild } from './lib/cross-addons.mjs';
import { builtinRequire } from './lib/builtin-require.mjs';

const argv = process.argv.slice(2);
const opt = (name) => {
  const i = argv.indexOf(name);
  if (i < 0) return undefined;
  if (argv[i + 1] === undefined || argv[i + 1].startsWith('--')) {
    console.error(`bundle: ${name} needs a value`);
    process.exit(2);
  }
  return argv[i + 1];
};
const unknown = argv.filter((a, i) => a.startsWith('--') && !['--arch', '--node'].includes(a) && !['--arch', '--node'].includes(argv[i - 1]));
if (unknown.length > 0) {
  console.error(`usage: node scripts/bundle.mjs [--arch x64|arm64|armhf] [--node MAJOR]  (unknown: ${unknown.join(' ')})`);
  process.exit(2);
}
/** A bad flag: one line on stderr, exit 2. */
const usage = (why) => {
  console.error(`bundle: ${why}\nusage: node scripts/bundle.mjs [--arch x64|arm64|armhf] [--node MAJOR]`);
  process.exit(2);
};
let target;
try {
  target = targetOf(opt('--arch') ?? process.arch);
} catch (err) {
  usage(err.message);
}
const native = target === hostTarget();
if (native && opt('--node') !== undefined) usage(`--node is for cross images: the ${target.name} image's addons are the ones npm ci built for this node (${process.version})`);
const major = Number(opt('--node') ?? target.defaultMajor);
if (!Number.isInteger(major) || major < 20) usage(`--node ${opt('--node')}: a Node major, 20 or later (engines)`);

const programs = ['ipphone-agent', 'ipphone-cm', 'ipphone-fleet', 'ipphone-admin'];
// Native addons stay outside the bundle (built for the target; see README, "Device image"):
// onoff with its epoll addon, and node-gyp-build, which loads serialport's addon at run time.
const external = ['onoff', 'epoll', 'node-gyp-build'];
const root = path.resolve('.');

/**
 * serialport's JavaScript is bundled (from node_modules it was dozens of
 * CommonJS files and three more copies of `debug`; bundled, an agent with a
 * serial LCD measured 0.8 MiB less RSS); only its native addon stays in
 * node_modules:
 * - `node-gyp-build` as imported by @serialport/bindings-cpp is replaced by a
 *   shim that finds the addon in the package directory at run time;
 * - every `debug` import is the one copy already bundled for mqtt.js.
 */
const serialportInBundle = {
  name: 'serialport-in-bundle',
  setup(b) {
    b.onResolve({ filter: /^node-gyp-build$/ }, (args) =>
      args.importer.includes(`${path.sep}@serialport${path.sep}bindings-cpp${path.sep}`) ? { path: path.join(root, 'scripts/shims/serialport-addon.cjs') } : undefined,
    );
    b.onResolve({ filter: /^debug$/ }, (args) => (args.importer === path.join(root, 'scripts/shims/debug-lazy.cjs') ? undefined : { path: path.join(root, 'scripts/shims/debug-lazy.cjs') }));
  },
};
/**
 * Code no ipphone program runs, kept out of the bundle or left unevaluated
 * until asked for (systemd/README.md, "Footprint", has what each saved),
 * each replaced by a file in scripts/shims/ that says why:
 * - mqtt.js's SOCKS proxy connector (socks, ip-address, smart-buffer): a
 *   stand-in whose connection fails with SOCKS_UNSUPPORTED;
 * - mqtt.js's WebSocket connector (the ws package) is evaluated on the first
 *   `ws:`/`wss:` connection instead of on every connect;
 * - worker-timers (browser web workers only): the native timers;
 * - readable-stream: node:stream, which it is a copy of;
 * - pino's thread-stream (transports run in a worker thread; never used,
 *   STYLE.md) and its worker_threads import for `isMainThread`;
 * - TypeBox's `Value` namespace: only the operations the sources use;
 * - fast-xml-parser is evaluated on the first Cisco XML screen parsed, not
 *   at start (headless phones never parse one).
 * - mqtt.js's TLS connector (node:tls) is evaluated on the first `mqtts:`
 *   connection, not on every connect; node:assert in sonic-boom (one check),
 *   node:fs/promises in src/store/durable-file.ts (four calls) and node:zlib
 *   in src/store/crc32.ts (its table CRC is the same) are not loaded at all
 *   (bench/results-footprint.md has what each saved).
 * - node:os in pino.js (one hostname() for its default base, which no ipphone
 *   logger uses) is not loaded; debug (mqtt.js, mqtt-packet, serialport) is
 *   evaluated only when DEBUG is set at start (it loads node:tty).
 */
const shim = (name) => ({ path: path.join(root, 'scripts/shims', name) });
const from = (args, ...parts) => args.importer.includes(path.join('node_modules', ...parts));
const unusedCodeOut = {
  name: 'unused-code-out',
  setup(b) {
    b.onResolve({ filter: /^\.\/socks$/ }, (args) => (from(args, 'mqtt', 'build', 'lib', 'connect') ? shim('mqtt-socks.cjs') : undefined));
    b.onResolve({ filter: /^\.\/ws$/ }, (args) => (from(args, 'mqtt', 'build', 'lib', 'connect', 'index.js') ? shim('mqtt-ws-lazy.cjs') : undefined));
    b.onResolve({ filter: /^worker-timers$/ }, () => shim('worker-timers.cjs'));
    b.onResolve({ filter: /^readable-stream$/ }, () => shim('readable-stream.cjs'));
    b.onResolve({ filter: /^thread-stream$/ }, () => shim('thread-stream.cjs'));
    b.onResolve({ filter: /^@sinclair\/typebox\/value$/ }, (args) => (args.importer.startsWith(path.join(root, 'src') + path.sep) ? shim('typebox-value.mjs') : undefined));
    b.onResolve({ filter: /^fast-xml-parser$/ }, (args) => (args.importer.startsWith(path.join(root, 'src') + path.sep) ? shim('fast-xml-parser-lazy.cjs') : undefined));
    b.onResolve({ filter: /^worker_threads$/ }, (args) => (from(args, 'pino', 'lib', 'tools.js') ? shim('pino-main-thread.cjs') : undefined));
    b.onResolve({ filter: /^\.\/tls$/ }, (args) => (from(args, 'mqtt', 'build', 'lib', 'connect', 'index.js') ? shim('mqtt-tls-lazy.cjs') : undefined));
    b.onResolve({ filter: /^assert$/ }, (args) => (from(args, 'sonic-boom') ? shim('assert-lite.cjs') : undefined));
    b.onResolve({ filter: /^node:fs\/promises$/ }, (args) => (args.importer === path.join(root, 'src/store/durable-file.ts') ? shim('fs-promises-lite.mjs') : undefined));
    b.onResolve({ filter: /^node:zlib$/ }, (args) => (args.importer === path.join(root, 'src/store/crc32.ts') ? shim('zlib-crc32-table.mjs') : undefined));
    b.onResolve({ filter: /^(node:)?os$/ }, (args) => (args.importer.endsWith(path.join('node_modules', 'pino', 'pino.js')) ? shim('pino-os.cjs') : undefined));
  },
};
rmSync('dist/bundle', { recursive: true, force: true });
const result = await build({
  entryPoints: Object.fromEntries(programs.map((p) => [p, `src/bin/${p}.ts`])),
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  splitting: true,
  chunkNames: 'chunks/[name]-[hash]',
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  external,
  plugins: [serialportInBundle, unusedCodeOut, builtinRequire(root)],
  metafile: true,
  // Some CommonJS dependencies call require() or read __dirname; give each ESM file both
  // (@serialport/bindings-cpp passes its __dirname to the node-gyp-build shim, which ignores it).
  banner: {
    js: "import { createRequire as __ipphoneRequire } from 'node:module'; import { dirname as __ipphoneDirname } from 'node:path'; import { fileURLToPath as __ipphonePath } from 'node:url'; const require = __ipphoneRequire(import.meta.url); const __dirname = __ipphoneDirname(__ipphonePath(import.meta.url));",
  },
  logLevel: 'warning',
});
writeFileSync('dist/bundle/meta.json', JSON.stringify(result.metafile));

const image = native ? 'dist/image' : `dist/image-${target.name}`;
rmSync(image, { recursive: true, force: true });
const lib = path.join(image, 'usr/lib/ipphone');
mkdirSync(lib, { recursive: true });
for (const p of programs) cpSync(`dist/bundle/${p}.mjs`, path.join(lib, `${p}.mjs`));
cpSync('dist/bundle/chunks', path.join(lib, 'chunks'), { recursive: true, filter: (src) => !src.endsWith('.map') });
// The packages with native addons (their JavaScript is in the bundle too; the addons and node-gyp-build are used from here).
const natives = closure(NATIVE_ROOTS);
for (const name of natives) cpSync(path.join('node_modules', name), path.join(lib, 'node_modules', name), { recursive: true, dereference: true });
const addonDir = path.join(lib, 'node_modules');
const unpruned = sizeOf(addonDir);
let addonInfo;
let addonNode;
if (native) {
  // npm ci's own builds (epoll) keep only their .node files, as cross builds do.
  const prunedBytes = prunePrebuilds(addonDir, target) + natives.reduce((n, name) => n + tidyBuild(path.join(addonDir, name)), 0);
  addonInfo = { prunedBytes, built: [], addons: checkAddons(addonDir, target) };
  addonNode = { version: process.version, modules: process.versions.modules };
} else {
  const cache = path.resolve(process.env.IPPHONE_NODE_CACHE || (process.env.XDG_CACHE_HOME ? path.join(process.env.XDG_CACHE_HOME, 'ipphone-node') : 'node_modules/.cache/ipphone-node'));
  let rt;
  try {
    rt = fetchNode(target, major, cache, (m) => console.error(`bundle: ${m}`));
    addonInfo = crossBuildAddons(addonDir, target, rt.nodedir, (m) => console.error(`bundle: ${m}`));
  } catch (err) {
    // A missing Node for the target or cross compiler is an operator's problem, not a crash: the reason alone.
    rmSync(image, { recursive: true, force: true });
    console.error(`bundle: ${image}/ not staged: ${err.message}`);
    process.exit(1);
  }
  addonNode = { version: rt.version, modules: readFileSync(path.join(rt.nodedir, 'include/node/node_version.h'), 'utf8').match(/#define NODE_MODULE_VERSION (\d+)/)[1] };
}
cpSync('systemd', path.join(image, 'lib/systemd/system'), { recursive: true, filter: (src) => !src.endsWith('.md') });
cpSync('hw/boards', path.join(image, 'usr/share/ipphone/boards'), { recursive: true });
cpSync('schema', path.join(image, 'usr/share/ipphone/schema'), { recursive: true });
mkdirSync(path.join(image, 'lib/udev/rules.d'), { recursive: true });
cpSync('hw/udev/99-ipphone-gpio.rules', path.join(image, 'lib/udev/rules.d/99-ipphone-gpio.rules'));
cpSync('hw/udev/99-ipphone-input.rules', path.join(image, 'lib/udev/rules.d/99-ipphone-input.rules'));
// The addons are built: the C++ header packages they compiled against are not needed on the phone.
const buildOnlyBytes = BUILD_ONLY.filter((n) => natives.includes(n)).reduce((n, name) => n + sizeOf(path.join(addonDir, name)), 0);
for (const name of BUILD_ONLY) rmSync(path.join(addonDir, name), { recursive: true, force: true });
writeFileSync(
  path.join(image, 'usr/share/ipphone/image.json'),
  `${JSON.stringify({ arch: target.arch, debArch: target.deb, node: { major: Number(addonNode.version.slice(1).split('.')[0]), version: addonNode.version, modules: Number(addonNode.modules) }, addons: addonInfo.addons }, null, 2)}\n`,
);
const mib = (n) => `${(n / 1048576).toFixed(2)} MiB`;
console.log(`bundled ${programs.join(', ')} into dist/bundle/; staged ${image}/ (${target.name}, addons for Node ${addonNode.version}) with ${natives.length} native-addon packages`);
console.log(
  `  image ${mib(sizeOf(image))}; native-addon packages ${mib(sizeOf(addonDir))} (${mib(unpruned)} as copied: other platforms' prebuilds and build by-products ${mib(addonInfo.prunedBytes)}, build-only ${BUILD_ONLY.join(', ')} ${mib(buildOnlyBytes)} left out)${addonInfo.built.length ? `; cross-built ${addonInfo.built.join(', ')}` : ''}`,
);
for (const a of addonInfo.addons) console.log(`  ${a.file}: ${a.kind.split(',').slice(0, 2).join(',')}`);
