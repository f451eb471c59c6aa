/**
 * The agent as the device image runs it: the staged image of `npm run bundle`
 * (dist/image/usr/lib/ipphone/, with only the native-addon packages beside
 * it), node with the unit's NODE_OPTIONS (--jitless …), under W^X like
 * `MemoryDenyWriteExecute=yes` (the kernel's PR_SET_MDWE, set by a perl
 * wrapper: there is no running systemd here). It drives a 20×4 serial LCD on
 * a socat pty (serialport's native addon loads under W^X too), homes, and
 * rehomes after a real kill -9 of its call manager.
 *
 * A control run proves the wrapper bites: node with its JIT dies under it.
 */
import test from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { ROOT } from '../helpers/programs.js';
import { PtyLcd } from '../helpers/pty.js';
import { unitNodeOptions, wxWrapper } from '../helpers/unit-runtime.js';

const IMAGE_AGENT = path.join(ROOT, 'dist/image/usr/lib/ipphone/ipphone-agent.mjs');

test.before(() => {
  const r = spawnSync(process.execPath, ['scripts/bundle.mjs'], { cwd: ROOT, encoding: 'utf8', timeout: 120_000 });
  if (r.status !== 0 || !existsSync(IMAGE_AGENT)) throw new Error(`scripts/bundle.mjs failed (exit ${r.status}):\n${r.stdout}${r.stderr}`);
});

test('W^X control: node with its JIT is killed under the wrapper, node --jitless is not', (t) => {
  const wx = wxWrapper();
  if (!wx.supported) {
    t.log(`W^X cannot be enforced here (${wx.why}): the agent test below runs with the unit's options but without W^X`);
    t.pass();
    return;
  }
  const loop = 'let s = 0; const f = (x) => x + 1; for (let i = 0; i < 1e6; i++) s = f(s); console.log(s)';
  const jit = spawnSync(wx.command, [...wx.args, process.execPath, '-e', loop], { encoding: 'utf8', timeout: 30_000 });
  t.not(jit.status, 0, 'node with the JIT must not survive W^X');
  t.regex(`${jit.stderr}`, /Check failed|Fatal/);
  const jitless = spawnSync(wx.command, [...wx.args, process.execPath, ...unitNodeOptions(), '-e', loop], { encoding: 'utf8', timeout: 30_000 });
  t.is(jitless.status, 0, jitless.stderr);
  t.is(jitless.stdout.trim(), '1000000');
});

test('the image agent with the unit options under W^X: drives a serial LCD, homes, and rehomes after kill -9', async (t) => {
  t.timeout(120_000);
  const wx = wxWrapper();
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const lcd = await PtyLcd.forTest(t);

  const c = await Cluster.group(t, mosq.url);
  const agent = c.startAgentWith('p-image', [...unitNodeOptions(), IMAGE_AGENT, '--config', c.agentConfig('p-image', { board: lcd.board })], wx.supported ? wx : undefined);
  await c.waitHome('p-image', 'cm-a', 30_000).catch((err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-3000)}`);
  });
  await waitFor(() => lcd.screen()[0]!.startsWith('CM cm-a'), { timeoutMs: 10_000, what: `screen shows CM cm-a; got ${JSON.stringify(lcd.screen())}` });

  c.cms.get('cm-a')!.signal('SIGKILL');
  await c.waitHome('p-image', 'cm-b', 10_000);
  t.like(c.events('p-image', 'rehomed').at(-1)?.payload, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
  await waitFor(() => lcd.screen()[0]!.startsWith('CM cm-b'), { timeoutMs: 10_000, what: `screen shows CM cm-b; got ${JSON.stringify(lcd.screen())}` });
  t.is(agent.child.exitCode, null, 'the agent still runs');
  t.notRegex(agent.output(), /Check failed|Fatal error|expose_wasm/, 'no V8 abort, no flag warning');
  t.deepEqual(lcd.reader.emu.errors, []);
  t.log(wx.supported ? 'ran under PR_SET_MDWE (W^X)' : `ran WITHOUT W^X: ${wx.why}`);
});
