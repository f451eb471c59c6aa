/**
 * Services time-out failover (issue #6): the home call manager's services
 * server accepts and never answers; the phone must show the next pointer's
 * services page. Measured per run from the phone's own `rehomed` event
 * (reason `services-timeout`): detectMs (the time-out) + rehomeMs (fetching
 * the backup page), i.e. from the first fetch to the backup page shown.
 */
import { createServer } from 'node:http';
import { Cluster } from '../test/helpers/cluster.js';
import { freePort, waitFor } from '../test/helpers/net.js';
import { startMosquitto } from '../test/helpers/mosquitto.js';

export interface ServicesResult {
  timeoutMs: number;
  ms: number[];
}

export async function runServicesFailover(o: { runs: number; timeoutMs: number; log: (s: string) => void }): Promise<ServicesResult> {
  const mosq = await startMosquitto();
  const port = await freePort();
  const hang = createServer(() => {
    /* accept, never answer */
  });
  await new Promise<void>((done) => hang.listen(port, '127.0.0.1', done));
  const c = new Cluster();
  const ms: number[] = [];
  try {
    await c.defineGroup([
      { id: 'cm-a', broker: mosq.url, services: `http://127.0.0.1:${port}/services` },
      { id: 'cm-b', broker: mosq.url },
    ]);
    await c.observe(mosq.url);
    await Promise.all([c.startCm('cm-a'), c.startCm('cm-b')]);
    for (let i = 1; i <= o.runs; i++) {
      const phone = `p-svc-${i}`;
      const agent = c.startAgent(phone, c.agentConfig(phone, { services: { timeoutMs: o.timeoutMs }, log: { level: 'warn' } }));
      await waitFor(() => c.events(phone, 'rehomed').some((e) => e.payload.reason === 'services-timeout'), { timeoutMs: 30_000, what: `${phone} services from cm-b` });
      const e = c.events(phone, 'rehomed').find((x) => x.payload.reason === 'services-timeout')!.payload;
      ms.push(Number(e.detectMs) + Number(e.rehomeMs));
      o.log(`  services ${i}/${o.runs}: ${ms.at(-1)} ms (detect ${String(e.detectMs)} + rehome ${String(e.rehomeMs)})`);
      agent.signal('SIGTERM');
      await agent.exited;
    }
    return { timeoutMs: o.timeoutMs, ms };
  } finally {
    await c.close();
    hang.closeAllConnections();
    hang.close();
    await mosq.stop();
  }
}
