// esbuild plugin for scripts/bundle.mjs: the sources' `import … from 'node:X'`
// become `require('node:X')` (the bundle's banner defines `require`).
//
// Why: an ES module import of a built-in module goes through node's ES module
// facade of it, which reads every export once — and so runs every lazy getter
// that built-in has: `fs.promises` loads node:fs/promises (with readline,
// fs.watch and stream helpers), `crypto.webcrypto` the whole Web Crypto
// implementation, and so on, on every start, for code the programs never
// call. require() returns the module object itself; esbuild's ESM interop
// (__toESM) reads a property only when the code uses it. Measured on the
// agent (bench/results-footprint.md).
//
// The module object is handed over as the prototype of an empty object, not
// as itself: esbuild's ESM interop (__toESM) copies a CommonJS module's own
// properties as getters and asks each for its property descriptor, and on
// Node 22 and 24 asking a built-in for the descriptor of a lazy export
// materialises it — util.parseArgs, util.diff and util.setTraceSigInt (which
// loads worker_threads), fs.Dir, buffer.File: modules nothing here uses. With
// no own properties there is nothing to copy; every import still finds its
// export through the prototype, when the code uses it (measured on the agent:
// bench/results-footprint.md, "What was cut").
//
// Only import statements in this repository's sources (and scripts/shims/) are rewritten;
// dependencies' own require() calls are already plain requires.
import path from 'node:path';

export function builtinRequire(root) {
  const ours = [path.join(root, 'src') + path.sep, path.join(root, 'scripts', 'shims') + path.sep];
  return {
    name: 'builtin-require',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (args) => (args.kind === 'import-statement' && ours.some((dir) => args.importer.startsWith(dir)) ? { path: args.path, namespace: 'builtin-require' } : undefined));
      b.onLoad({ filter: /.*/, namespace: 'builtin-require' }, (args) => ({ contents: `module.exports = Object.create(require(${JSON.stringify(args.path)}));`, loader: 'js' }));
    },
  };
}
