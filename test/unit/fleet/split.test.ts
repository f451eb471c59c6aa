import test from 'ava';
import { mkdirSync, mkdtempSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { parseFleetArgs } from '../../../src/fleet/main.js';
import { MAX_WORKERS, assertNumbers, defaultWorkers, fleetSlices, workerOf } from '../../../src/fleet/split.js';
import { compiledTwin, workerExecArgv } from '../../../src/fleet/workers.js';

test('phones are dealt round robin: phone n to worker (n - 1) mod W, ascending within a worker', (t) => {
  t.deepEqual(fleetSlices(7, 3), [
    [1, 4, 7],
    [2, 5],
    [3, 6],
  ]);
  t.deepEqual(fleetSlices(4, 1), [[1, 2, 3, 4]]);
  for (let n = 1; n <= 7; n++) t.true(fleetSlices(7, 3)[workerOf(n, 7, 3)]!.includes(n), `phone ${n}`);
});

test('the split is the same on every call, and every phone is in exactly one slice', (t) => {
  for (const [count, workers] of [
    [2000, 2],
    [2000, 3],
    [5, 64],
    [1, 1],
    [999, 7],
  ] as const) {
    const a = fleetSlices(count, workers);
    t.deepEqual(fleetSlices(count, workers), a);
    const all = a.flat().sort((x, y) => x - y);
    t.deepEqual(all, Array.from({ length: count }, (_, i) => i + 1), `${count} over ${workers}`);
    const sizes = a.map((s) => s.length);
    t.true(Math.max(...sizes) - Math.min(...sizes) <= 1, `${count} over ${workers}: sizes ${sizes.join(',')}`);
  }
});

test('never more workers than phones: 3 phones on 8 workers are 3 slices of one', (t) => {
  t.deepEqual(fleetSlices(3, 8), [[1], [2], [3]]);
  t.is(workerOf(3, 3, 8), 2);
});

test('the busy phones (1 … busy) and each start batch are shared by every worker', (t) => {
  const slices = fleetSlices(2000, 2);
  // --busy 10: phones 1-10, five per worker.
  t.deepEqual(
    slices.map((s) => s.filter((n) => n <= 10).length),
    [5, 5],
  );
});

test('a bad count or worker count is USAGE with every problem', (t) => {
  const e = t.throws(() => fleetSlices(0, 0));
  t.true(isIpphoneError(e, 'USAGE'));
  t.regex(e!.message, /count must be a positive integer \(got 0\)/);
  t.regex(e!.message, new RegExp(`workers must be an integer from 1 to ${MAX_WORKERS} \\(got 0\\)`));
  t.throws(() => fleetSlices(10, MAX_WORKERS + 1), { message: /workers must be/ });
  t.throws(() => fleetSlices(10, 1.5), { message: /workers must be/ });
});

test('the default worker count is the CPUs available, at least 1, at most MAX_WORKERS', (t) => {
  t.is(defaultWorkers(2), 2);
  t.is(defaultWorkers(0), 1);
  t.is(defaultWorkers(Number.NaN), 1);
  t.is(defaultWorkers(1000), MAX_WORKERS);
  t.true(defaultWorkers() >= 1);
});

test('a slice must ascend within 1 … count', (t) => {
  t.notThrows(() => assertNumbers([1, 4, 7], 7));
  t.notThrows(() => assertNumbers([], 7));
  for (const bad of [[0], [2, 2], [3, 1], [8], [1.5]]) t.throws(() => assertNumbers(bad, 7), { message: /phone numbers must ascend/ }, JSON.stringify(bad));
});

test('--workers W is parsed and checked; absent it is left to the default', (t) => {
  t.is(parseFleetArgs(['--config', 'a.json', '--count', '5', '--workers', '2']).workers, 2);
  t.is(parseFleetArgs(['--config', 'a.json', '--count', '5', '--workers=1']).workers, 1);
  t.is(parseFleetArgs(['--config', 'a.json', '--count', '5']).workers, undefined);
  t.deepEqual(parseFleetArgs(['--config', 'a.json', '--count', '5', '--workers', '0']), { kind: 'usage', error: `--workers must be an integer from 1 to ${MAX_WORKERS} (got 0)` });
  t.deepEqual(parseFleetArgs(['--config', 'a.json', '--count', '5', '--workers', 'x']), { kind: 'usage', error: '--workers needs a whole number (got "x")' });
});

test('workers get only per-thread node options: no tsx loader, no -e code, no V8 flags', (t) => {
  t.deepEqual(workerExecArgv(['--import', 'tsx', '--expose-gc', '--cpu-prof', '--cpu-prof-dir', '/tmp/p', '--input-type=module', '-e', 'code()']), ['--cpu-prof', '--cpu-prof-dir', '/tmp/p']);
  t.deepEqual(workerExecArgv(['--import=tsx', '--cpu-prof-dir=/tmp/p', '--enable-source-maps', '--max-old-space-size=100']), ['--cpu-prof-dir=/tmp/p', '--enable-source-maps']);
  t.deepEqual(workerExecArgv([]), []);
});

test('run from the sources, the workers need the compiled twin of every module they import, no older than its source', (t) => {
  const root = mkdtempSync(join(tmpdir(), 'ipphone-twin-'));
  t.teardown(() => rmSync(root, { recursive: true, force: true }));
  for (const d of ['src/fleet', 'src/lib', 'dist/fleet', 'dist/lib']) mkdirSync(join(root, d), { recursive: true });
  writeFileSync(join(root, 'src/fleet/w.ts'), "import { x } from '../lib/x.js';\nimport { y } from './y.js';\n");
  writeFileSync(join(root, 'src/fleet/y.ts'), 'export const y = 1;\n');
  writeFileSync(join(root, 'src/lib/x.ts'), "import { pino } from 'pino';\nexport const x = 1;\n");
  const old = new Date(Date.now() - 60_000);
  for (const f of ['src/fleet/w.ts', 'src/fleet/y.ts', 'src/lib/x.ts']) utimesSync(join(root, f), old, old);
  // x.js missing: refused, naming it.
  writeFileSync(join(root, 'dist/fleet/w.js'), '');
  writeFileSync(join(root, 'dist/fleet/y.js'), '');
  const missing = t.throws(() => compiledTwin(join(root, 'src/fleet/w.ts')));
  t.true(isIpphoneError(missing, 'USAGE'));
  t.regex(missing!.message, /dist\/lib\/x\.js\).*npm run build/);
  writeFileSync(join(root, 'dist/lib/x.js'), '');
  t.is(compiledTwin(join(root, 'src/fleet/w.ts')), join(root, 'dist/fleet/w.js'));
  // A source edited after the build: refused.
  writeFileSync(join(root, 'src/fleet/y.ts'), 'export const y = 2;\n');
  const future = new Date(Date.now() + 60_000);
  utimesSync(join(root, 'src/fleet/y.ts'), future, future);
  t.throws(() => compiledTwin(join(root, 'src/fleet/w.ts')), { message: /dist\/fleet\/y\.js/ });
});
