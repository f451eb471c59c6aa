/**
 * `npm run chaos -- --minutes M [--seed S] [--phones N] [--plant NAME]`: the
 * real-process nemesis (run.ts, docs/chaos.md). One line per fault and per
 * violation; the last line is the JSON summary. Exit 0 iff no violation,
 * 1 when one was found, 2 on a usage error, 3 when the world could not be
 * set up.
 */
import { PLANTS, runChaos, type Plant } from './run.js';

const USAGE = `Usage: npm run chaos -- [--minutes M] [--seed S] [--phones N] [--plant ${PLANTS.join('|')}]
  --minutes M   how long to run (fractions allowed; default 3): faults, then the fallback check
  --seed S      the nemesis's seed (default: drawn, and printed)
  --phones N    phones in the fleet (default 30; 1..500)
  --plant NAME  a planted defect the checkers must catch (exit 1 expected)
`;

function parse(argv: readonly string[]): { minutes: number; seed: number; phones: number; plant?: Plant } | string {
  const out = { minutes: 3, seed: Math.floor(Math.random() * 2 ** 31), phones: 30 } as { minutes: number; seed: number; phones: number; plant?: Plant };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const v = argv[i + 1];
    if (a === '--help' || a === '-h') return 'help';
    if (v === undefined) return `${a} needs a value`;
    i++;
    if (a === '--minutes') {
      out.minutes = Number(v);
      if (!(out.minutes > 0 && out.minutes <= 24 * 60)) return `--minutes must be a number above 0 (got ${JSON.stringify(v)})`;
    } else if (a === '--seed') {
      if (!/^\d+$/.test(v)) return `--seed needs a whole number (got ${JSON.stringify(v)})`;
      out.seed = Number(v) >>> 0;
    } else if (a === '--phones') {
      out.phones = Number(v);
      if (!Number.isInteger(out.phones) || out.phones < 1 || out.phones > 500) return `--phones must be 1..500 (got ${JSON.stringify(v)})`;
    } else if (a === '--plant') {
      if (!(PLANTS as readonly string[]).includes(v)) return `--plant must be one of ${PLANTS.join(', ')} (got ${JSON.stringify(v)})`;
      out.plant = v as Plant;
    } else return `unknown argument ${JSON.stringify(a)}`;
  }
  return out;
}

const args = parse(process.argv.slice(2));
if (args === 'help') {
  process.stdout.write(USAGE);
  process.exit(0);
}
if (typeof args === 'string') {
  process.stderr.write(`chaos: ${args}\n${USAGE}`);
  process.exit(2);
}
try {
  const summary = await runChaos(args);
  process.stdout.write(`${JSON.stringify(summary)}\n`);
  process.exit(summary.violations === 0 ? 0 : 1);
} catch (err) {
  process.stderr.write(`chaos: ${(err as Error).stack ?? String(err)}\n`);
  process.stdout.write(`${JSON.stringify({ minutes: args.minutes, seed: args.seed, faults: {}, violations: 0, failures: [{ invariant: 'setup', detail: (err as Error).message }], checks: 0, error: true })}\n`);
  process.exit(3);
}
