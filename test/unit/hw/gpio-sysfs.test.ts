import test from 'ava';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { isIpphoneError, type IpphoneError } from '../../../src/lib/errors.js';
import { makeFakeSysfs } from '../../../src/hw/gpio-fake.js';
import { describeSysfsError, listGpioChips, resolveAll, resolveGpioLine } from '../../../src/hw/gpio-sysfs.js';

function tmp(t: { teardown(fn: () => void): void }): string {
  const dir = mkdtempSync(join(tmpdir(), 'ipphone-gpio-'));
  t.teardown(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function hwError(t: import('ava').ExecutionContext, fn: () => unknown): IpphoneError {
  const err = t.throws(fn);
  t.true(isIpphoneError(err, 'HW_UNAVAILABLE'), String(err));
  return err as IpphoneError;
}

for (const base of [0, 512, 571]) {
  test(`resolves line 17 of pinctrl-bcm2835 at base ${base}`, (t) => {
    const root = makeFakeSysfs(join(tmp(t), 'gpio'), [{ label: 'pinctrl-bcm2835', base, ngpio: 54 }]);
    t.is(resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 17 }, root), base + 17);
    t.is(resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 0 }, root), base);
    t.is(resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 53 }, root), base + 53);
  });
}

test('picks the chip by label among several', (t) => {
  const root = makeFakeSysfs(tmp(t), [
    { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
    { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
  ]);
  t.is(resolveGpioLine({ chip: 'raspberrypi-exp-gpio', line: 2 }, root), 572);
  t.is(resolveGpioLine({ chip: 'pinctrl-bcm2711', line: 2 }, root), 514);
  t.deepEqual(
    listGpioChips(root).chips.map((c) => c.dir),
    ['gpiochip512', 'gpiochip570'],
  );
});

test('an unknown label lists the labels seen', (t) => {
  const root = makeFakeSysfs(tmp(t), [
    { label: 'pinctrl-bcm2711', base: 512, ngpio: 58 },
    { label: 'raspberrypi-exp-gpio', base: 570, ngpio: 8 },
  ]);
  const err = hwError(t, () => resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 17 }, root));
  t.regex(err.message, /no gpiochip labelled "pinctrl-bcm2835"/);
  t.regex(err.message, /labels seen: pinctrl-bcm2711 \(gpiochip512\), raspberrypi-exp-gpio \(gpiochip570\)/);
});

test('a duplicate label is ambiguous and names both gpiochip dirs', (t) => {
  const root = makeFakeSysfs(tmp(t), [
    { label: 'gpio-mockup', base: 0, ngpio: 8 },
    { label: 'gpio-mockup', base: 512, ngpio: 8 },
  ]);
  const err = hwError(t, () => resolveGpioLine({ chip: 'gpio-mockup', line: 1 }, root));
  t.regex(err.message, /ambiguous/);
  t.regex(err.message, /gpiochip0, gpiochip512/);
});

test('an offset at or past ngpio says the range', (t) => {
  const root = makeFakeSysfs(tmp(t), [{ label: 'pinctrl-bcm2835', base: 512, ngpio: 54 }]);
  const err = hwError(t, () => resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 54 }, root));
  t.regex(err.message, /offset 54 out of range, gpiochip512 has lines 0–53/);
  hwError(t, () => resolveGpioLine({ chip: 'pinctrl-bcm2835', line: -1 }, root));
  hwError(t, () => resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 1.5 }, root));
});

test('missing sysfs says why', (t) => {
  const err = hwError(t, () => resolveGpioLine({ chip: 'pinctrl-bcm2835', line: 17 }, join(tmp(t), 'nope')));
  t.regex(err.message, /^no .*nope: kernel without CONFIG_GPIO_SYSFS or not mounted$/);
});

test('resolveAll returns every number, or every problem at once', (t) => {
  const root = makeFakeSysfs(tmp(t), [{ label: 'pinctrl-bcm2835', base: 571, ngpio: 54 }]);
  t.deepEqual(
    resolveAll([{ chip: 'pinctrl-bcm2835', line: 5 }, { chip: 'pinctrl-bcm2835', line: 13 }], root),
    [576, 584],
  );
  const err = hwError(t, () =>
    resolveAll(
      [
        { chip: 'pinctrl-bcm2835', line: 5 },
        { chip: 'nope', line: 1 },
        { chip: 'pinctrl-bcm2835', line: 99 },
        { chip: 'pinctrl-bcm2835', line: 5 },
      ],
      root,
    ),
  );
  const problems = err.context?.['problems'] as string[];
  t.is(problems.length, 3);
  t.regex(problems[0]!, /nope:1: no gpiochip/);
  t.regex(problems[1]!, /offset 99 out of range/);
  t.regex(problems[2]!, /same line as pinctrl-bcm2835:5 \(sysfs gpio576\), used twice/);
  t.is(err.message.split('\n').length, 3);
});

test('an unreadable chip is a problem with its path, other chips still resolve', (t) => {
  const root = makeFakeSysfs(tmp(t), [
    { label: 'a', base: 0, ngpio: 8 },
    { label: 'b', base: 8, ngpio: 8 },
  ]);
  writeFileSync(join(root, 'gpiochip0', 'base'), 'zero\n');
  const { chips, problems } = listGpioChips(root);
  t.deepEqual(chips.map((c) => c.label), ['b']);
  t.regex(problems[0]!, /gpiochip0\/base: not a number: "zero"/);
  const err = hwError(t, () => resolveGpioLine({ chip: 'b', line: 1 }, root));
  t.regex(err.message, /gpiochip0\/base/);
});

test('permission errors name the udev rule and the group', (t) => {
  const eacces = Object.assign(new Error('EACCES: permission denied'), { code: 'EACCES' });
  const msg = describeSysfsError(eacces, '/sys/class/gpio/export');
  t.regex(msg, /permission denied on \/sys\/class\/gpio\/export/);
  t.regex(msg, /hw\/udev\/99-ipphone-gpio\.rules/);
  t.regex(msg, /group gpio/);
  const erofs = Object.assign(new Error('EROFS'), { code: 'EROFS' });
  t.regex(describeSysfsError(erofs, '/sys/class/gpio/export'), /ProtectKernelTunables/);
  t.regex(describeSysfsError(new Error('boom'), '/x'), /cannot read \/x: boom/);
});

test('an export file that cannot be written is reported', (t) => {
  const root = makeFakeSysfs(tmp(t), [{ label: 'a', base: 0, ngpio: 8 }]);
  rmSync(join(root, 'export'));
  const err = hwError(t, () => resolveGpioLine({ chip: 'a', line: 1 }, root));
  t.regex(err.message, /export/);
});
