/**
 * The agent under a (simulated) systemd: a real NOTIFY_SOCKET bound by the
 * test, the real systemd-notify, the agent as a child process.
 */
import test from 'ava';
import { Cluster } from '../helpers/cluster.js';
import { startMosquitto, type Mosquitto } from '../helpers/mosquitto.js';
import { perlReceiver } from '../helpers/notify-socket.js';
import { waitFor } from '../helpers/net.js';

let mosq: Mosquitto;
test.before(async () => {
  mosq = await startMosquitto();
});
test.after.always(async () => {
  await mosq?.stop();
});

test('READY=1 once started, STATUS with the home, WATCHDOG=1 at a quarter of WatchdogSec while healthy and none while wedged, STOPPING=1', async (t) => {
  const rx = await perlReceiver(t);
  const c = await Cluster.group(t, mosq.url, ['cm-a']);
  // WatchdogSec=4 s → a ping every 1 s (a quarter: sd-notify.ts watchdogIntervalMs).
  const agent = c.startAgent('p-sd', c.agentConfig('p-sd'), { NOTIFY_SOCKET: rx.socket, WATCHDOG_USEC: '4000000' });
  await waitFor(() => rx.text().includes('READY=1'), { timeoutMs: 15_000, what: 'READY=1' });
  await c.waitHome('p-sd', 'cm-a');
  await waitFor(() => rx.text().includes('STATUS=homed to cm-a'), { timeoutMs: 10_000, what: 'STATUS with the home' });
  const pings = (): number => rx.datagrams().filter((d) => d.includes('WATCHDOG=1')).length;
  const p0 = pings();
  await new Promise((r) => setTimeout(r, 6500));
  const healthy = pings() - p0;
  t.log(`${healthy} pings in 6.5 s while healthy`);
  t.true(healthy >= 4 && healthy <= 9, `${healthy} pings`);

  // Wedged: the process is stopped — nothing may claim it is alive.
  agent.signal('SIGSTOP');
  const p1 = pings();
  await new Promise((r) => setTimeout(r, 5000));
  t.is(pings(), p1, 'no WATCHDOG=1 while wedged');
  agent.signal('SIGCONT');
  await waitFor(() => pings() > p1, { timeoutMs: 10_000, what: 'pings again after SIGCONT' });

  agent.signal('SIGTERM');
  t.is(await agent.exited, 0);
  t.true(rx.text().includes('STOPPING=1'));
});
