/**
 * The agent as the device image runs it, on every supported Node line: the
 * staged image of `npm run bundle` (dist/image/usr/lib/ipphone/, with only the
 * native-addon packages beside it, rebuilt for that runtime), node with the
 * unit's options (--jitless …), under W^X like
 * `MemoryDenyWriteExecute=yes` (the kernel's PR_SET_MDWE, set by a perl
 * wrapper: there is no running systemd here). It drives a 20×4 serial LCD on
 * a socat pty (serialport's native addon loads under W^X too), homes, and
 * rehomes after a real kill -9 of its call manager.
 *
 * A control run proves the wrapper bites: node with its JIT dies under it.
 * test/integration/unit-exec runs the unit's own command line; this one adds
 * the serial LCD (serialport's addon) to the runtimes' matrix.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, readlinkSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { Cluster, type Wrapper } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { ensureImage, nodeRuntime, stageRuntimeImage, SUPPORTED_MAJORS, type NodeRuntime } from '../helpers/node-runtimes.js';
import { ROOT } from '../helpers/programs.js';
import { PtyLcd } from '../helpers/pty.js';
import { unitNodeOptions, wxWrapper, type WxWrapper } from '../helpers/unit-runtime.js';


test.before(() => {
  ensureImage();
});

test('the x64 image holds only this machine\'s addons: serialport keeps only its linux-x64 glibc prebuild, no C++ header packages, every .node file an x86-64 ELF', (t) => {
  const nm = path.join(ROOT, 'dist/image/usr/lib/ipphone/node_modules');
  t.deepEqual(readdirSync(path.join(nm, '@serialport/bindings-cpp/prebuilds')), ['linux-x64']);
  t.deepEqual(readdirSync(path.join(nm, '@serialport/bindings-cpp/prebuilds/linux-x64')), ['@serialport+bindings-cpp.glibc.node']);
  for (const headers of ['nan', 'node-addon-api']) t.false(existsSync(path.join(nm, headers)), `${headers} is not in the image`);
  t.deepEqual(readdirSync(path.join(nm, 'epoll/build/Release')), ['epoll.node'], 'of npm ci\'s build of epoll only the addon');
  const addons = readdirSync(nm, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && e.name.endsWith('.node'));
  t.true(addons.length >= 2);
  for (const a of addons) t.regex(spawnSync('file', ['-b', path.join(a.parentPath, a.name)], { encoding: 'utf8' }).stdout, /^ELF 64-bit LSB shared object, x86-64/, a.name);
  t.like(JSON.parse(readFileSync(path.join(ROOT, 'dist/image/usr/share/ipphone/image.json'), 'utf8')), { arch: 'x64', debArch: 'amd64', node: { modules: Number(process.versions.modules) } });
});

/**
 * Cluster runs `WRAPPER… process.execPath ARGS…`; this wrapper swaps that
 * node for the runtime's (and goes through W^X when it can).
 */
function runtimeWrapper(rt: NodeRuntime, wx: WxWrapper): Wrapper {
  const q = (a: string): string => `'${a.replace(/'/g, `'\\''`)}'`;
  const prefix = wx.supported ? [wx.command, ...wx.args].map(q).join(' ') : '';
  return { command: '/bin/sh', args: ['-c', `node=$1; shift 2; exec ${prefix} "$node" "$@"`, 'sh', rt.node] };
}

for (const major of SUPPORTED_MAJORS) {
  test(`Node ${major}: the image's addons are built for this runtime: onoff's epoll (a nan addon, one ABI per Node line) and serialport load on it`, (t) => {
    const rt = nodeRuntime(major);
    const lib = stageRuntimeImage(rt);
    const js = "const { Epoll } = require('epoll'); new Epoll(() => {}).close(); require('onoff'); require('node-gyp-build')(require('node:path').dirname(require.resolve('@serialport/bindings-cpp/package.json'))); console.log(process.versions.modules)";
    const r = spawnSync(rt.node, [...unitNodeOptions(), '-e', js], { cwd: lib, encoding: 'utf8', timeout: 60_000 });
    t.is(r.status, 0, r.stderr);
    t.is(r.stdout.trim(), { 20: '115', 22: '127', 24: '137' }[major]);
  });

  test(`Node ${major}: W^X control: node with its JIT is killed under the wrapper, node with the unit's options is not`, (t) => {
    const rt = nodeRuntime(major);
    const wx = wxWrapper();
    if (!wx.supported) {
      t.log(`W^X cannot be enforced here (${wx.why}): the agent test below runs with the unit's options but without W^X`);
      t.pass();
      return;
    }
    const loop = 'let s = 0; const f = (x) => x + 1; for (let i = 0; i < 1e6; i++) s = f(s); console.log(s)';
    const jit = spawnSync(wx.command, [...wx.args, rt.node, '-e', loop], { encoding: 'utf8', timeout: 30_000 });
    t.not(jit.status, 0, 'node with the JIT must not survive W^X');
    t.regex(`${jit.stderr}`, /Check failed|Fatal/);
    const jitless = spawnSync(wx.command, [...wx.args, rt.node, ...unitNodeOptions(), '-e', loop], { encoding: 'utf8', timeout: 30_000 });
    t.is(jitless.status, 0, jitless.stderr);
    t.is(jitless.stdout.trim(), '1000000');
  });

  test(`Node ${major}: the image agent with the unit options under W^X: drives a serial LCD, homes, and rehomes after kill -9`, async (t) => {
    t.timeout(150_000);
    const rt = nodeRuntime(major);
    const agentPath = path.join(stageRuntimeImage(rt), 'ipphone-agent.mjs');
    const wx = wxWrapper();
    const mosq = await startMosquitto();
    t.teardown(() => mosq.stop());
    const lcd = await PtyLcd.forTest(t);

    const c = await Cluster.group(t, mosq.url);
    const agent = c.startAgentWith('p-image', [...unitNodeOptions(), agentPath, '--config', c.agentConfig('p-image', { board: lcd.board })], runtimeWrapper(rt, wx));
    await c.waitHome('p-image', 'cm-a', 30_000).catch((err: Error) => {
      throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
    });
    await waitFor(() => lcd.screen()[0]!.startsWith('CM cm-a'), { timeoutMs: 10_000, what: `screen shows CM cm-a; got ${JSON.stringify(lcd.screen())}` });

    c.cms.get('cm-a')!.signal('SIGKILL');
    await c.waitHome('p-image', 'cm-b', 10_000);
    t.like(await c.lastMove('p-image', 'cm-b'), { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
    await waitFor(() => lcd.screen()[0]!.startsWith('CM cm-b'), { timeoutMs: 10_000, what: `screen shows CM cm-b; got ${JSON.stringify(lcd.screen())}` });
    t.is(agent.child.exitCode, null, 'the agent still runs');
    t.is(readlinkSync(`/proc/${agent.pid}/exe`), realpathSync(rt.node), `the agent runs on node ${rt.version}`);
    // Node 20/22 say once that --jitless turns WebAssembly off (expose_wasm); nothing else from V8.
    t.notRegex(agent.output(), /Check failed|Fatal error|ReferenceError|bad option/, 'no V8 abort, no crash');
    t.deepEqual(lcd.reader.emu.errors, []);
    t.log(`node ${rt.version}; ${wx.supported ? 'ran under PR_SET_MDWE (W^X)' : `ran WITHOUT W^X: ${wx.why}`}`);
  });
}
