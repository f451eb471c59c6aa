/**
 * `npm run sim -- --seeds N | --seed S [--faults i,j,…] [--verbose]`: the
 * deterministic simulation of a whole group (docs/simulation.md). A failing
 * seed prints its invariant, its fault schedule shrunk to what still fails,
 * the last events of its trace and a one-line replay command. The last line
 * of output is the contract's JSON summary; exit 0 iff no invariant failed.
 */
import { parseArgs } from 'node:util';
import { describeFault, type FaultKind } from './faults.js';
import { INVARIANTS } from './invariants.js';
import { readFileSync } from 'node:fs';
import { runSeed, scheduleFor, type RunOptions, type RunResult } from './run.js';
import { topologyFromGroup } from './group.js';
import { shrink } from './shrink.js';
import { isMutationName, MUTATIONS, type Mutation, type MutationName } from './mutations.js';

const USAGE = `usage: npm run sim -- [--seeds N] [--seed S] [--first S] [--faults i,j,...] [--no-shrink] [--verbose]

  --seeds N      run N seeds (default 20), from --first (default 1)
  --seed S       run seed S alone; its traceHash is the same every time
  --faults LIST  with --seed: keep only these indexes of its fault schedule (a shrunk replay)
  --no-shrink    report failures without shrinking their fault schedules (shrinking stops 15 s into a run)
  --group FILE   simulate your group: FILE is a call manager config (its "group" array) or any JSON
                 with one; brokers become simulated addresses, phones point to the members in order
  --mutate NAME  put a defect the product once had back for the run (proof the simulator finds it):
                 ${Object.keys(MUTATIONS).join(', ') || '(none)'}
  --verbose      one line per seed

The last line of output is JSON: { seeds, violations, faults, invariants, simulatedMs, wallMs, traceHash, failures }.
Exit status 0 when no invariant was violated, 1 when one was, 2 on a usage error.`;

export interface Summary {
  seeds: number;
  violations: number;
  faults: Partial<Record<FaultKind, number>>;
  invariants: string[];
  simulatedMs: number;
  wallMs: number;
  traceHash: string;
  failures: { seed: number; invariant: string; detail: string; faults: number[]; replay: string }[];
}

let groupArg = '';

function replayCommand(seed: number, keep?: number[]): string {
  // A schedule shrunk to no fault at all is `--faults ''`: a bare `--faults` would take the next option as its value.
  return `npm run sim -- --seed ${seed}${keep !== undefined ? ` --faults ${keep.length > 0 ? keep.join(',') : "''"}` : ''}${groupArg}`;
}

export async function main(argv: string[]): Promise<number> {
  let a;
  try {
    a = parseArgs({
      args: argv,
      options: {
        seeds: { type: 'string' },
        seed: { type: 'string' },
        first: { type: 'string' },
        faults: { type: 'string' },
        'no-shrink': { type: 'boolean' },
        verbose: { type: 'boolean' },
        group: { type: 'string' },
        mutate: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
      },
      strict: true,
    }).values;
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  if (a.help === true) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  const num = (v: string | undefined, name: string, dflt: number): number => {
    if (v === undefined) return dflt;
    const n = Number(v);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`--${name}: not a non-negative integer: ${v}`);
    return n;
  };
  let seeds: number[];
  let keep: number[] | undefined;
  try {
    if (a.seed !== undefined) seeds = [num(a.seed, 'seed', 0)];
    else {
      const first = num(a.first, 'first', 1);
      seeds = Array.from({ length: num(a.seeds, 'seeds', 20) }, (_, i) => first + i);
    }
    if (a.faults !== undefined) {
      if (a.seed === undefined) throw new Error('--faults needs --seed');
      keep = a.faults === '' ? [] : a.faults.split(',').map((x) => num(x, 'faults', 0));
    }
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n${USAGE}\n`);
    return 2;
  }
  let mutate: MutationName | undefined;
  if (a.mutate !== undefined) {
    if (!isMutationName(a.mutate)) {
      process.stderr.write(`--mutate: no mutation named ${a.mutate}; known: ${Object.keys(MUTATIONS).join(', ') || '(none)'}\n${USAGE}\n`);
      return 2;
    }
    mutate = a.mutate;
    groupArg += ` --mutate ${a.mutate}`;
    process.stdout.write(`mutation ${a.mutate}: ${(MUTATIONS[a.mutate] as Mutation).about}\n`);
  }
  let topology: RunOptions['topology'];
  if (a.group !== undefined) {
    try {
      const raw = JSON.parse(readFileSync(a.group, 'utf8')) as unknown;
      groupArg += ` --group ${a.group}`;
      const shown = topologyFromGroup(raw, 3);
      for (const [from, to] of shown.brokers) process.stdout.write(`broker ${from} is simulated as ${to}\n`);
      topology = (phones) => topologyFromGroup(raw, phones).topo;
    } catch (err) {
      process.stderr.write(`--group ${a.group}: ${(err as Error).message}\n`);
      return 2;
    }
  }
  const summary = await simulate(seeds, { ...(keep ? { keep } : {}), ...(topology ? { topology } : {}), ...(mutate !== undefined ? { mutate } : {}), shrink: a['no-shrink'] !== true, verbose: a.verbose === true || seeds.length === 1, print: (l) => process.stdout.write(`${l}\n`) });
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  return summary.violations === 0 ? 0 : 1;
}

/** Run `seeds` and summarise; failures are shrunk and printed through `print`. */
export async function simulate(seeds: number[], o: { keep?: number[]; topology?: RunOptions['topology']; mutate?: MutationName; shrink?: boolean; shrinkBudgetMs?: number; verbose?: boolean; print?: (line: string) => void } = {}): Promise<Summary> {
  const print = o.print ?? (() => undefined);
  const t0 = performance.now();
  const faults: Partial<Record<FaultKind, number>> = {};
  let simulatedMs = 0;
  let violations = 0;
  const hashes: string[] = [];
  const failures: Summary['failures'] = [];
  const shrinkUntil = t0 + (o.shrinkBudgetMs ?? 15_000);
  for (const seed of seeds) {
    const ro: RunOptions = { ...(o.keep ? { keep: o.keep } : {}), ...(o.topology ? { topology: o.topology } : {}), ...(o.mutate !== undefined ? { mutate: o.mutate } : {}) };
    const r: RunResult = await runSeed(seed, ro);
    simulatedMs += r.simulatedMs;
    hashes.push(r.traceHash);
    for (const f of r.faults) faults[f.kind] = (faults[f.kind] ?? 0) + 1;
    if (o.verbose) print(`seed ${seed}: ${r.violations.length === 0 ? 'ok' : `${r.violations.length} violation(s)`} — ${r.faults.length} fault(s), ${r.open ? 'open broker' : 'printed ACL'}, ${r.events} events, ${r.checks} checks, traceHash ${r.traceHash.slice(0, 16)}`);
    if (r.errors.length > 0) for (const e of r.errors) print(`seed ${seed}: error: ${e}`);
    if (r.violations.length === 0) continue;
    violations += r.violations.length;
    const first = r.violations[0]!;
    const drawn = scheduleFor(seed, o.topology ? { topology: o.topology } : {}).faults;
    const baseKeep = o.keep ?? drawn.map((_, i) => i);
    // Shrinking shares one wall-clock budget per call, so a run of many failures still ends in time.
    const kept = o.shrink === false ? baseKeep : await shrink(seed, baseKeep, first.invariant, 40, shrinkUntil, o.topology, o.mutate);
    print('');
    print(`FAIL seed ${seed}: ${first.invariant} at ${first.at} ms: ${first.detail}`);
    for (const v of r.violations.slice(1, 6)) print(`  also ${v.invariant} at ${v.at} ms: ${v.detail}`);
    print(`  fault schedule (${r.open ? 'open broker' : 'printed ACL'}), shrunk to ${kept.length} of ${baseKeep.length}:`);
    for (const i of kept) print(`    [${i}] ${describeFault(drawn[i]!)}`);
    print('  last events:');
    for (const l of r.tail.slice(-25)) print(`    ${l}`);
    print(`  replay: ${replayCommand(seed, kept.length < drawn.length ? kept : undefined)}`);
    print('');
    failures.push({ seed, invariant: first.invariant, detail: first.detail, faults: kept, replay: replayCommand(seed, kept.length < drawn.length ? kept : undefined) });
  }
  const traceHash = hashes.length === 1 ? hashes[0]! : (await import('node:crypto')).createHash('sha256').update(hashes.join('\n')).digest('hex');
  return { seeds: seeds.length, violations, faults, invariants: [...INVARIANTS], simulatedMs, wallMs: Math.round(performance.now() - t0), traceHash, failures };
}

if (process.argv[1] !== undefined && /src[\\/]sim[\\/]main\.[tj]s$/.test(process.argv[1])) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      process.stderr.write(`sim: ${(err as Error).stack ?? String(err)}\n`);
      process.exit(2);
    },
  );
}
