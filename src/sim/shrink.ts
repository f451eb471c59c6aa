/**
 * A simple shrinker of a failing fault schedule: drop one fault at a time,
 * keep the drop whenever the seed still violates the same invariant, until no
 * single drop keeps it failing (delta debugging's 1-minimal step).
 */
import type { InvariantName } from './invariants.js';
import { runSeed } from './run.js';

/** Indexes of the drawn schedule that still make `seed` violate `invariant`. */
export async function shrink(seed: number, keep: number[], invariant: InvariantName, budget = 40): Promise<number[]> {
  let cur = [...keep];
  let runs = 0;
  for (let changed = true; changed && runs < budget; ) {
    changed = false;
    for (let i = 0; i < cur.length && runs < budget; i++) {
      const trial = cur.filter((_, k) => k !== i);
      runs++;
      const r = await runSeed(seed, { keep: trial });
      if (r.violations.some((v) => v.invariant === invariant)) {
        cur = trial;
        changed = true;
        i--;
      }
    }
  }
  return cur;
}
