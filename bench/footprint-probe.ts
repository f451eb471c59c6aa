/**
 * Where an agent's resident memory goes (issue 18): image agents (one or more
 * image directories, `IMAGES='{"label":"dir/usr/lib/ipphone",...}'`, default this
 * tree's dist/image) over `mqtt:` and `mqtts:` with a client certificate, beside a
 * bare node of the same version, all with the unit's options and only the unit's
 * Environment= (bench/footprint.ts {@link unitEnvWrap}), spawned together. After
 * `RSS_MS` each process's /proc/PID/smaps is summed by kind of mapping (the node
 * binary's pages, malloc's heap, other anonymous memory, libraries), and with
 * `HEAP=1` each agent writes a heap snapshot (`--heapsnapshot-signal`), summed
 * by V8 node type, into `OUT` (default /tmp).
 *
 *   [IMAGES=…] [MAJORS='[20,22,24]'] [MODES='["plain","tls"]'] [RSS_MS=20000] [HEAP=1] \
 *     npx tsx bench/footprint-probe.ts
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { Observer, spawnNode, startGroup, tempDir, rssKiB, sleep, ROOT, type Child } from './harness.js';
import { unitNodeOptions } from '../test/helpers/unit-runtime.js';
import { nodeRuntime } from '../test/helpers/node-runtimes.js';
import { makePki } from '../test/helpers/pki.js';
import { unitEnvWrap } from './footprint.js';

/** KiB resident per kind of mapping, from /proc/PID/smaps. */
export function smapsByKind(pid: number, node: string): Record<string, number> {
  const out: Record<string, number> = {};
  let kind = '';
  const real = (p: string): string => {
    try {
      return path.resolve(p);
    } catch {
      return p;
    }
  };
  const nodeBin = real(node);
  for (const line of readFileSync(`/proc/${pid}/smaps`, 'utf8').split('\n')) {
    const head = /^[0-9a-f]+-[0-9a-f]+ (\S{4}) \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (head !== null) {
      const [, perms, name] = head;
      const file = name ?? '';
      if (file === '' ) kind = `anon ${perms}`;
      else if (file === '[heap]') kind = 'malloc heap [heap]';
      else if (file.startsWith('[stack')) kind = 'main stack';
      else if (file.startsWith('[')) kind = file;
      else if (real(file) === nodeBin || file.endsWith('/node')) kind = `node binary ${perms}`;
      else kind = `lib ${path.basename(file)}`;
      continue;
    }
    const m = /^Rss:\s+(\d+) kB/.exec(line);
    if (m !== null) out[kind] = (out[kind] ?? 0) + Number(m[1]);
  }
  return out;
}

/** Self size summed per V8 heap-snapshot node type (and the biggest names of a few types). */
export function heapByType(file: string): { types: Record<string, number>; top: Record<string, Array<[string, number]>> } {
  const snap = JSON.parse(readFileSync(file, 'utf8')) as { snapshot: { meta: { node_fields: string[]; node_types: [string[]] } }; nodes: number[]; strings: string[] };
  const f = snap.snapshot.meta.node_fields;
  const types = snap.snapshot.meta.node_types[0];
  const n = f.length;
  const [iType, iName, iSize] = [f.indexOf('type'), f.indexOf('name'), f.indexOf('self_size')];
  const out: Record<string, number> = {};
  const names: Record<string, Map<string, number>> = {};
  for (let i = 0; i < snap.nodes.length; i += n) {
    const t = types[snap.nodes[i + iType]!]!;
    const size = snap.nodes[i + iSize]!;
    out[t] = (out[t] ?? 0) + size;
    if (['code', 'hidden', 'object', 'array', 'closure', 'object shape'].includes(t)) {
      const name = snap.strings[snap.nodes[i + iName]!]!.slice(0, 60);
      const m = (names[t] ??= new Map());
      m.set(name, (m.get(name) ?? 0) + size);
    }
  }
  const top = Object.fromEntries(Object.entries(names).map(([t, m]) => [t, [...m].sort((a, b) => b[1] - a[1]).slice(0, 12)]));
  return { types: out, top };
}

const isMain = process.argv[1] !== undefined && path.resolve(process.argv[1]).endsWith('footprint-probe.ts');
if (isMain) {
  const flags = unitNodeOptions();
  const images = JSON.parse(process.env.IMAGES ?? JSON.stringify({ tree: path.join(ROOT, 'dist/image/usr/lib/ipphone') })) as Record<string, string>;
  const majors = JSON.parse(process.env.MAJORS ?? '[20,22,24]') as (20 | 22 | 24)[];
  const modes = JSON.parse(process.env.MODES ?? '["plain","tls"]') as ('plain' | 'tls')[];
  const heap = process.env.HEAP === '1';
  const outDir = process.env.OUT ?? '/tmp';
  const pki = await makePki();
  const client = await pki.client('p-probe');
  const groups = { plain: await startGroup({}), tls: await startGroup({ tls: { ca: pki.ca.cert, server: pki.server, client } }) };
  const obs = { plain: await Observer.connect(groups.plain.broker.url, groups.plain.clientOptions), tls: await Observer.connect(groups.tls.broker.url, groups.tls.clientOptions) };
  await groups.plain.startCm('cm-a', obs.plain);
  await groups.tls.startCm('cm-a', obs.tls);
  const procs: { key: string; major: number; node: string; child: Child; agent?: { id: string; tr: 'plain' | 'tls' } }[] = [];
  const extra = [...(heap ? ['--heapsnapshot-signal=SIGUSR2'] : []), ...(JSON.parse(process.env.EXTRA ?? '[]') as string[])];
  const wrap = unitEnvWrap();
  // EXTRA_ENV='{"K":"V"}': added to the unit's environment, for the bare node and the agents alike.
  wrap.args.splice(1, 0, ...Object.entries(JSON.parse(process.env.EXTRA_ENV ?? '{}') as Record<string, string>).map(([k, v]) => `${k}=${v}`));
  for (const major of majors) {
    const node = nodeRuntime(major).node;
    procs.push({ key: `node${major} bare`, major, node, child: spawnNode(`bare${major}`, [...flags, ...extra, '-e', 'setInterval(()=>{},1000)'], wrap, node) });
    for (const tr of modes)
      for (const [img, dir] of Object.entries(images)) {
        const id = `p-probe${major}-${tr}-${img}`;
        const cfg = groups[tr].agentConfig(id, { holdMs: 120000, stateDir: tempDir('probe') });
        const child = spawnNode(id, [...flags, ...extra, (/\.[cm]?js$/.test(dir) ? dir : path.join(dir, 'ipphone-agent.mjs')), '--config', cfg], wrap, node);
        procs.push({ key: `node${major} ${tr} ${img}`, major, node, child, agent: { id, tr } });
      }
  }
  await Promise.all(procs.filter((p) => p.agent).map((p) => obs[p.agent!.tr].waitHomed(p.agent!.id, 'cm-a', 120000, p.child)));
  await sleep(Number(process.env.RSS_MS ?? 20000));
  for (const p of procs) {
    const k = smapsByKind(p.child.pid, p.node);
    const top = Object.entries(k).filter(([, v]) => v >= 64).sort((a, b) => b[1] - a[1]).map(([n, v]) => `${n} ${(v / 1024).toFixed(2)}`);
    console.log(`${p.key}: RSS ${(rssKiB(p.child.pid) / 1024).toFixed(2)} MiB; ${top.join('; ')}`);
  }
  if (process.env.SIGNAL !== undefined) {
    // E.g. EXTRA='["-r","dump.cjs"]' SIGNAL=SIGHUP: a preload that writes what it sees on that signal.
    for (const p of procs) {
      console.log(`${p.key}: pid ${p.child.pid}`);
      process.kill(p.child.pid, process.env.SIGNAL as NodeJS.Signals);
    }
    await sleep(5000);
  }
  if (heap) {
    for (const p of procs) {
      const cwd = ROOT;
      const before = new Set(readdirSync(cwd).filter((f) => f.endsWith('.heapsnapshot')));
      process.kill(p.child.pid, 'SIGUSR2');
      let file: string | undefined;
      for (let i = 0; i < 600 && file === undefined; i++) {
        await sleep(100);
        const f = readdirSync(cwd).find((x) => x.endsWith('.heapsnapshot') && !before.has(x) && x.includes(`.${p.child.pid}.`));
        if (f !== undefined) {
          const s1 = statSync(path.join(cwd, f)).size;
          await sleep(1000);
          if (statSync(path.join(cwd, f)).size === s1) file = path.join(cwd, f);
        }
      }
      if (file === undefined) {
        console.log(`${p.key}: no heap snapshot`);
        continue;
      }
      const dest = path.join(outDir, `probe-${p.key.replace(/ /g, '-')}.heapsnapshot`);
      readFileSync(file); // exists
      await import('node:fs').then((fs) => fs.renameSync(file!, dest));
      const h = heapByType(dest);
      const total = Object.values(h.types).reduce((a, b) => a + b, 0);
      console.log(`${p.key}: heap snapshot ${(total / 1048576).toFixed(2)} MiB self: ${Object.entries(h.types).sort((a, b) => b[1] - a[1]).map(([t, v]) => `${t} ${(v / 1024).toFixed(0)}K`).join(', ')}`);
    }
  }
  for (const p of procs) await p.child.stop('SIGTERM');
  await obs.plain.close();
  await obs.tls.close();
  await groups.plain.close();
  await groups.tls.close();
  pki.remove();
  process.exit(0);
}
