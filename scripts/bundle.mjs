// `npm run bundle`: one JavaScript file per program for a device image
// (dist/bundle/*.mjs). Loading one bundled file instead of hundreds of ES
// modules cuts the agent's resident memory by about a third (bench/results.md).
// Native addons (serialport's bindings, onoff's epoll) stay external: they are
// installed next to the bundle (see README, "Device image").
import { build } from 'esbuild';

const programs = ['ipphone-agent', 'ipphone-cm', 'ipphone-fleet'];
await build({
  entryPoints: Object.fromEntries(programs.map((p) => [p, `src/bin/${p}.ts`])),
  outdir: 'dist/bundle',
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  format: 'esm',
  target: 'node20',
  minify: true,
  sourcemap: 'linked',
  external: ['serialport', '@serialport/*', 'onoff', 'epoll'],
  // Some CommonJS dependencies call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __ipphoneRequire } from 'node:module'; const require = __ipphoneRequire(import.meta.url);" },
  logLevel: 'warning',
});
console.log(`bundled ${programs.join(', ')} into dist/bundle/`);
