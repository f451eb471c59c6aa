// The packages a device image keeps beside the bundles: those with native
// addons (@serialport/bindings-cpp, onoff's epoll) and their runtime
// dependencies. Shared by scripts/bundle.mjs (stages them) and
// scripts/node-runtimes.mjs (rebuilds them per Node major).
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The roots whose closure the image needs. */
export const NATIVE_ROOTS = ['@serialport/bindings-cpp', 'onoff'];

/**
 * Packages of the closure that only a build needs: C++ headers the addons
 * compile against (epoll's nan, serialport's node-addon-api). Nothing
 * requires them at run time; scripts/bundle.mjs leaves them out of the image
 * once the addons are built (0.85 MiB of the image's addon packages).
 */
export const BUILD_ONLY = ['nan', 'node-addon-api'];

/** The runtime closure of `roots` (names, sorted), resolved in `<cwd>/node_modules`; optional dependencies not installed are left out. */
export function closure(roots = NATIVE_ROOTS, nodeModules = 'node_modules') {
  const seen = new Set();
  const walk = (name) => {
    if (seen.has(name)) return;
    const dir = path.join(nodeModules, name);
    if (!existsSync(path.join(dir, 'package.json'))) return;
    seen.add(name);
    const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8'));
    for (const dep of Object.keys({ ...pkg.dependencies, ...pkg.optionalDependencies })) walk(dep);
  };
  roots.forEach(walk);
  return [...seen].sort();
}
