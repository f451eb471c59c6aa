/**
 * The real GPIO adapter: onoff 6 over sysfs. The only module that touches
 * `onoff`; its errors become `IpphoneError('HW_UNAVAILABLE')` here.
 *
 * onoff is loaded on first use, not at import: it pulls in the native `epoll`
 * addon, and a build without it (or a non-Linux dev box) must still be able
 * to import the board code and run the simulator.
 */
import { createRequire } from 'node:module';
import type { Gpio as OnoffGpio } from 'onoff';
import { IpphoneError, errorMessage } from '../lib/errors.js';
import { describeSysfsError, DEFAULT_SYSFS_ROOT } from './gpio-sysfs.js';
import type { Bit, Gpio, GpioFactory } from './gpio.js';

type OnoffModule = { Gpio: typeof OnoffGpio };

let loaded: OnoffModule | undefined;

function loadOnoff(): OnoffModule {
  if (loaded === undefined) {
    try {
      loaded = createRequire(import.meta.url)('onoff') as OnoffModule;
    } catch (err) {
      throw new IpphoneError(`onoff cannot be loaded: ${errorMessage(err)}`, 'HW_UNAVAILABLE', {}, { cause: err });
    }
  }
  return loaded;
}

function wrap(err: unknown, what: string, sysfsNumber: number): IpphoneError {
  const path = `${DEFAULT_SYSFS_ROOT}/gpio${sysfsNumber}`;
  const code = (err as NodeJS.ErrnoException | undefined)?.code;
  const why = code === undefined ? errorMessage(err) : describeSysfsError(err, path);
  return new IpphoneError(`gpio${sysfsNumber}: ${what} failed: ${why}`, 'HW_UNAVAILABLE', { sysfsNumber, code }, { cause: err });
}

/** True when sysfs GPIO exists and `export` is writable by this process. */
export function onoffAccessible(): boolean {
  try {
    return loadOnoff().Gpio.accessible;
  } catch {
    return false;
  }
}

/**
 * A {@link GpioFactory} exporting lines through onoff. Throws
 * `HW_UNAVAILABLE` when sysfs GPIO is absent or not writable (see
 * hw/udev/README.md), or when an export fails.
 */
export function onoffGpioFactory(): GpioFactory {
  return (sysfsNumber, direction, edge, opts) => {
    const { Gpio: OnoffCtor } = loadOnoff();
    if (!OnoffCtor.accessible) {
      throw new IpphoneError(
        `gpio${sysfsNumber}: ${DEFAULT_SYSFS_ROOT}/export missing or not writable: kernel without CONFIG_GPIO_SYSFS, or install hw/udev/99-ipphone-gpio.rules and run in group gpio`,
        'HW_UNAVAILABLE',
        { sysfsNumber },
      );
    }
    let g: OnoffGpio;
    try {
      g = new OnoffCtor(sysfsNumber, direction, edge, {
        ...(opts.activeLow === undefined ? {} : { activeLow: opts.activeLow }),
        ...(opts.debounceTimeout === undefined ? {} : { debounceTimeout: opts.debounceTimeout }),
      });
    } catch (err) {
      throw wrap(err, 'export', sysfsNumber);
    }
    const line: Gpio = {
      async read(): Promise<Bit> {
        try {
          return await g.read();
        } catch (err) {
          throw wrap(err, 'read', sysfsNumber);
        }
      },
      async write(v: Bit): Promise<void> {
        try {
          await g.write(v);
        } catch (err) {
          throw wrap(err, 'write', sysfsNumber);
        }
      },
      watch(cb) {
        g.watch((err, value) => cb(err ? wrap(err, 'watch', sysfsNumber) : err, value));
      },
      unwatchAll() {
        g.unwatchAll();
      },
      unexport() {
        try {
          g.unexport();
        } catch (err) {
          throw wrap(err, 'unexport', sysfsNumber);
        }
      },
    };
    return line;
  };
}
