/**
 * Product mutations (issue 16, "Proof that it finds what matters"): each one
 * puts back, for the length of one run, a defect the product once had — the
 * fixes of issue 15 reverted in the real classes, not in a copy — so a test
 * can switch it on and assert that the simulator catches it. A mutation
 * patches methods of the product's classes (or the world's wiring) and
 * returns how to undo it; nothing here is reachable from the shipped
 * binaries, which never import src/sim.
 *
 * Unlike a plant (src/sim/run.ts, `RunOptions.plant`: a defect in the world,
 * to prove a checker can fail), a mutation is a defect in the product, to
 * prove the simulator finds the defects that mattered.
 */
import type { InvariantName } from './invariants.js';
import { LIST_MUTATIONS } from './mutations/lists.js';
import { LIVENESS_MUTATIONS } from './mutations/liveness.js';

export interface Mutation {
  /** What the mutation puts back, one line (printed by `--mutate`). */
  about: string;
  /** The invariants expected to catch it (any one of them). */
  expect: InvariantName[];
  /** Apply before a run's world is built; return the undo, called after the run whatever happens. */
  apply(): () => void;
}

export type MutationName = Extract<keyof typeof LIST_MUTATIONS | keyof typeof LIVENESS_MUTATIONS, string>;

export const MUTATIONS: Record<MutationName, Mutation> = {
  ...LIST_MUTATIONS,
  ...LIVENESS_MUTATIONS,
};

export function isMutationName(s: string): s is MutationName {
  return Object.hasOwn(MUTATIONS, s);
}

/** Run `fn` with `name` applied (or nothing when undefined); always undone after. */
export async function withMutation<T>(name: MutationName | undefined, fn: () => Promise<T>): Promise<T> {
  if (name === undefined) return fn();
  const m: Mutation = MUTATIONS[name];
  const undo = m.apply();
  try {
    return await fn();
  } finally {
    undo();
  }
}
