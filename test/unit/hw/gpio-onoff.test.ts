import test from 'ava';
import { existsSync } from 'node:fs';
import { isIpphoneError } from '../../../src/lib/errors.js';
import { onoffAccessible, onoffGpioFactory } from '../../../src/hw/gpio-onoff.js';

// Unit tests cannot own real GPIO, so this checks the adapter's boundary on
// whatever host runs it: both branches assert real behaviour.
test('the onoff adapter refuses with HW_UNAVAILABLE where sysfs GPIO cannot be used', (t) => {
  const factory = onoffGpioFactory();
  if (!existsSync('/sys/class/gpio/export')) {
    t.false(onoffAccessible());
    const err = t.throws(() => factory(529, 'in', 'both', { activeLow: true }));
    t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));
    t.regex(err!.message, /gpio529: .*CONFIG_GPIO_SYSFS/);
  } else {
    // A number no chip has: the kernel refuses the export (EINVAL), and the
    // adapter must turn that into HW_UNAVAILABLE rather than leak it.
    const err = t.throws(() => factory(99_999, 'in', 'none', {}));
    t.true(isIpphoneError(err, 'HW_UNAVAILABLE'));
  }
});
