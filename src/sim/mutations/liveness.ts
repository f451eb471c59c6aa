/**
 * Mutations of signed liveness (issue 15 §2, §3): `replay-offline` (a live
 * call manager's recorded offline, replayed, is believed) and `replay-online`
 * (a dead run's recorded online, replayed, is believed).
 * See src/sim/mutations.ts.
 */
import type { Mutation } from '../mutations.js';

export const LIVENESS_MUTATIONS = {
  // name: { about, expect, apply } — see src/sim/mutations.ts
} satisfies Record<string, Mutation>;
