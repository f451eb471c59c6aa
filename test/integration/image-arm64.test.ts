/**
 * The arm64 device image (`npm run bundle -- --arch arm64`, dist/image-arm64)
 * on an arm64 Node under qemu-aarch64-static, started as
 * systemd/ipphone-agent.service's `Environment=` and `ExecStart=` say
 * (test/helpers/cross-image.ts says what qemu-user leaves out): on a board
 * whose kernel drives the keys (keypad.driver "evdev" on a FIFO fed with
 * arm64's 24-byte `struct input_event` records), LED-class lamps in temp
 * directories, and a 20×4 serial LCD on a socat pty, so that serialport's
 * arm64 addon is really loaded. It homes to a real mosquitto and call
 * managers (native x64 processes), shows its home on the LCD, takes a key,
 * and rehomes after a real kill -9 of its call manager.
 *
 * Beside it, in the same run and on the same group, the x64 image on the
 * machine's Node line of the same major does the same: the start → homed and
 * kill -9 → rehomed times of both are logged as a ratio (not asserted:
 * figures belong in the report; the machine is shared and loaded).
 *
 * A machine without qemu-user-static or the arm64 libraries fails here with
 * the packages to install: .ci/run installs them.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, type Proc } from '../helpers/cluster.js';
import { arm64ImageFor, arm64Runtime, ensureArm64Image, requireArm64Tools, startAgentUnit } from '../helpers/cross-image.js';
import { FifoFeeder, ev } from '../helpers/evdev-fifo.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { nodeRuntime, stageRuntimeImage } from '../helpers/node-runtimes.js';
import { PtyLcd, tempDir } from '../helpers/pty.js';
import { KEY_CODES } from '../../src/hw/input-codes.js';
import { ROOT } from '../helpers/programs.js';

test.before(() => {
  requireArm64Tools();
  ensureArm64Image();
});

const nodeFilesIn = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.node'))
    .map((e) => join(e.parentPath, e.name));

test('the arm64 image holds only arm64 addons: every .node file is an aarch64 ELF, serialport keeps only its linux-arm64 glibc prebuild, epoll is cross-built for the Node line image.json names', (t) => {
  const top = ensureArm64Image();
  const nm = join(top, 'usr/lib/ipphone/node_modules');
  const files = nodeFilesIn(nm);
  t.true(files.length >= 2, `addons found: ${files.join(', ')}`);
  for (const f of files) {
    const kind = spawnSync('file', ['-b', f], { encoding: 'utf8' }).stdout;
    t.regex(kind, /^ELF 64-bit LSB shared object, ARM aarch64/, f);
  }
  t.deepEqual(readdirSync(join(nm, '@serialport/bindings-cpp/prebuilds')), ['linux-arm64']);
  t.deepEqual(readdirSync(join(nm, '@serialport/bindings-cpp/prebuilds/linux-arm64')), ['@serialport+bindings-cpp.armv8.glibc.node']);
  t.deepEqual(readdirSync(join(nm, 'epoll/build/Release')), ['epoll.node'], 'only the addon is kept of the cross build');
  const manifest = JSON.parse(readFileSync(join(top, 'usr/share/ipphone/image.json'), 'utf8')) as { arch: string; debArch: string; node: { major: number; modules: number } };
  t.like(manifest, { arch: 'arm64', debArch: 'arm64', node: { major: 22, modules: 127 } });
  // The same layout as the native image: the same files but for the addons' own.
  const rel = (root: string): string[] =>
    readdirSync(root, { recursive: true, withFileTypes: true })
      .filter((e) => e.isFile() && !e.parentPath.includes('/node_modules/') && !e.name.endsWith('.node') && e.name !== 'image.json')
      // Chunk names carry a content hash: the two images may have been bundled from different states of the tree.
      .map((e) => join(e.parentPath, e.name).slice(root.length).replace(/-[A-Z0-9]{8}\.mjs$/, '-HASH.mjs'))
      .filter((f, i, all) => all.indexOf(f) === i)
      .sort();
  const nativeTop = join(ROOT, 'dist/image');
  if (existsSync(nativeTop)) t.deepEqual(rel(top), rel(nativeTop), 'dist/image-arm64 has the layout of dist/image');
});

interface Phone {
  proc: Proc;
  lcd: PtyLcd;
  keys: FifoFeeder;
  leds: Record<string, string>;
  startedAt: number;
}

/** A phone on an evdev board (keypad FIFO fed as `arch` lays records out, LED lamps, serial LCD), its unit started with `node`. */
async function phone(t: ExecutionContext, c: Cluster, id: string, arch: string, node: string[], lib: string): Promise<Phone> {
  const lcd = await PtyLcd.forTest(t);
  const tmp = tempDir(`ipphone-${id}-`);
  t.teardown(tmp.remove);
  const etc = join(tmp.dir, 'etc');
  const state = join(tmp.dir, 'state');
  mkdirSync(etc);
  mkdirSync(state, { mode: 0o700 });
  const leds: Record<string, string> = {};
  for (const name of ['green:message', 'red:no-service']) {
    leds[name] = join(tmp.dir, 'leds', name);
    mkdirSync(leds[name]!, { recursive: true });
    writeFileSync(join(leds[name]!, 'max_brightness'), '255\n');
    writeFileSync(join(leds[name]!, 'brightness'), '0\n');
  }
  const keysPath = join(tmp.dir, 'keypad-event');
  const keys = new FifoFeeder(keysPath, arch);
  t.teardown(() => keys.close());
  // hw/boards/ref-dt-evdev.json with its device paths moved to the test's files (no hook: the keypad alone shows the record layout).
  const ref = JSON.parse(readFileSync(join(ROOT, 'hw/boards/ref-dt-evdev.json'), 'utf8')) as Record<string, Record<string, unknown>>;
  const board = { ...ref, name: `${ref.name as unknown as string}-fifos`, display: { ...ref.display, path: lcd.near }, keypad: { ...ref.keypad, path: keysPath }, hook: null, leds: { message: { led: leds['green:message'] }, noService: { led: leds['red:no-service'] } } };
  writeFileSync(join(etc, 'board.json'), JSON.stringify(board));
  const cfg = JSON.parse(readFileSync(c.agentConfig(id), 'utf8')) as Record<string, unknown>;
  delete cfg.stateDir; // the unit's --state-dir gives it
  delete cfg.board; // and its --board
  writeFileSync(join(etc, 'agent.json'), JSON.stringify(cfg));
  const startedAt = Date.now();
  const { proc } = startAgentUnit({ node, lib, etc, state, name: `${id} (${arch})` });
  c.agents.set(id, proc);
  return { proc, lcd, keys, leds, startedAt };
}

/** When `phone` was first seen homed on `home` after `since` (the observer's clock). */
function homedAt(c: Cluster, id: string, home: string, since: number): number | undefined {
  return c.seen.statuses.find((s) => s.phone === id && s.at >= since && s.payload.home === home && s.payload.state === 'homed')?.at;
}

const brightness = (p: Phone, name: string): string => readFileSync(join(p.leds[name]!, 'brightness'), 'utf8').trim();

async function homesAndTakesAKey(t: ExecutionContext, c: Cluster, id: string, p: Phone): Promise<number> {
  const fail = (err: Error): never => {
    throw new Error(`${err.message}\n${p.proc.output().slice(-6000)}`);
  };
  await c.waitHome(id, 'cm-a', 180_000).catch(fail);
  const homed = homedAt(c, id, 'cm-a', p.startedAt)! - p.startedAt;
  // The LCD (serialport's addon) shows the home's id, the no-service lamp is dark.
  await waitFor(() => p.lcd.screen()[0]!.startsWith('CM cm-a'), { timeoutMs: 60_000, what: `${id}: LCD shows CM cm-a; got ${JSON.stringify(p.lcd.screen())}` }).catch(fail);
  await waitFor(() => brightness(p, 'red:no-service') === '0', { timeoutMs: 60_000, what: `${id}: no-service lamp dark once homed` }).catch(fail);
  await waitFor(() => /Services/.test(p.lcd.screen().join('\n')), { timeoutMs: 60_000, what: `${id}: the services menu; ${JSON.stringify(p.lcd.screen())}` }).catch(fail);
  // Key 2 (Status) pressed, autorepeated, released: one key, the status page.
  const k = KEY_CODES.KEY_NUMERIC_2!;
  p.keys.write([ev.key(k, 1), ev.report(), ev.key(k, 2), ev.report(), ev.key(k, 0), ev.report()]);
  await waitFor(() => /Phones homed/.test(p.lcd.screen().join('\n')), { timeoutMs: 60_000, what: `${id}: the status page after key 2; ${JSON.stringify(p.lcd.screen())}` }).catch(fail);
  t.deepEqual(p.lcd.reader.emu.errors, [], `${id}: the LCD saw only valid commands`);
  return homed;
}

const ms = (n: number): string => `${Math.round(n)} ms`;

for (const major of [22, 24] as const) {
  test.serial(`arm64 Node ${major} under qemu, started as ipphone-agent.service says: the image's agent drives a serial LCD with serialport's arm64 addon, reads an evdev keypad's 24-byte records, homes, and rehomes after kill -9 (beside the x64 image)`, async (t) => {
    t.timeout(600_000);
    const rt = arm64Runtime(major);
    const lib = arm64ImageFor(rt);
    const native = nodeRuntime(major);
    const nativeLib = stageRuntimeImage(native);
    t.log(`arm64 node ${rt.version} under ${rt.qemu}; image ${lib}`);

    const mosq = await startMosquitto();
    t.teardown(() => mosq.stop());
    const c = await Cluster.group(t, mosq.url);

    // One at a time, so that neither start competes with the other for the CPU.
    const arm = await phone(t, c, 'p-arm64', 'arm64', [rt.qemu, rt.node], lib);
    const armHomed = await homesAndTakesAKey(t, c, 'p-arm64', arm);
    const x64 = await phone(t, c, 'p-x64', 'x64', [native.node], nativeLib);
    const x64Homed = await homesAndTakesAKey(t, c, 'p-x64', x64);

    // It is the arm64 node that runs, and it loaded the arm64 serialport addon.
    const maps = readFileSync(`/proc/${arm.proc.pid}/maps`, 'utf8');
    t.regex(readFileSync(`/proc/${arm.proc.pid}/cmdline`, 'utf8'), /qemu-aarch64-static\0.*node-arm64-\d+\/package\/bin\/node\0--jitless\0/s);
    t.true(maps.includes('bindings-cpp.armv8.glibc.node'), 'serialport\'s arm64 prebuild is mapped in the emulated process');
    t.true(maps.includes(rt.node), 'the arm64 node binary is mapped');

    const killedAt = Date.now();
    c.cms.get('cm-a')!.signal('SIGKILL');
    await c.waitHome('p-arm64', 'cm-b', 120_000);
    await c.waitHome('p-x64', 'cm-b', 120_000);
    const armMove = await c.lastMove('p-arm64', 'cm-b');
    const x64Move = await c.lastMove('p-x64', 'cm-b');
    t.like(armMove, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
    t.like(x64Move, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
    await waitFor(() => arm.lcd.screen()[0]!.startsWith('CM cm-b'), { timeoutMs: 60_000, what: `p-arm64: LCD shows CM cm-b; got ${JSON.stringify(arm.lcd.screen())}` });
    t.is(arm.proc.child.exitCode, null, 'the arm64 agent still runs');
    t.notRegex(arm.proc.output(), /Check failed|Fatal error|ReferenceError|bad option|Illegal instruction|qemu: uncaught/, 'no V8 abort, no emulator fault');

    const armFail = homedAt(c, 'p-arm64', 'cm-b', killedAt)! - killedAt;
    const x64Fail = homedAt(c, 'p-x64', 'cm-b', killedAt)! - killedAt;
    t.log(
      `start → homed: arm64/qemu ${ms(armHomed)}, x64 ${ms(x64Homed)} (×${(armHomed / x64Homed).toFixed(1)}); ` +
        `kill -9 → homed on cm-b: arm64/qemu ${ms(armFail)}, x64 ${ms(x64Fail)} (×${(armFail / Math.max(1, x64Fail)).toFixed(1)}); ` +
        `agents' own rehomeMs: arm64/qemu ${String(armMove?.rehomeMs)}, x64 ${String(x64Move?.rehomeMs)}; node ${rt.version} / ${native.version} (loaded shared machine)`,
    );
    arm.proc.signal('SIGTERM');
    t.is(await arm.proc.exited, 0, `the arm64 agent exits 0 on SIGTERM\n${arm.proc.output().slice(-3000)}`);
  });
}
