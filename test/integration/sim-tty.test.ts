/**
 * The simulator board's keypad and hook on a real pty: the agent's stdin is one
 * end of a socat pty pair, the test types into the other end, as an operator at
 * a terminal does. Lifting the handset (the hook key) makes the phone busy in
 * its status; replacing it makes it idle again; the display draws on stderr.
 */
import test from 'ava';
import { spawn, spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { appendFileSync, closeSync, constants, openSync } from 'node:fs';
import { ReadStream } from 'node:tty';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { startPtyPair } from '../helpers/pty.js';
import { programArgs, ROOT } from '../helpers/programs.js';
import { VtScreen } from '../helpers/vt-screen.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

test('sim board on a pty: the hook key lifts and replaces the handset (status busy), the display draws on stderr', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  const pair = await startPtyPair(join(c.dir, 'tty-near'), join(c.dir, 'tty-far'));
  t.teardown(() => pair.kill());
  const agent = c.startAgentOnTty('p-tty', c.agentConfig('p-tty'), pair.near, ['--board', join(ROOT, 'hw/boards/sim.json')]);
  await c.waitHome('p-tty', 'cm-a');
  const type = (keys: string): void => appendFileSync(pair.far, keys);
  type('h');
  await waitFor(() => c.status('p-tty')?.busy === true, { timeoutMs: 10_000, what: 'busy after the hook key' }).catch((e: Error) => {
    throw new Error(`${e.message}\n${agent.output().slice(-3000)}`);
  });
  type('h');
  await waitFor(() => c.status('p-tty')?.busy === false, { timeoutMs: 10_000, what: 'idle after the hook key again' });
  t.regex(agent.output(), /cm-a/, 'the display names the home');
});

test('sim-lcd-stays-readable: the sim board on a terminal keeps its LCD on the top rows while the JSON log lines scroll below it', async (t) => {
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  const pair = await startPtyPair(join(c.dir, 'tty-near'), join(c.dir, 'tty-far'));
  t.teardown(() => pair.kill());
  // A terminal as a user's is: 30 × 160, output processing on (socat made it raw).
  const stty = spawnSync('stty', ['-F', pair.near, 'opost', 'onlcr', 'rows', '30', 'cols', '160'], { encoding: 'utf8' });
  t.is(stty.status, 0, stty.stderr);
  const screen = new VtScreen(160, 30);
  const fd = openSync(pair.far, constants.O_RDONLY | constants.O_NOCTTY | constants.O_NONBLOCK);
  const reader = new ReadStream(fd);
  reader.on('data', (b) => screen.feed(b as Buffer));
  reader.on('error', () => {});
  t.teardown(() => reader.destroy());
  // The agent as `npx ipphone-agent --config examples/phone-sim.json` runs in a terminal: stdin, stdout
  // and stderr on it; a health line every 50 ms stands in for a busy log.
  const tty = openSync(pair.near, 'r+');
  const agent = spawn(process.execPath, [...programArgs('ipphone-agent'), '--config', c.agentConfig('p-lcd'), '--board', join(ROOT, 'hw/boards/sim.json')], {
    cwd: ROOT,
    stdio: [tty, tty, tty],
    env: { ...process.env, IPPHONE_HEALTH_LOG_MS: '50' },
  });
  closeSync(tty);
  const exited = new Promise<number | null>((done) => agent.once('exit', (code) => done(code)));
  t.teardown(() => void agent.kill('SIGKILL'));
  await c.waitHome('p-lcd', 'cm-a');
  const seen = (): string => screen.lines().map((l, i) => `${String(i).padStart(2)}|${l}`).join('\n');
  const frameAtTop = (): boolean => {
    const l = screen.lines();
    return l[0]!.startsWith('┌─ sim ') && /^│.{20}│$/u.test(l[1]!) && l[5]!.startsWith('└') && l.slice(1, 5).join('').includes('cm-a');
  };
  // Far more log lines than the screen has rows, after the last change of the LCD.
  const health = (): number => screen.lines().filter((l) => l.includes('"health"') || l.includes('health')).length;
  const servicesShown = (): boolean => screen.lines().slice(1, 5).some((l) => l.includes('Services'));
  await waitFor(() => frameAtTop() && servicesShown() && health() >= 20, { timeoutMs: 20_000, what: 'the LCD (services page) on top with a screenful of log below' }).catch((e: Error) => {
    throw new Error(`${e.message}\n${seen()}`);
  });
  // 1.5 s more of log lines (about 30, the height of the screen) after the LCD last changed.
  await new Promise((r) => setTimeout(r, 1500));
  t.true(frameAtTop() && servicesShown(), `the LCD still on top:\n${seen()}`);
  t.regex(screen.lines().slice(6).join('\n'), /"level":30/, 'the log lines below it');
  // A clean stop gives the whole screen back: the last lines scroll the full height again.
  agent.kill('SIGTERM');
  t.is(await exited, 0);
  await waitFor(() => screen.lines().some((l) => l.includes('"stopped"')), { timeoutMs: 5000, what: 'the last log line' });
});
