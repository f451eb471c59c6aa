/**
 * The failover figures of examples/README.md, measured with the shipped examples:
 * `npx tsx bench/examples-failover.ts [--tries N]` (default 3). Starts examples/mosquitto.conf,
 * cm-a, cm-b, phone.json and phone-2.json as examples/README.md does — only the ports and
 * state directories moved, as test/integration/examples.test.ts moves them — and, N times each:
 * kill -9 of cm-a (a crash) and SIGSTOP of cm-a (a hang), then the time from the signal until
 * both phones' retained status names cm-b, with the reason and detectMs/rehomeMs of their
 * `rehomed` events. cm-a is restarted and the phones fall back (fallback.holdMs) between tries.
 * Prints a markdown table; asserts nothing.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'mqtt';
import { startMosquitto } from '../test/helpers/mosquitto.js';
import { freePort, waitFor } from '../test/helpers/net.js';
import { programArgs, ROOT } from '../test/helpers/programs.js';

const tries = Number(process.argv[process.argv.indexOf('--tries') + 1] ?? 3) || 3;
const EX = join(ROOT, 'examples');
const mosq = await startMosquitto({
  confText: (port) => readFileSync(join(EX, 'mosquitto.conf'), 'utf8').replace(/^listener 1883 /m, `listener ${port} `).replace(/^log_dest stdout$/m, 'log_dest stderr'),
});
const dir = mkdtempSync(join(tmpdir(), 'ipphone-ex-bench-'));
const ports = new Map([
  ['8081', await freePort()],
  ['8082', await freePort()],
]);
const copy = (file: string): string => {
  const text = readFileSync(join(EX, file), 'utf8')
    .replace(/127\.0\.0\.1:1883/g, `127.0.0.1:${mosq.port}`)
    .replace(/127\.0\.0\.1:(8081|8082)/g, (_, p: string) => `127.0.0.1:${ports.get(p)}`);
  const c = JSON.parse(text) as Record<string, any>;
  c.stateDir = join(dir, file.replace(/\.json$/, ''));
  if (typeof c.signingKey === 'string') c.signingKey = join(ROOT, c.signingKey);
  if (typeof c.console?.tokenFile === 'string') c.console.tokenFile = join(ROOT, c.console.tokenFile);
  if (c.http?.port !== undefined) c.http.port = ports.get(String(c.http.port)) ?? c.http.port;
  const out = join(dir, file);
  writeFileSync(out, JSON.stringify(c));
  return out;
};
const procs: ChildProcess[] = [];
const start = (program: 'ipphone-cm' | 'ipphone-agent', file: string): ChildProcess => {
  const p = spawn(process.execPath, [...programArgs(program), '--config', copy(file)], { cwd: ROOT, stdio: 'ignore' });
  procs.push(p);
  return p;
};
const cleanup = async (): Promise<void> => {
  for (const p of procs) p.kill('SIGKILL');
  await mosq.stop();
  rmSync(dir, { recursive: true, force: true });
};

const ids = ['p-0001', 'p-0002'];
const homes = new Map<string, { home: string | null; at: number }>();
const events: { phone: string; reason: string; detectMs: number; rehomeMs: number }[] = [];
const w = connect(mosq.url, { reconnectPeriod: 0 });
await new Promise<void>((resolve, reject) => {
  w.once('connect', () => resolve());
  w.once('error', reject);
});
w.on('message', (topic, payload) => {
  const phone = topic.split('/')[3]!;
  try {
    const o = JSON.parse(payload.toString()) as Record<string, any>;
    if (topic.endsWith('/status')) homes.set(phone, { home: o.home ?? null, at: performance.now() });
    else if (o.type === 'rehomed') events.push({ phone, reason: o.reason, detectMs: o.detectMs, rehomeMs: o.rehomeMs });
  } catch {
    // not ours
  }
});
await w.subscribeAsync(['ipphone/v1/phone/+/status', 'ipphone/v1/phone/+/event']);

let cmA = start('ipphone-cm', 'cm-a.json');
start('ipphone-cm', 'cm-b.json');
for (const f of ['phone.json', 'phone-2.json']) start('ipphone-agent', f);
const allOn = (cm: string) => (): boolean => ids.every((id) => homes.get(id)?.home === cm);

const rows: string[] = [];
try {
  for (let i = 0; i < tries; i++) {
    for (const signal of ['SIGKILL', 'SIGSTOP'] as const) {
      await waitFor(allOn('cm-a'), { timeoutMs: 120_000, intervalMs: 20, what: 'both phones on cm-a' });
      await new Promise((r) => setTimeout(r, 1500));
      events.length = 0;
      const t0 = performance.now();
      cmA.kill(signal);
      await waitFor(allOn('cm-b'), { timeoutMs: 30_000, intervalMs: 2, what: 'both phones on cm-b' });
      const ms = ids.map((id) => Math.round(homes.get(id)!.at - t0));
      await waitFor(() => events.length >= 2, { timeoutMs: 5000, what: 'the rehomed events' }).catch(() => {});
      const ev = events.map((e) => `${e.phone} ${e.reason} ${Math.round(e.detectMs)}/${Math.round(e.rehomeMs)}`).join(', ');
      rows.push(`| ${signal === 'SIGKILL' ? 'crash (kill -9)' : 'hang (SIGSTOP)'} | ${ms.join(', ')} | ${ev} |`);
      console.error(rows.at(-1));
      cmA.kill('SIGKILL');
      cmA = start('ipphone-cm', 'cm-a.json');
    }
  }
} finally {
  w.end(true);
  await cleanup();
}
console.log(['| cm-a | ms from the signal to each phone\'s status on cm-b | rehomed events: phone reason detectMs/rehomeMs |', '| --- | --- | --- |', ...rows].join('\n'));
process.exit(0);
