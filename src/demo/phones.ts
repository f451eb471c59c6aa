/**
 * The demo's phones: the real agent core built by `composeAgent`, in this
 * process, each with its own MQTT connection and state dir. One draws its
 * screen as an LCD in the terminal; the others are headless. Their logs go to
 * a file at `warn` so the narration stays readable.
 */
import { join } from 'node:path';
import { pino } from 'pino';
import type { Agent } from '../agent/agent.js';
import { composeAgent } from '../agent/compose.js';
import { validateAgentConfig } from '../config/agent-config.js';
import { IpphoneError } from '../lib/errors.js';
import type { Logger } from '../lib/log.js';
import { headlessHardware } from '../hw/headless.js';
import type { Display, PhoneHardware } from '../hw/types.js';
import { KEY_ID, type Workspace } from './workspace.js';

export interface DemoPhone {
  id: string;
  agent: Agent;
  hardware: PhoneHardware;
}

export interface PhonesOptions {
  workspace: Workspace;
  count: number;
  /** The display of the first phone (the one drawn in the terminal); the rest are headless. */
  lcd: Display;
  /** Fallback hold-down, ms. */
  holdMs: number;
  /** pino level of phones.log, e.g. `warn` (default) or `debug`. */
  logLevel?: string;
}

/** A pino logger writing `level` and above to `file`, synchronously (nothing lost on exit). */
export function fileLogger(file: string, level: string): Logger {
  return pino({ level, base: {}, timestamp: pino.stdTimeFunctions.epochTime }, pino.destination({ dest: file, sync: true, mkdir: true }));
}

export function phoneId(n: number): string {
  return `phone-${n}`;
}

/** Build (not start) `count` phones: ids phone-1 … phone-N, pointers = the demo group. */
export function buildPhones(o: PhonesOptions): DemoPhone[] {
  const log = fileLogger(join(o.workspace.dir, 'phones.log'), o.logLevel ?? 'warn');
  const phones: DemoPhone[] = [];
  for (let n = 1; n <= o.count; n++) {
    const id = phoneId(n);
    const checked = validateAgentConfig({
      phoneId: id,
      pointers: o.workspace.pointers(),
      keepalive: { intervalMs: 1000, missLimit: 3 },
      fallback: { holdMs: o.holdMs },
      services: { timeoutMs: 2000 },
      stateDir: o.workspace.stateDir(id),
      trust: { keys: { [KEY_ID]: o.workspace.publicPem } },
      // aedes speaks MQTT 3.1.1 only.
      mqtt: { protocolVersion: 4, backoff: { baseMs: 200, maxMs: 2000 } },
      log: { level: 'warn' },
    });
    if (!checked.ok) throw new IpphoneError(`demo phone config is invalid: ${checked.problems.join('; ')}`, 'CONFIG_INVALID', { problems: checked.problems });
    const base = headlessHardware();
    const hardware: PhoneHardware = n === 1 ? { ...base, display: o.lcd } : base;
    phones.push({ id, hardware, agent: composeAgent({ config: checked.config, log: log.child({ phone: id }), hardware }) });
  }
  return phones;
}

/** Start hardware then agents. */
export async function startPhones(phones: readonly DemoPhone[]): Promise<void> {
  for (const p of phones) {
    await p.hardware.display.start();
    await p.hardware.keypad.start();
    await p.hardware.hook?.start();
    await p.agent.start();
  }
}

/** Stop every agent (each publishes its offline status). Never throws. */
export async function stopPhones(phones: readonly DemoPhone[]): Promise<void> {
  await Promise.all(
    phones.map(async (p) => {
      await p.agent.stop().catch(() => undefined);
      await p.hardware.display.close().catch(() => undefined);
    }),
  );
}
