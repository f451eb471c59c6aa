/**
 * The narrated story: the group comes up, phones home on cm-a, cm-a is
 * killed (`kill -9`), every phone rehomes to cm-b (timed from the kill to the
 * phone's own `rehomed` event), cm-a comes back, and after the hold-down the
 * phones fall back to it. Each step waits for what it expects, with a
 * time-out that names the step.
 */
import { IpphoneError } from '../lib/errors.js';
import type { TerminalDisplay } from '../hw/terminal-display.js';
import type { CmProcess } from './cm-process.js';
import type { Rehome, RehomeWatcher } from './events.js';
import { table, type Narrator } from './narrator.js';
import { startPhones, type DemoPhone } from './phones.js';
import { checkAborted, waitUntil, type WaitOptions } from './wait.js';

export interface ScriptContext {
  say: Narrator;
  /** The group in priority order: [0] is the primary that gets killed, [1] takes over. */
  cms: readonly CmProcess[];
  phones: readonly DemoPhone[];
  watcher: RehomeWatcher;
  lcd: TerminalDisplay;
  holdMs: number;
  /** Fires on Ctrl-C: every step stops at its next check. */
  signal: AbortSignal;
}

export interface SummaryRow {
  phone: string;
  failoverTo: string;
  failoverReason: string;
  /** From the kill to the phone's `rehomed` event, ms. */
  failoverMs: number;
  /** From the restarted primary being healthy to the phone's fallback event, ms. */
  fallbackMs: number;
}

/** Time-outs of each step, ms. Generous: a loaded CI machine compiles TypeScript on start. */
const CM_START_MS = 30_000;
const HOMED_MS = 15_000;
const FAILOVER_MS = 10_000;
const LCD_MS = 5000;

const homes = (phones: readonly DemoPhone[]): string => phones.map((p) => `${p.id}: ${p.agent.home ?? 'none'}`).join(', ');

function lcdRow0(lcd: TerminalDisplay): string {
  return (lcd.lines[0] ?? '').trim();
}

/** Wait until every phone has a rehome to `to` since `since`, and is homed there now. */
async function awaitRehomes(c: ScriptContext, since: number, to: string, timeoutMs: number, what: string): Promise<Map<string, Rehome>> {
  const got = new Map<string, Rehome>();
  await waitUntil(
    () => {
      for (const r of c.watcher.since(since)) {
        if (got.has(r.phone)) continue;
        if (r.to !== to) throw new IpphoneError(`${what}: ${r.phone} moved to ${r.to} (${r.reason}), expected ${to}`, 'TIMEOUT');
        got.set(r.phone, r);
      }
      return c.phones.every((p) => got.has(p.id) && p.agent.home === to);
    },
    { timeoutMs, what, detail: () => `homes now: ${homes(c.phones)}`, signal: c.signal },
  );
  return got;
}

export async function runScript(c: ScriptContext): Promise<SummaryRow[]> {
  const { say, phones, lcd } = c;
  const primary = c.cms[0]!;
  const backup = c.cms[1]!;
  const n = phones.length;
  const wait = (pred: () => boolean, o: WaitOptions): Promise<void> => waitUntil(pred, { ...o, signal: c.signal });
  const step = (): void => checkAborted(c.signal);

  for (const cm of c.cms) {
    step();
    const pid = await cm.start();
    say.say(`${cm.id} started (pid ${pid}), services ${cm.spec.services}`);
  }
  await Promise.all(c.cms.map((cm) => cm.waitHealthy(CM_START_MS, c.signal)));
  say.say(`call-manager group up: ${c.cms.map((cm) => cm.id).join(', ')} (each a child process, all connected to the broker)`);

  step();
  await startPhones(phones);
  say.say(`${n} phones started in this process: ${phones.map((p) => p.id).join(', ')} (${phones[0]!.id} is drawn as the LCD)`);
  await wait(() => phones.every((p) => p.agent.home === primary.id), { timeoutMs: HOMED_MS, what: `all phones homed on ${primary.id}`, detail: () => homes(phones) });
  say.say(`all ${n} phones homed on ${primary.id}`);
  await wait(() => phones.every((p) => p.agent.servicesShown === primary.id), {
    timeoutMs: HOMED_MS,
    what: `all phones showing ${primary.id}'s services page`,
    detail: () => phones.map((p) => `${p.id}: ${p.agent.servicesShown ?? 'none'}`).join(', '),
  });
  say.say(`all ${n} phones show ${primary.id}'s services page; keep-alives every 1 s`);

  // Print each rehome the moment the phone reports it.
  let killedAt = 0;
  let backAt = 0;
  c.watcher.onRehome = (r) => {
    const t0 = backAt > 0 ? backAt : killedAt;
    const after = t0 > 0 ? `, ${r.at - t0} ms after ${backAt > 0 ? `${primary.id} came back` : 'the kill'}` : '';
    const verb = r.reason === 'fallback' ? 'fell back' : 'rehomed';
    say.say(`${r.phone} ${verb} ${r.from ?? '-'} → ${r.to} (${r.reason})${after}`);
  };

  step();
  say.say(`kill -9 ${primary.id} (pid ${primary.pid})`);
  killedAt = Date.now();
  await primary.kill9();
  const failovers = await awaitRehomes(c, killedAt, backup.id, FAILOVER_MS, `every phone rehomed to ${backup.id} after ${primary.id} was killed`);
  const worst = Math.max(...[...failovers.values()].map((r) => r.at - killedAt));
  say.say(`all ${n} phones on ${backup.id}: failover complete ${worst} ms after the kill`);
  await wait(() => lcdRow0(lcd) === `CM ${backup.id}`, { timeoutMs: LCD_MS, what: `LCD showing ${backup.id}`, detail: () => `row 0: "${lcdRow0(lcd)}"` });
  say.say(`LCD of ${phones[0]!.id} shows "${lcdRow0(lcd)}"`);

  step();
  const pid = await primary.start();
  say.say(`${primary.id} restarting (pid ${pid})`);
  await primary.waitHealthy(CM_START_MS, c.signal);
  backAt = Date.now();
  say.say(`${primary.id} is back; phones return after it has been healthy for the ${(c.holdMs / 1000).toFixed(0)} s hold-down`);
  const fallbacks = await awaitRehomes(c, backAt, primary.id, c.holdMs + 20_000, `every phone fell back to ${primary.id}`);
  say.say(`all ${n} phones back on ${primary.id}`);
  await wait(() => lcdRow0(lcd) === `CM ${primary.id}`, { timeoutMs: LCD_MS, what: `LCD showing ${primary.id}`, detail: () => `row 0: "${lcdRow0(lcd)}"` });
  say.say(`LCD of ${phones[0]!.id} shows "${lcdRow0(lcd)}"`);
  c.watcher.onRehome = undefined;

  return phones.map((p) => {
    const f = failovers.get(p.id)!;
    return { phone: p.id, failoverTo: f.to, failoverReason: f.reason, failoverMs: f.at - killedAt, fallbackMs: fallbacks.get(p.id)!.at - backAt };
  });
}

/** The summary table. */
export function summaryTable(rows: readonly SummaryRow[], primary: string): string {
  return table(
    ['phone', 'failover to', 'reason', 'failover ms', `fallback to ${primary} after s`],
    rows.map((r) => [r.phone, r.failoverTo, r.failoverReason, String(r.failoverMs), (r.fallbackMs / 1000).toFixed(1)]),
  );
}
