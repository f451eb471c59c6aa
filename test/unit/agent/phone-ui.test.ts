import test from 'ava';
import { PhoneUi } from '../../../src/agent/phone-ui.js';
import { HeadlessDisplay, SoftHook } from '../../../src/hw/headless.js';
import { KeyboardKeypad } from '../../../src/hw/keyboard.js';
import { FakeClock } from '../../../src/lib/clock.js';
import { silentLogger } from '../../../src/lib/log.js';
import { directoryPage, servicesMenu } from '../../../src/callmanager/services-page.js';

const flush = () => new Promise((r) => setImmediate(r));

function setup() {
  const display = new HeadlessDisplay(20, 4);
  const hook = new SoftHook();
  const keypad = new KeyboardKeypad({ hook, input: { isTTY: false } as NodeJS.ReadStream });
  const clock = new FakeClock(0);
  const fetched: string[] = [];
  const ui = new PhoneUi({
    display,
    keypad,
    clock,
    log: silentLogger(),
    phoneId: 'p1',
    timeoutMs: 1000,
    fetch: async (url) => {
      fetched.push(url);
      if (url.includes('directory')) return directoryPage({ cmId: 'cm-a', phone: 'p1', servicesUrl: 'http://127.0.0.1/services' }, [{ name: 'Alice', telephone: '1001' }]);
      throw new Error('nope');
    },
  });
  ui.start();
  return { display, hook, keypad, clock, fetched, ui };
}

test('status row, services page, a digit fetches the menu item, * goes back, rehome notice expires', async (t) => {
  const s = setup();
  s.ui.status(null, 'no-service');
  t.is(s.display.lines[0], 'No service');
  s.ui.status('cm-a', 'homed');
  s.ui.page(servicesMenu({ cmId: 'cm-a', phone: 'p1', servicesUrl: 'http://127.0.0.1/services' }), 'cm-a');
  t.is(s.display.lines[0], 'CM cm-a');
  t.regex(s.display.lines[1]!, /cm-a/);
  t.regex(s.display.lines.join('\n'), /1 Directory/);
  s.keypad.type('1');
  await flush();
  t.is(s.fetched.length, 1);
  t.regex(s.fetched[0]!, /directory/);
  t.regex(s.display.lines.join('\n'), /Alice/);
  s.keypad.type('*');
  t.regex(s.display.lines.join('\n'), /1 Directory/);
  s.ui.notice('Moved to cm-b');
  t.regex(s.display.lines.join('\n'), /Moved to cm-b/);
  s.clock.advance(5000);
  t.notRegex(s.display.lines.join('\n'), /Moved to cm-b/);
});

test('a bad page keeps the last good one; a failed item fetch shows a notice', async (t) => {
  const s = setup();
  s.ui.status('cm-a', 'homed');
  s.ui.page(servicesMenu({ cmId: 'cm-a', phone: 'p1', servicesUrl: 'http://127.0.0.1/services' }), 'cm-a');
  const before = [...s.display.lines];
  s.ui.page('<not xml', 'cm-a');
  t.deepEqual(s.display.lines, before);
  s.keypad.type('2'); // Status page: the fake fetcher fails it
  await flush();
  await flush();
  t.regex(s.display.lines.join('\n'), /Not available/);
});

test('the keyboard hook key lifts and replaces the handset', (t) => {
  const s = setup();
  const seen: boolean[] = [];
  s.hook.onChange((v) => seen.push(v));
  s.keypad.type('h');
  s.keypad.type('H');
  t.deepEqual(seen, [true, false]);
});
