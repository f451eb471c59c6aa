/**
 * Two device images' agents side by side (issue 18): RSS of the image agent from
 * another tree (`BEFORE`, e.g. a `git worktree` of an older commit after its
 * `node scripts/bundle.mjs`) and from this tree's dist/image, each over `mqtt:` and
 * over `mqtts:` with a client certificate, beside a bare node of the same version,
 * all with the unit's options, on each Node line, all spawned together so they share
 * the machine's load, each with the unit's environment only (bench/footprint.ts
 * unitEnvWrap). Not under W^X (RSS is the same; bench/footprint.ts runs W^X).
 *
 *   BEFORE=/tmp/wt/dist/image/usr/lib/ipphone [MAJORS='[20,22,24]'] [RSS_MS=30000] \
 *     npx tsx bench/footprint-ab.ts
 */
import path from 'node:path';
import { Observer, spawnNode, startGroup, tempDir, rssKiB, sleep, ROOT } from './harness.js';
import { unitNodeOptions } from '../test/helpers/unit-runtime.js';
import { nodeRuntime } from '../test/helpers/node-runtimes.js';
import { makePki } from '../test/helpers/pki.js';
import { unitEnvWrap } from './footprint.js';
const flags = unitNodeOptions();
const env = unitEnvWrap();
if (process.env.BEFORE === undefined) throw new Error('BEFORE=DIR (the other image\'s usr/lib/ipphone) is required');
const images: Record<string, string> = { before: process.env.BEFORE, after: path.join(ROOT, 'dist/image/usr/lib/ipphone') };
const majors = JSON.parse(process.env.MAJORS ?? '[20,22,24]') as (20 | 22 | 24)[];
const pki = await makePki();
const client = await pki.client('p-ab');
const groups = { plain: await startGroup({}), tls: await startGroup({ tls: { ca: pki.ca.cert, server: pki.server, client } }) };
const obs = { plain: await Observer.connect(groups.plain.broker.url, groups.plain.clientOptions), tls: await Observer.connect(groups.tls.broker.url, groups.tls.clientOptions) };
await groups.plain.startCm('cm-a', obs.plain);
await groups.tls.startCm('cm-a', obs.tls);
const runs: { key: string; major: number; tr: 'plain' | 'tls'; img: string; id: string; agent: ReturnType<typeof spawnNode> }[] = [];
const bares: Record<number, ReturnType<typeof spawnNode>> = {};
for (const major of majors) {
  const node = nodeRuntime(major).node;
  bares[major] = spawnNode(`bare${major}`, [...flags, '-e', 'setInterval(()=>{},1000)'], undefined, node);
  for (const tr of ['plain', 'tls'] as const)
    for (const img of Object.keys(images)) {
      const id = `p-ab${major}-${tr}-${img}`;
      const cfg = groups[tr].agentConfig(id, { holdMs: 120000, stateDir: tempDir('ab') });
      runs.push({ key: `${major} ${tr} ${img}`, major, tr, img, id, agent: spawnNode(id, [...flags, path.join(images[img]!, 'ipphone-agent.mjs'), '--config', cfg], env, node) });
    }
}
await Promise.all(runs.map((r) => obs[r.tr].waitHomed(r.id, 'cm-a', 120000, r.agent)));
await sleep(Number(process.env.RSS_MS ?? 30000));
const rows: string[] = [];
for (const major of majors) {
  const b = rssKiB(bares[major]!.pid);
  for (const r of runs.filter((x) => x.major === major)) {
    const a = rssKiB(r.agent.pid);
    rows.push(`node${major} ${r.tr} ${r.img}: agent ${(a / 1024).toFixed(1)} MiB, bare ${(b / 1024).toFixed(1)} MiB, ${(a / b).toFixed(3)}x`);
  }
}
console.log(rows.join('\n'));
for (const r of runs) await r.agent.stop('SIGTERM');
for (const b of Object.values(bares)) await b.stop('SIGKILL');
await obs.plain.close(); await obs.tls.close(); await groups.plain.close(); await groups.tls.close(); pki.remove();
process.exit(0);
