/**
 * The real-process nemesis (issue 16, "In CI and beyond"): two sites on
 * 127.0.0.1, each a real mosquitto behind a proxy the nemesis owns
 * (proxy.ts), three call managers (`node dist/bin/ipphone-cm.js`: cm-a and
 * cm-c at site A, cm-b at site B) and a fleet of phones (`node
 * dist/bin/ipphone-fleet.js`). Faults are drawn from a seed and done from the
 * outside, as Jepsen's nemesis and TigerBeetle's vortex do: kill -9 and
 * SIGSTOP of a call manager, kill -9 of a broker, a host cut from a broker
 * (reset) or black-holed. At most two at a time, each for a bounded time,
 * then a quiet period; the checkers (judge.ts) look only at what clients see.
 * docs/chaos.md has the bounds and how to read a failure.
 */
import { copyFileSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import tls from 'node:tls';
import { aclFile } from '../../src/admin/acl.js';
import { trustedKeys } from '../../src/protocol/envelope.js';
import { Cluster, OBSERVER_CN } from '../../test/helpers/cluster.js';
import { startKamailio, type Kamailio } from '../../test/helpers/kamailio.js';
import { startMosquitto, type Mosquitto } from '../../test/helpers/mosquitto.js';
import { delay, freePort } from '../../test/helpers/net.js';
import { makePki, type Pki } from '../../test/helpers/pki.js';
import { assertBuilt } from '../../test/helpers/programs.js';
import { boundsOf, PHONE_TIMING, SIP_PROBE, type Bounds, type PhoneTiming } from './bounds.js';
import { HOSTILE_CN, HostilePhone } from './hostile.js';
import { Judge, type Failure, type Truth } from './judge.js';
import { LinkProxy, type LinkState } from './proxy.js';
import { ChaosRng } from './rng.js';

export type FaultKind = 'crash' | 'pause' | 'broker-down' | 'partition' | 'blackhole' | 'registrar-down';

/**
 * Planted defects that prove the checkers can fail:
 * `stopped-as-healthy` — at the end the nemesis leaves cm-a SIGSTOPped but tells the checkers
 * it runs (`fallback` and `healthz` must fire); `slow-detect` — the phones run with
 * `missLimit` 100 while the bounds are derived from the declared 3, and cm-a is stopped
 * for longer than the bound (`home-is-live` must fire); `storm` — a client with a phone's
 * kind of id connects to broker A every 250 ms for 20 s, as a phone without backoff would
 * (`no-storm` must fire); `hidden-stop` — cm-a is SIGSTOPped for twice the phones' detection
 * round while the checkers are told it runs (the phones leave a home that was "usable all
 * along": `no-forged-effect` must fire); `unwatched-registrar` — cm-a runs without its `sip`
 * section (it never probes its Kamailio) and its Kamailio is stopped past the bounds
 * (`registrar-seen` and `home-is-live` must fire); `no-acl` — the brokers run without the
 * printed ACL, so the hostile phone may write other phones' topics (`lists-signed` must fire
 * on the forged lists it pushes to them).
 */
export type Plant = 'stopped-as-healthy' | 'slow-detect' | 'storm' | 'hidden-stop' | 'unwatched-registrar' | 'no-acl';
export const PLANTS: readonly Plant[] = ['stopped-as-healthy', 'slow-detect', 'storm', 'hidden-stop', 'unwatched-registrar', 'no-acl'];

export interface ChaosOptions {
  minutes: number;
  seed: number;
  phones: number;
  plant?: Plant | undefined;
}

export interface ChaosSummary {
  minutes: number;
  seed: number;
  phones: number;
  faults: Partial<Record<FaultKind, number>>;
  violations: number;
  failures: Failure[];
  checks: number;
  /** What the observers took in: statuses, distinct signed lists, call-manager states, /healthz answers. */
  seen: Judge['seen'];
  /** What the hostile phone published (its ACL may have dropped some) and was let read. */
  hostile: { published: number; received: number };
  wallMs: number;
  plant?: Plant;
}

const CMS = [
  { id: 'cm-a', site: 'A' },
  { id: 'cm-b', site: 'B' },
  { id: 'cm-c', site: 'A' },
] as const;
const SITES = ['A', 'B'] as const;
const PHONE_PREFIX = 'ph-';

interface Fault {
  kind: FaultKind;
  target: string;
  /** For links: the broker's site. */
  site?: string;
  /** For `registrar-down`: kill -9 of Kamailio's process group, or SIGSTOP of it. */
  how?: 'kill' | 'stop';
  durationMs: number;
}

const TICK_MS = 500;

/** Run the nemesis for `opts.minutes` and return what it found; `say` gets one line per fault and violation. */
export async function runChaos(opts: ChaosOptions, say: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): Promise<ChaosSummary> {
  const started = Date.now();
  assertBuilt(); // once, before anything starts: the programs run from dist/
  // The programs speak TLS 1.2, whose client Certificate message the proxies can read (proxy.ts).
  if (!(process.env.NODE_OPTIONS ?? '').includes('--tls-max-v1.2')) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} --tls-max-v1.2`.trim();
  const rng = new ChaosRng(opts.seed);
  const declared: PhoneTiming = PHONE_TIMING;
  const bounds: Bounds = boundsOf(declared);
  const runMissLimit = opts.plant === 'slow-detect' ? 100 : declared.missLimit;
  const faults: Partial<Record<FaultKind, number>> = {};
  const pki: Pki = await makePki();
  const cluster = new Cluster({ tls: pki });
  const hostile = new HostilePhone(new ChaosRng(opts.seed ^ 0x9e3779b9), cluster.prefix, CMS.map((c) => c.id), Array.from({ length: opts.phones }, (_, i) => `${PHONE_PREFIX}${i + 1}`));
  const kamailios = new Map<string, Kamailio>();
  const registrarState = new Map<string, 'up' | 'killed' | 'stopped'>();
  const brokers = new Map<string, Mosquitto>();
  const proxies = new Map<string, LinkProxy>();
  const brokerUp = new Map<string, boolean>();
  const cmState = new Map<string, 'up' | 'killed' | 'stopped' | 'starting'>();
  /** The planted lie: the checkers are told these run. */
  const claimedUp = new Set<string>();
  const phones = Array.from({ length: opts.phones }, (_, i) => `${PHONE_PREFIX}${i + 1}`);
  const busy = Math.floor(opts.phones / 10);
  const truth: Truth = {
    cms: CMS,
    sites: SITES,
    cmRunning: (id) => claimedUp.has(id) || cmState.get(id) === 'up',
    cmKilled: (id) => !claimedUp.has(id) && cmState.get(id) === 'killed',
    brokerUp: (s) => brokerUp.get(s) === true,
    linkWhole: (host, s) => proxies.get(s)?.state(host) === 'ok',
    registrarUp: (id) => registrarState.get(id) === 'up',
  };
  const judge = new Judge(truth, bounds, phones, trustedKeys({ 'ops-1': cluster.publicPem }), cluster.prefix, say);
  const httpPorts = new Map<string, number>();
  let ticking = true;
  let tickLoop: Promise<void> = Promise.resolve();
  const pending = new Set<Promise<unknown>>();

  // Log level info: Cluster.startCm waits for "call manager started". Each its own Kamailio,
  // probed as docs/configuration.md says (the planted unwatched-registrar: cm-a not at all).
  const cmExtra = (id: string): Record<string, unknown> =>
    opts.plant === 'unwatched-registrar' && id === 'cm-a' ? {} : { sip: { registrar: kamailios.get(id)!.uri, ...SIP_PROBE } };
  const startCm = async (id: string): Promise<void> => {
    cmState.set(id, 'starting');
    judge.sample();
    await cluster.startCm(id, cmExtra(id));
    cmState.set(id, 'up');
    judge.sample();
  };

  try {
    // ---- the world ------------------------------------------------------------------------
    // TLS with client certificates and the ACL `ipphone-admin acl` prints, in the shipped
    // broker's shape (test/helpers/mosquitto.ts MosquittoTls); the clients speak TLS 1.2 (above).
    const acl = pki.writeFile('acl', aclFile({ prefix: cluster.prefix, callManagers: CMS.map((c) => c.id), operators: [OBSERVER_CN] }));
    const observerFiles = await cluster.identity(OBSERVER_CN);
    const observerTls = { ca: readFileSync(observerFiles.ca), cert: readFileSync(observerFiles.cert), key: readFileSync(observerFiles.key) };
    for (const site of SITES) {
      const m = await startMosquitto({ tls: { cafile: pki.ca.cert, certfile: pki.server.cert, keyfile: pki.server.key, ...(opts.plant === 'no-acl' ? {} : { aclFile: acl }) } });
      brokers.set(site, m);
      brokerUp.set(site, true);
      // Under TLS the client id is the certificate's CN (a cmId, a phoneId); plain ids kept for a plain broker.
      const hostOf = (clientId: string): string => {
        for (const { id } of CMS) if (clientId === id || clientId === `ipphone-cm-${id}` || clientId.startsWith(`ipphone-cm-${id}-link`)) return id;
        if (clientId === HOSTILE_CN || clientId === `ipphone-${HOSTILE_CN}`) return 'other';
        return clientId.startsWith(PHONE_PREFIX) || clientId.startsWith(`ipphone-${PHONE_PREFIX}`) ? 'fleet' : 'other';
      };
      const p = new LinkProxy(site, m.port, hostOf);
      await p.listen(await freePort());
      proxies.set(site, p);
      await judge.observe(site, m.url, observerTls);
    }
    for (const { id } of CMS) {
      kamailios.set(id, await startKamailio());
      registrarState.set(id, 'up');
    }
    const proxyUrl = (site: string): string => `mqtts://127.0.0.1:${proxies.get(site)!.port}`;
    await cluster.defineGroup(CMS.map((c) => ({ id: c.id, broker: proxyUrl(c.site), sip: kamailios.get(c.id)!.uri })));
    // Every phone its own certificate, CN its id (ipphone-fleet --cert-dir).
    const certDir = join(cluster.dir, 'fleet-certs');
    mkdirSync(certDir, { recursive: true });
    for (const phone of phones) {
      const f = await pki.client(phone);
      copyFileSync(f.cert, join(certDir, `${phone}.crt`));
      copyFileSync(f.key, join(certDir, `${phone}.key`));
    }
    await cluster.identity('fleet');
    hostile.start([...brokers.values()].map((m) => m.url), await pki.clientTls(HOSTILE_CN));
    for (const g of cluster.group) httpPorts.set(g.id, Number(new URL(g.services).port));
    for (const { id } of CMS) await startCm(id);
    const fleetConfig = cluster.agentConfig('fleet', {
      keepalive: { intervalMs: declared.intervalMs, missLimit: runMissLimit, ackTimeoutMs: declared.ackTimeoutMs },
      fallback: { holdMs: declared.holdMs },
      mqtt: { connectTimeoutMs: declared.connectTimeoutMs, keepaliveSec: declared.keepaliveSec, backoff: { baseMs: declared.backoffBaseMs, maxMs: declared.backoffMaxMs } },
      log: { level: 'warn' },
    });
    const fleet = cluster.startFleet('fleet', ['--config', fleetConfig, '--count', String(opts.phones), '--prefix', PHONE_PREFIX, '--state-dir', join(cluster.dir, 'fleet'), '--busy', String(busy), '--summary-ms', '10000', '--cert-dir', certDir]);
    const ready = await until(() => judge.notHomed().length === 0, 120_000);
    if (!ready) throw new Error(`the fleet did not home within 120 s: ${judge.describe(judge.notHomed())}\n${fleet.output().slice(-3000)}`);
    // A connection the proxies could not attribute would never be cut: the faults would be fiction.
    for (const [site, p] of proxies) {
      const blind = [...p.attempts.keys()].filter((k) => k.startsWith('('));
      if (blind.length > 0) throw new Error(`proxy ${site} could not tell who connected (${blind.join(', ')}): the link faults would cut nothing`);
    }
    say(`ready: ${opts.phones} phones homed (${busy} busy), TLS brokers A:${brokers.get('A')!.port} B:${brokers.get('B')!.port} with the printed ACL via proxies A:${proxies.get('A')!.port} B:${proxies.get('B')!.port}, Kamailio ${[...kamailios].map(([id, k]) => `${id}:${k.port}`).join(' ')}, hostile phone ${HOSTILE_CN}; seed ${opts.seed}${opts.plant ? `; plant ${opts.plant}` : ''}`);
    say(`bounds: ${JSON.stringify(bounds)}`);
    judge.checks = 0; // the start-up's polls are not checks

    // ---- the checkers' clock --------------------------------------------------------------
    tickLoop = (async () => {
      while (ticking) {
        await judge.pollHealthz(httpPorts);
        const now = Date.now();
        judge.tick(now);
        for (const [site, p] of proxies) judge.noStorm(site, p.attempts, now);
        judge.endTick();
        await delay(TICK_MS);
      }
    })();

    // ---- the nemesis ------------------------------------------------------------------------
    const apply = async (f: Fault): Promise<void> => {
      faults[f.kind] = (faults[f.kind] ?? 0) + 1;
      say(`fault ${f.kind} ${f.target}${f.site ? `↔${f.site}` : ''} for ${f.durationMs} ms`);
      if (f.kind === 'crash') {
        cmState.set(f.target, 'killed');
        cluster.cms.get(f.target)!.signal('SIGKILL');
      } else if (f.kind === 'pause') {
        cmState.set(f.target, 'stopped');
        cluster.cms.get(f.target)!.signal('SIGSTOP');
      } else if (f.kind === 'broker-down') {
        brokerUp.set(f.target, false);
        judge.sample();
        await brokers.get(f.target)!.kill();
      } else if (f.kind === 'registrar-down') {
        // Half a crash (kill -9 of the group: the port refuses), half a stop (SIGSTOP: the kernel still accepts, nothing answers).
        const k = kamailios.get(f.target)!;
        if (f.how === 'kill') {
          registrarState.set(f.target, 'killed');
          judge.sample();
          await k.kill('SIGKILL');
        } else {
          registrarState.set(f.target, 'stopped');
          signalGroup(k, 'SIGSTOP');
        }
      } else {
        proxies.get(f.site!)!.set(f.target, f.kind as LinkState);
      }
      judge.sample();
    };
    const undo = async (f: Fault): Promise<void> => {
      if (f.kind === 'crash') await startCm(f.target);
      else if (f.kind === 'pause') {
        cluster.cms.get(f.target)!.signal('SIGCONT');
        cmState.set(f.target, 'up');
      } else if (f.kind === 'broker-down') {
        await brokers.get(f.target)!.restart();
        brokerUp.set(f.target, true);
      } else if (f.kind === 'registrar-down') {
        const k = kamailios.get(f.target)!;
        if (registrarState.get(f.target) === 'killed') await k.restart();
        else signalGroup(k, 'SIGCONT');
        registrarState.set(f.target, 'up');
      } else proxies.get(f.site!)!.set(f.target, 'ok');
      judge.sample();
      say(`healed ${f.kind} ${f.target}${f.site ? `↔${f.site}` : ''}`);
    };
    const draw = (busyTargets: Set<string>, maxMs: number): Fault | null => {
      for (let i = 0; i < 20; i++) {
        const kind = rng.pick<FaultKind>(['crash', 'pause', 'broker-down', 'partition', 'blackhole', 'registrar-down']);
        // A fifth are long: past a call manager's will (1.5 × 30 s) and a phone's (1.5 × 10 s).
        const durationMs = Math.min(maxMs, rng.chance(0.2) ? rng.int(30_000, 60_000) : rng.int(4000, 25_000));
        let f: Fault;
        if (kind === 'crash' || kind === 'pause') f = { kind, target: rng.pick(CMS).id, durationMs };
        else if (kind === 'broker-down') f = { kind, target: rng.pick(SITES), durationMs };
        else if (kind === 'registrar-down') f = { kind, target: rng.pick(CMS).id, durationMs, how: rng.chance(0.5) ? 'kill' : 'stop' };
        // Half of the cuts are the fleet's: those are the ones phones must ride out themselves.
        else f = { kind, target: rng.chance(0.5) ? 'fleet' : rng.pick(CMS).id, site: rng.pick(SITES), durationMs };
        const key = f.site ? `${f.target}|${f.site}` : f.target;
        if (busyTargets.has(key) || busyTargets.has(f.target)) continue;
        return f;
      }
      return null;
    };

    const fallbackMs = bounds.fallback;
    const faultsEnd = Date.now() + Math.max(10_000, opts.minutes * 60_000 - (opts.plant ? 0 : Math.min(fallbackMs, opts.minutes * 30_000)));
    if (opts.plant === 'slow-detect') {
      // One stop of cm-a, longer than home-is-live's bound and shorter than its will (1.5 × 30 s).
      const f: Fault = { kind: 'pause', target: 'cm-a', durationMs: bounds.reconnect + 8000 };
      await apply(f);
      await delay(f.durationMs);
      await undo(f);
    } else if (opts.plant === 'storm') {
      say(`plant: ${PHONE_PREFIX}storm connects to broker A every 250 ms for 20 s`);
      const stormTls = await pki.clientTls(`${PHONE_PREFIX}storm`);
      // Not awaited one by one: a TLS handshake on a loaded machine takes a while, the storm keeps its pace.
      const attempts: Promise<void>[] = [];
      for (let i = 0; i < 80; i++) {
        attempts.push(rogueConnect(proxies.get('A')!.port, `${PHONE_PREFIX}storm`, stormTls));
        await delay(250);
      }
      await Promise.all(attempts);
    } else if (opts.plant === 'hidden-stop') {
      say('plant: cm-a SIGSTOPped for 2 × the phones\' round, the checkers told it runs');
      // Only a home usable for longer than the live window before the phones decide counts as
      // "usable all along": on a loaded CI machine the fleet can be ready a few seconds after cm-a
      // started, and the phones' leave then fell inside the window (the plant was not caught).
      await delay(bounds.liveWindow + 1000);
      claimedUp.add('cm-a');
      cluster.cms.get('cm-a')!.signal('SIGSTOP');
      cmState.set('cm-a', 'stopped');
      await delay(2 * bounds.round + 2000);
      cluster.cms.get('cm-a')!.signal('SIGCONT');
      cmState.set('cm-a', 'up');
      claimedUp.delete('cm-a');
      judge.sample();
    } else if (opts.plant === 'unwatched-registrar') {
      // cm-a was started without its sip section: it never finds its Kamailio silent.
      const f: Fault = { kind: 'registrar-down', target: 'cm-a', durationMs: bounds.detect + bounds.sipDetect + 8000, how: 'stop' };
      await apply(f);
      await delay(f.durationMs);
      await undo(f);
    } else {
      for (let episode = 0; episode < 1000 && Date.now() < faultsEnd - 4000; episode++) {
        const left = faultsEnd - Date.now();
        const first = draw(new Set(), left);
        if (first === null) break;
        const running: Promise<void>[] = [];
        const one = async (f: Fault): Promise<void> => {
          await apply(f);
          await delay(f.durationMs);
          await undo(f);
        };
        running.push(one(first));
        if (rng.chance(0.35)) {
          const lag = rng.int(0, Math.floor(first.durationMs / 2));
          const second = draw(new Set([first.site ? `${first.target}|${first.site}` : first.target]), Math.max(1000, left - lag));
          if (second !== null) running.push(delay(lag).then(() => one(second)));
        }
        const all = Promise.all(running);
        pending.add(all);
        await all;
        pending.delete(all);
        // service-when-possible: after the heal, every phone homes within the bound.
        const healedAt = Date.now();
        const ok = await until(() => judge.notHomed().length === 0, bounds.service);
        if (!ok) judge.fail('service-when-possible', `${episode}`, `${judge.notHomed().length} phones not homed ${Date.now() - healedAt} ms after the heal (bound ${bounds.service} ms): ${judge.describe(judge.notHomed())}`);
        else say(`quiet: all ${opts.phones} phones homed ${Date.now() - healedAt} ms after the heal`);
        await delay(rng.int(1000, 4000));
      }
    }

    // ---- after the faults: fallback -------------------------------------------------------
    if (opts.plant === 'stopped-as-healthy') {
      say('plant: cm-a SIGSTOPped, the checkers told it runs');
      cluster.cms.get('cm-a')!.signal('SIGSTOP');
      cmState.set('cm-a', 'stopped');
      claimedUp.add('cm-a');
    }
    // fallback: by hold + bound after the last heal every idle phone is on its highest healthy
    // pointer — and stays there for a detection bound (a rule met for an instant proves nothing).
    const lastHeal = Date.now();
    const settleMs = bounds.detect + 2000;
    let stableSince: number | null = null;
    for (let i = 0; i < 100_000; i++) {
      const now = Date.now();
      if (judge.notFallenBack().length === 0) {
        stableSince ??= now;
        if (now - stableSince >= settleMs) {
          say(`fallback: every idle phone on its highest healthy pointer ${stableSince - lastHeal} ms after the last heal, and still ${settleMs} ms later`);
          break;
        }
      } else {
        stableSince = null;
        if (now - lastHeal > fallbackMs) {
          judge.fail('fallback', 'end', `${judge.notFallenBack().length} idle phones not on their highest healthy pointer ${now - lastHeal} ms after the last heal (bound ${fallbackMs} ms): ${judge.describe(judge.notFallenBack())}`);
          break;
        }
      }
      await delay(250);
    }
  } finally {
    ticking = false;
    await tickLoop.catch(() => undefined);
    await Promise.allSettled([...pending]);
    for (const p of cluster.cms.values()) p.signal('SIGCONT');
    await hostile.stop().catch(() => undefined);
    await judge.close();
    await cluster.close().catch(() => undefined);
    for (const p of proxies.values()) await p.close();
    for (const m of brokers.values()) await m.stop().catch(() => undefined);
    for (const k of kamailios.values()) {
      signalGroup(k, 'SIGCONT');
      await k.stop().catch(() => undefined);
    }
    pki.remove();
  }
  return {
    minutes: opts.minutes,
    seed: opts.seed,
    phones: opts.phones,
    faults,
    violations: judge.violations,
    failures: judge.failures,
    checks: judge.checks,
    seen: judge.seen,
    hostile: { published: hostile.published, received: hostile.received },
    wallMs: Date.now() - started,
    ...(opts.plant ? { plant: opts.plant } : {}),
  };
}

/** Signal Kamailio's whole process group (its workers hold the TCP listener). */
function signalGroup(k: Kamailio, sig: NodeJS.Signals): void {
  if (k.pid === undefined) return;
  try {
    process.kill(-k.pid, sig);
  } catch {
    // gone
  }
}

/** One MQTT 3.1.1 CONNECT (clean, keep-alive 10 s) as `clientId` to 127.0.0.1:`port` over TLS with `creds`, then close. */
async function rogueConnect(port: number, clientId: string, creds: { ca: Buffer; cert: Buffer; key: Buffer }): Promise<void> {
  const id = Buffer.from(clientId);
  const variable = Buffer.from([0, 4, 0x4d, 0x51, 0x54, 0x54, 4, 0x02, 0, 10]);
  const body = Buffer.concat([variable, Buffer.from([id.length >> 8, id.length & 0xff]), id]);
  const packet = Buffer.concat([Buffer.from([0x10, body.length]), body]);
  await new Promise<void>((done) => {
    const s = tls.connect({ port, host: '127.0.0.1', maxVersion: 'TLSv1.2', ...creds }, () => s.end(packet));
    s.on('error', () => done());
    s.on('close', () => done());
    s.setTimeout(2000, () => s.destroy());
  });
}

/** Poll `pred` every 250 ms until it holds (true) or `ms` pass (false). */
async function until(pred: () => boolean, ms: number): Promise<boolean> {
  const end = Date.now() + ms;
  for (;;) {
    if (pred()) return true;
    if (Date.now() >= end) return false;
    await delay(250);
  }
}
