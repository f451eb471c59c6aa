/**
 * Mutations of the list and version rules (issue 15 §1, §6): `erase-remote`
 * (a call manager's lists drop the pointers its group does not own) and
 * `dragged-version` (the version clock follows phones' reports unbounded).
 * See src/sim/mutations.ts.
 */
import type { Mutation } from '../mutations.js';

export const LIST_MUTATIONS = {
  // name: { about, expect, apply } — see src/sim/mutations.ts
} satisfies Record<string, Mutation>;
