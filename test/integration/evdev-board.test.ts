/**
 * A board whose kernel drives the keys and lamps (issue 17), end to end: the
 * agent from dist with `keypad.driver: "evdev"` and `hook.driver: "evdev"` on
 * FIFOs fed with `struct input_event` records as this machine's kernel lays
 * them out, LED-class lamps in temp directories (`brightness`,
 * `max_brightness` 255), and its serial LCD on a socat pty. It lights the
 * no-service lamp while it has no home, homes, darkens it, takes a key from
 * the keypad FIFO (the services menu moves on the LCD), reports busy when the
 * hook FIFO says off hook, and stops on SIGTERM (a read blocked in libuv's
 * thread pool would have held it at exit: src/hw/evdev.ts).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import test from 'ava';
import { connect } from 'mqtt';
import { Cluster } from '../helpers/cluster.js';
import { FifoFeeder, ev } from '../helpers/evdev-fifo.js';
import { startMosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { PtyLcd, tempDir } from '../helpers/pty.js';
import { KEY_CODES } from '../../src/hw/input-codes.js';

test.serial('evdev keypad and hook on FIFOs, LED-class lamps: lamp lit without a home and dark once homed, a key moves the services menu, off hook makes the phone busy, SIGTERM exits 0', async (t) => {
  t.timeout(180_000);
  const mosq = await startMosquitto();
  t.teardown(() => mosq.stop());
  const c = new Cluster();
  t.teardown(() => c.close());
  await c.defineGroup([
    { id: 'cm-a', broker: mosq.url },
    { id: 'cm-b', broker: mosq.url },
  ]);
  await c.observe(mosq.url);

  const lcd = await PtyLcd.forTest(t);
  const tmp = tempDir('ipphone-evdev-board-');
  t.teardown(tmp.remove);
  const keysPath = join(tmp.dir, 'keypad-event');
  const hookPath = join(tmp.dir, 'keys-event');
  const leds: Record<string, string> = {};
  for (const name of ['green:message', 'red:no-service']) {
    const dir = join(tmp.dir, 'leds', name);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, 'max_brightness'), '255\n');
    writeFileSync(join(dir, 'brightness'), '0\n');
    leds[name] = dir;
  }
  const brightness = (name: string) => readFileSync(join(leds[name]!, 'brightness'), 'utf8').trim();
  const board = join(tmp.dir, 'board.json');
  writeFileSync(
    board,
    JSON.stringify({
      name: 'evdev-fifos',
      display: { driver: 'serial-lcd', path: lcd.near, baudRate: 19200, cols: 20, rows: 4, protocol: 'matrix-orbital' },
      keypad: { driver: 'evdev', path: keysPath, keymap: { KEY_NUMERIC_1: '1', KEY_NUMERIC_2: '2', KEY_NUMERIC_STAR: '*', KEY_NUMERIC_POUND: '#' } },
      hook: { driver: 'evdev', path: hookPath, event: 'KEY_PHONE', offHookValue: 1 },
      leds: { message: { led: leds['green:message'] }, noService: { led: leds['red:no-service'] } },
    }),
  );
  const keys = new FifoFeeder(keysPath, process.arch);
  const hook = new FifoFeeder(hookPath, process.arch);
  t.teardown(() => {
    keys.close();
    hook.close();
  });

  // The phone starts before any call manager: no home, the no-service lamp lit.
  const agent = c.startAgent('p-evdev', c.agentConfig('p-evdev', { board }));
  const fail = (err: Error) => {
    throw new Error(`${err.message}\n${agent.output().slice(-6000)}`);
  };
  await waitFor(() => brightness('red:no-service') === '255', { timeoutMs: 30_000, what: 'the no-service lamp lit' }).catch(fail);
  t.is(brightness('green:message'), '0');

  await Promise.all(['cm-a', 'cm-b'].map((id) => c.startCm(id)));
  await c.waitHome('p-evdev', 'cm-a');
  await waitFor(() => brightness('red:no-service') === '0', { timeoutMs: 30_000, what: 'the no-service lamp dark once homed' }).catch(fail);
  const screen = () => lcd.screen().join('\n');
  await waitFor(() => /Services/.test(screen()), { timeoutMs: 30_000, what: `the services menu on the LCD; ${JSON.stringify(lcd.screen())}` }).catch(fail);
  t.regex(lcd.screen()[0]!, /CM cm-a/);

  // Key 2 (Status) pressed, autorepeated and released: one key, the status page.
  keys.write([ev.key(KEY_CODES.KEY_NUMERIC_2!, 1), ev.report(), ev.key(KEY_CODES.KEY_NUMERIC_2!, 2), ev.report(), ev.key(KEY_CODES.KEY_NUMERIC_2!, 0), ev.report()]);
  await waitFor(() => /Phones homed/.test(screen()), { timeoutMs: 30_000, what: `the status page after key 2; ${JSON.stringify(lcd.screen())}` }).catch(fail);

  // Off hook: the keep-alives to cm-a say busy.
  const sub = connect(mosq.url, { reconnectPeriod: 0 });
  t.teardown(() => sub.end(true));
  const busy: boolean[] = [];
  sub.on('message', (_topic, payload) => {
    const body = JSON.parse(payload.toString()) as { phone?: string; busy?: boolean };
    if (body.phone === 'p-evdev') busy.push(body.busy === true);
  });
  await new Promise<void>((done, failed) => sub.once('connect', () => sub.subscribe(`${c.prefix}/cm/cm-a/keepalive`, { qos: 0 }, (err) => (err ? failed(err) : done()))));
  await waitFor(() => busy.length > 0, { timeoutMs: 30_000, what: 'a keep-alive' }).catch(fail);
  t.false(busy.at(-1), 'idle on hook');
  hook.write([ev.key(KEY_CODES.KEY_PHONE!, 1), ev.report()]);
  await waitFor(() => busy.at(-1) === true, { timeoutMs: 30_000, what: 'a busy keep-alive after off hook' }).catch(fail);
  hook.write([ev.key(KEY_CODES.KEY_PHONE!, 0), ev.report()]);
  await waitFor(() => busy.at(-1) === false, { timeoutMs: 30_000, what: 'idle again on hook' }).catch(fail);
  t.regex(agent.output(), /"input device opened"/);

  // SIGTERM with both devices open and idle: a clean exit, at once.
  agent.signal('SIGTERM');
  t.is(await agent.exited, 0, agent.output().slice(-4000));
});
