/**
 * A call-manager group with real SIP (issue 11), for the SIP tests and the SIP
 * bench alike: two Kamailio registrars, cm-a and cm-b each paired with one
 * (`sip.registrar`, its OPTIONS probe) and carrying it as the member's `sip`,
 * and phones each with its own baresip and the simulator board on a real pty.
 * Everything started is registered with `cleanup` (newest first on close).
 */
import { appendFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startBaresip, type Baresip } from './baresip.js';
import { Cluster as ClusterCtor, type Cluster, type Proc } from './cluster.js';
import { startKamailio, type Kamailio, type KamailioOptions } from './kamailio.js';
import { waitFor } from './net.js';
import { ROOT } from './programs.js';
import { startPtyPair } from './pty.js';

export interface SipPhone {
  id: string;
  /** The phone's number (SIP user part); '' for a phone without SIP. */
  user: string;
  agent: Proc;
  /** Its baresip, or null for a phone without SIP. */
  ua: Baresip | null;
  /** Type on the phone's keypad (the sim board's hook key is `h`). */
  type(keys: string): void;
}

export interface SipGroupOptions {
  probe: { probeMs: number; missLimit: number };
  fallbackHoldMs: number;
  /**
   * Phones to start: a number (user part) for a SIP phone, null for one without SIP; `password`:
   * written to a file the phone's `sip.passwordFile` names (issue 17); `sip`: more of its `sip` section.
   */
  phones: { id: string; user: string | null; password?: string; sip?: Record<string, unknown> }[];
  /** Both registrars' variant (digest auth, TLS); default the plain TCP registrar. */
  kamailio?: KamailioOptions;
  /** Phones reach the registrars over TLS (`kamailio.tls` needed): the members' `sip` is the TLS URI; the call managers still probe over TCP. */
  overTls?: boolean;
  /** More lines for every phone's baresip config (e.g. `sip_cafile`). */
  baresipConf?: readonly string[];
  /** More of every phone's agent config (e.g. `log`). */
  agent?: Record<string, unknown>;
  /** Called with each stop function, in start order. */
  cleanup: (stop: () => Promise<unknown>) => void;
}

/** Start the registrars and call managers on `broker`, then the phones (not waited for). */
export async function startSipGroup(c: Cluster, broker: string, o: SipGroupOptions): Promise<{ ka: Kamailio; kb: Kamailio; phones: SipPhone[]; restartCmA: () => Promise<unknown> }> {
  const [ka, kb] = await Promise.all([startKamailio(o.kamailio), startKamailio(o.kamailio)]);
  const phoneSip = (k: Kamailio): string => (o.overTls === true ? k.tlsUri! : k.uri);
  o.cleanup(() => ka.stop());
  o.cleanup(() => kb.stop());
  await c.defineGroup([
    { id: 'cm-a', broker, sip: phoneSip(ka) },
    { id: 'cm-b', broker, sip: phoneSip(kb) },
  ]);
  await c.observe(broker);
  await c.startCm('cm-a', { sip: { registrar: ka.uri, ...o.probe } });
  await c.startCm('cm-b', { sip: { registrar: kb.uri, ...o.probe } });
  const board = ['--board', join(ROOT, 'hw/boards/sim.json')];
  const phones: SipPhone[] = [];
  for (const { id, user, password, sip: sipExtra } of o.phones) {
    const pair = await startPtyPair(join(c.dir, `${id}-near`), join(c.dir, `${id}-far`));
    o.cleanup(() => pair.kill());
    const ua = user === null ? null : await startBaresip(o.baresipConf !== undefined ? { conf: o.baresipConf } : {});
    if (ua !== null) o.cleanup(() => ua.stop());
    let passwordFile: { passwordFile: string } | object = {};
    if (password !== undefined) {
      const file = join(c.dir, `${id}-sip.secret`);
      writeFileSync(file, `${password}\n`, { mode: 0o600 });
      passwordFile = { passwordFile: file };
    }
    const sip = ua === null ? {} : { sip: { driver: 'baresip', ctrl: `127.0.0.1:${ua.ctrlPort}`, user, ...passwordFile, ...sipExtra } };
    const agent = c.startAgentOnTty(id, c.agentConfig(id, { ...sip, fallback: { holdMs: o.fallbackHoldMs }, ...o.agent }), pair.near, board);
    phones.push({ id, user: user ?? '', agent, ua, type: (keys) => appendFileSync(pair.far, keys) });
  }
  return { ka, kb, phones, restartCmA: () => c.startCm('cm-a', { sip: { registrar: ka.uri, ...o.probe } }) };
}

/** A phone of the group with its own baresip (`startSipGroup`'s phones). */
export type UaPhone = SipPhone & { ua: Baresip };

/** The `sip` part of a phone's last status. */
export const sipOf = (c: Cluster, phone: string): ({ registrar?: string | null; call?: string } & Record<string, unknown>) | undefined =>
  c.status(phone)?.sip as ({ registrar?: string | null; call?: string } & Record<string, unknown>) | undefined;

/** Wait for a phone's status, with its agent's and baresip's output in the failure message. */
export async function untilPhone(c: Cluster, p: UaPhone, cond: () => boolean, what: string, timeoutMs = 30_000): Promise<void> {
  await waitFor(cond, { timeoutMs, what: `${p.id}: ${what}` }).catch((e: Error) => {
    throw new Error(`${e.message}\nstatus ${JSON.stringify(c.status(p.id))}\n${p.agent.output().slice(-4000)}\n--- baresip ---\n${p.ua.output().slice(-2000)}`);
  });
}

/** Wait until the phone's status says its call is in `state`. */
export const callIs = (c: Cluster, p: UaPhone, state: string): Promise<void> => untilPhone(c, p, () => sipOf(c, p.id)?.call === state, `call ${state}`);

/**
 * A cluster for one test of a SIP group, closed at the test's teardown, and the
 * `cleanup` to hand `startSipGroup` (what it started is stopped after, newest first).
 */
export function sipTestCluster(t: { teardown(fn: () => Promise<void>): void }): { c: Cluster; cleanup: (stop: () => Promise<unknown>) => void } {
  const c = new ClusterCtor();
  const stops: (() => Promise<unknown>)[] = [];
  t.teardown(async () => {
    await c.close();
    for (const s of stops.reverse()) await s();
  });
  return { c, cleanup: (s) => stops.push(s) };
}
