/**
 * The simulator board's keypad and hook on a real pty: the agent's stdin is one
 * end of a socat pty pair, the test types into the other end, as an operator at
 * a terminal does. Lifting the handset (the hook key) makes the phone busy in
 * its status; replacing it makes it idle again; the display draws on stderr.
 */
import test from 'ava';
import { join } from 'node:path';
import { appendFileSync } from 'node:fs';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { waitFor } from '../helpers/net.js';
import { startPtyPair } from '../helpers/pty.js';
import { ROOT } from '../helpers/programs.js';

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
