/**
 * A simple shrinker of a failing fault schedule: drop one fault at a time,
 * keep the drop whenever the seed still violates the same invariant, until no
 * single drop keeps it failing (delta debugging's 1-minimal step).
 */
import type { InvariantName } from './invariants.js';
import { runSeed, type RunOptions } from './run.js';

/** Indexes of the drawn schedule that still make `seed` violate `invariant`. */
export async function shrink(seed: number, keep: number[], invariant: InvariantName, budget = 40, deadline = Infinity, topology?: RunOptions['topology'], mutate?: RunOptions['mutate']): Promise<number[]> {
  let cur = [...keep];
  let runs = 0;
  const more = (): boolean => runs < budget && performance.now() < deadline;
  for (let changed = true; changed && more(); ) {
    changed = false;
    for (let i = 0; i < cur.length && more(); i++) {
      const trial = cur.filter((_, k) => k !== i);
      runs++;
      const r = await runSeed(seed, { keep: trial, ...(topology ? { topology } : {}), ...(mutate !== undefined ? { mutate } : {}) });
      if (r.violations.some((v) => v.invariant === invariant)) {
        cur = trial;
        changed = true;
        i--;
      }
    }
  }
  return cur;
}
