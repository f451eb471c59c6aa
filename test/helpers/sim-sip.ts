/**
 * A small SIP world for the simulator's SIP tests (test/sim/sip*.test.ts): the
 * default topology's brokers and registrars on one network, every registrar up,
 * and phones with the simulated user agent, their SIP events recorded.
 */
import { Net, openAcl } from '../../src/sim/broker.js';
import { Host, ProcessClock } from '../../src/sim/clock.js';
import { defaultTopology, registrarOf, type CmSpec } from '../../src/sim/group.js';
import { Rng } from '../../src/sim/rng.js';
import { SimUserAgent, SipWorld, type RegistrarHost, type SipPlant } from '../../src/sim/sip.js';
import { World } from '../../src/sim/world.js';
import type { SipEvent } from '../../src/sip/user-agent.js';

export function sipWorld(plant?: SipPlant) {
  const w = new World();
  const topo = defaultTopology(3);
  const net = new Net(w, new Rng(1), 30);
  for (const b of topo.brokers) net.addBroker(b.id, b.url, openAcl);
  const cms = new Map<string, RegistrarHost & { registrarUp: boolean }>();
  for (const spec of [...topo.group, ...topo.remote]) cms.set(spec.id, { spec, registrarUp: true });
  const sw = new SipWorld(w, net, new Rng(2), 30, topo, cms, plant);
  const spec = (id: string): CmSpec => cms.get(id)!.spec;
  const aor = (user: string, cm: string) => registrarOf(spec(cm)).replace('sip:', `sip:${user}@`);
  const phone = (id: string) => {
    const host = new Host(w, id);
    const clock = new ProcessClock(host);
    const ua = new SimUserAgent(sw, id, clock);
    const events: SipEvent[] = [];
    ua.start((e) => events.push(e));
    return { host, clock, ua, events };
  };
  const run = (ms: number) => w.runUntil(w.now + ms, () => undefined);
  return { w, net, sw, cms, aor, phone, run, topo };
}
