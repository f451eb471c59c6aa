/**
 * What the image's agent loads at start (issue 18: load nothing a board or a
 * config does not use). The staged image's agent (npm run bundle) is run on
 * a headless board, on each supported Node line with the unit's options, with
 * a broker that refuses the connection (the connect path runs; nothing else is
 * needed to see what it loads), and stopped with SIGTERM; a preload records
 * node's `process.moduleLoadList` at exit (process.getBuiltinModule: the
 * preload itself loads nothing).
 *
 * The built-in modules below cost RSS (bench/results-footprint.md) and an
 * `mqtt:` agent with an `http:` services page runs none of their code; an
 * `mqtts:` agent needs node:tls, and only that.
 */
import test from 'ava';
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { freePort } from '../helpers/net.js';
import { nodeRuntime, stageRuntimeImage, SUPPORTED_MAJORS } from '../helpers/node-runtimes.js';
import { ROOT } from '../helpers/programs.js';
import { unitNodeOptions } from '../helpers/unit-runtime.js';

const dir = mkdtempSync(path.join(tmpdir(), 'ipphone-image-loads-'));
test.after.always(() => rmSync(dir, { recursive: true, force: true }));

const PRELOAD = path.join(dir, 'module-list.mjs');
writeFileSync(PRELOAD, "process.on('exit', () => process.getBuiltinModule('node:fs').writeFileSync(process.env.IPPHONE_MODULE_LIST, JSON.stringify(process.moduleLoadList)));\n");

/**
 * Modules the agent has no use for at start, whatever its config. The last five
 * came with nothing the agent runs: node:os with pino's default hostname,
 * node:tty with the debug package (DEBUG unset), and, on Node 22 and 24, the
 * lazy exports of node:util (parseArgs, diff, setTraceSigInt with
 * worker_threads; also fs.Dir, but Node 20's own ES module loader loads that)
 * materialised by esbuild's interop (scripts/lib/builtin-require.mjs).
 */
const NEVER = [
  'NativeModule zlib',
  'NativeModule assert',
  'NativeModule fs/promises',
  'NativeModule https',
  'NativeModule os',
  'NativeModule tty',
  'NativeModule worker_threads',
  'NativeModule internal/util/parse_args/parse_args',
];

/** Run the image agent until it has tried its broker once; the built-in modules it loaded. */
async function loaded(major: (typeof SUPPORTED_MAJORS)[number], scheme: 'mqtt' | 'mqtts'): Promise<string[]> {
  const rt = nodeRuntime(major);
  const lib = stageRuntimeImage(rt);
  const port = await freePort(); // nothing listens: the connection is refused
  const tag = `${major}-${scheme}`;
  const config = path.join(dir, `${tag}.json`);
  writeFileSync(
    config,
    JSON.stringify({
      phoneId: `p-loads-${major}`,
      pointers: [{ id: 'cm-a', broker: `${scheme}://127.0.0.1:${port}`, services: `http://127.0.0.1:${port}/services` }],
      stateDir: path.join(dir, `state-${tag}`),
      trust: { requireSigned: false, keys: {} },
      log: { level: 'info' },
    }),
  );
  const out = path.join(dir, `${tag}.modules.json`);
  const child = spawn(rt.node, [...unitNodeOptions(), '--import', PRELOAD, path.join(lib, 'ipphone-agent.mjs'), '--config', config, '--board', path.join(ROOT, 'hw/boards/headless.json')], {
    env: { ...process.env, IPPHONE_MODULE_LIST: out },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let log = '';
  child.stdout.setEncoding('utf8').on('data', (s: string) => (log += s));
  child.stderr.setEncoding('utf8').on('data', (s: string) => (log += s));
  const exited = new Promise<number | null>((done) => child.once('exit', (code) => done(code)));
  const deadline = Date.now() + 60_000;
  while (!log.includes('"reason":"connect-failed"')) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill('SIGKILL');
      throw new Error(`the agent never tried its broker:\n${log.slice(-2000)}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  child.kill('SIGTERM');
  const code = await exited;
  if (code !== 0) throw new Error(`the agent exited ${code}:\n${log.slice(-2000)}`);
  return JSON.parse(readFileSync(out, 'utf8')) as string[];
}

for (const major of SUPPORTED_MAJORS) {
  test(`Node ${major}: an mqtt: agent on a headless board loads neither node:tls, node:https, node:zlib, node:assert, node:fs/promises, node:os, node:tty, worker_threads nor, before its first services fetch, node:http`, async (t) => {
    const mods = await loaded(major, 'mqtt');
    t.true(mods.includes('NativeModule net'), 'it did connect');
    t.false(mods.includes('NativeModule http'), 'node:http waits for the first services fetch (it never homed, so it fetched none)');
    t.deepEqual(
      mods.filter((m) => [...NEVER, 'NativeModule tls'].includes(m)),
      [],
    );
  });

  test(`Node ${major}: an mqtts: agent loads node:tls, and still none of node:https, node:zlib, node:assert, node:fs/promises, node:os, node:tty, worker_threads`, async (t) => {
    const mods = await loaded(major, 'mqtts');
    t.true(mods.includes('NativeModule tls'));
    t.deepEqual(
      mods.filter((m) => NEVER.includes(m)),
      [],
    );
  });
}

test('with DEBUG set at start the image agent still prints mqtt.js debug lines (scripts/shims/debug-lazy.cjs evaluates the real debug package then)', async (t) => {
  const rt = nodeRuntime(20);
  const lib = stageRuntimeImage(rt);
  const port = await freePort();
  const config = path.join(dir, 'debug.json');
  writeFileSync(
    config,
    JSON.stringify({
      phoneId: 'p-loads-debug',
      pointers: [{ id: 'cm-a', broker: `mqtt://127.0.0.1:${port}`, services: `http://127.0.0.1:${port}/services` }],
      stateDir: path.join(dir, 'state-debug'),
      trust: { requireSigned: false, keys: {} },
      log: { level: 'info' },
    }),
  );
  const child = spawn(rt.node, [...unitNodeOptions(), path.join(lib, 'ipphone-agent.mjs'), '--config', config, '--board', path.join(ROOT, 'hw/boards/headless.json')], {
    env: { ...process.env, DEBUG: 'mqttjs:client' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let err = '';
  child.stderr.setEncoding('utf8').on('data', (s: string) => (err += s));
  child.stdout.resume();
  const exited = new Promise<void>((done) => child.once('exit', () => done()));
  const deadline = Date.now() + 60_000;
  while (!err.includes('mqttjs:client') && Date.now() < deadline && child.exitCode === null) await new Promise((r) => setTimeout(r, 50));
  child.kill('SIGKILL');
  await exited;
  t.true(err.includes('mqttjs:client'), `no mqtt.js debug line on stderr:\n${err.slice(-1000)}`);
});
