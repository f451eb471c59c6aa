/**
 * The SIP figures of issue 11, on real parts: two Kamailio registrars, two call
 * managers paired with them (OPTIONS probe), two phones each with its own
 * baresip and the simulator board on a pty, and a third phone without SIP for
 * the memory comparison, side by side in one run.
 *
 * - home change → REGISTER_OK at the new home: the agent's own `sip-registered`
 *   events (`ms`, monotonic, from the home change to the answer); each cycle
 *   kills registrar A (phones move to B) and restarts it (phones fall back to A).
 * - registrar death → every phone registered at the backup (wall time here, the
 *   kill to the status naming cm-b).
 * - `#` → far end ringing (dial typed on the pty → callee's status `ringing`).
 * - agent RSS with a SIP user agent attached, beside an agent without one.
 */
import { Cluster } from '../test/helpers/cluster.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { waitFor } from '../test/helpers/net.js';
import { rssKiB } from '../test/helpers/proc.js';
import { startSipGroup, type SipPhone } from '../test/helpers/sip-group.js';
import { sleep } from './harness.js';

export interface SipResult {
  probe: { probeMs: number; missLimit: number };
  /** Agent-measured home change → REGISTER_OK (ms), every home change of every phone. */
  registerMs: number[];
  /** Registrar kill -9 → all phones registered at the backup (ms). */
  deathToBackupMs: number[];
  /** `#` typed → callee ringing (ms). */
  setupMs: number[];
  rss: { sipAgentKiB: number; plainAgentKiB: number; baresipKiB: number };
}

const PROBE = { probeMs: 300, missLimit: 3 };

export async function runSip(o: { cycles: number; calls: number; log: (line: string) => void }): Promise<SipResult> {
  const mosq = await startMosquitto({ conf: ['set_tcp_nodelay true'] });
  const c = new Cluster();
  const stops: (() => Promise<unknown>)[] = [];
  try {
    const g = await startSipGroup(c, mosq.url, {
      probe: PROBE,
      fallbackHoldMs: 1000,
      phones: [
        { id: 'p-1', user: '1001' },
        { id: 'p-2', user: '1002' },
        { id: 'p-3', user: null },
      ],
      cleanup: (s) => stops.push(s),
    });
    const ka = g.ka;
    const [p1, p2, p3] = g.phones as [SipPhone, SipPhone, SipPhone];
    const sip = (id: string) => c.status(id)?.sip as { registrar?: string | null; call?: string } | undefined;
    const registered = (cm: string) => waitFor(() => [p1, p2].every((p) => c.status(p.id)?.home === cm && sip(p.id)?.registrar === cm), { timeoutMs: 30_000, what: `both phones registered at ${cm}` });
    await registered('cm-a');
    await c.waitHome('p-3', 'cm-a');

    const deathToBackupMs: number[] = [];
    for (let i = 0; i < o.cycles; i++) {
      const t0 = Date.now();
      await ka.kill('SIGKILL');
      await registered('cm-b');
      deathToBackupMs.push(Date.now() - t0);
      await ka.restart();
      await registered('cm-a');
      o.log(`sip: cycle ${i + 1}/${o.cycles}: registrar death → backup ${deathToBackupMs.at(-1)} ms`);
    }

    const call = (state: string, id: string) => waitFor(() => sip(id)?.call === state, { timeoutMs: 15_000, what: `${id} call ${state}` });
    const setupMs: number[] = [];
    for (let i = 0; i < o.calls; i++) {
      p1.type('h');
      await call('dialing', p1.id);
      const t0 = Date.now();
      p1.type(`${p2.user}#`);
      await call('ringing', p2.id);
      setupMs.push(Date.now() - t0);
      p2.type('h');
      await call('connected', p1.id);
      p1.type('h');
      await call('idle', p2.id);
      p2.type('h');
      await waitFor(() => c.status(p2.id)?.busy === false, { timeoutMs: 10_000, what: 'callee on hook' });
    }

    // Memory after a settled minute of keep-alives, SIP and plain side by side.
    await sleep(15_000);
    const rss = { sipAgentKiB: rssKiB(p1.agent.pid), plainAgentKiB: rssKiB(p3.agent.pid), baresipKiB: p1.ua?.pid !== undefined ? rssKiB(p1.ua.pid) : NaN };
    const registerMs = c.seen.events.filter((e) => e.payload.type === 'sip-registered' && typeof e.payload.ms === 'number' && (e.payload.ms as number) > 0).map((e) => e.payload.ms as number);
    return { probe: PROBE, registerMs, deathToBackupMs, setupMs, rss };
  } finally {
    await c.close().catch(() => undefined);
    for (const s of stops.reverse()) await s().catch(() => undefined);
    await mosq.stop().catch(() => undefined);
  }
}
