/**
 * Load balancing across a call-manager group — the pure planner.
 *
 * Every call manager runs the same computation on the same shared view (the
 * retained `load` of every member), so no leader is needed: each one moves
 * only its OWN surplus, to targets chosen by a rule every member evaluates
 * identically.
 *
 * 1. Utilisation u = phones ÷ capacity of every online member with a known
 *    load. Nothing happens while max u − min u ≤ threshold.
 * 2. Fair shares: total phones apportioned by capacity with the largest
 *    remainder method, so shares are integers summing to the total. A tied
 *    remainder goes to the member holding more phones now (then by id): the
 *    phone it would get is one it already has, so no move is spent on it
 *    (5 phones all on the last of three members: 3 moves, not 4).
 * 3. Surplus = phones − fair (> 0: overloaded), deficit = fair − phones.
 *    Transfers pair overloaded and underloaded members in id order, greedily,
 *    so every underloaded member receives exactly its deficit and the number
 *    of moves is Σ surplus — the minimum that reaches the fair shares.
 *
 * Why it converges and does not oscillate: a round moves phones only from
 * members above their fair share to members below it, and never more than the
 * difference, so no member crosses its fair share and the sum of |phones −
 * fair| falls by two per completed move. Moves in flight are subtracted from
 * the mover's load, and a cool-down after each round lets the published loads
 * catch up before anyone plans again, so a stale view cannot double a move.
 */

export interface MemberLoad {
  id: string;
  /** Phones homed there (from its retained load, or measured for self). */
  phones: number;
  /** Phones it is sized for (> 0). */
  capacity: number;
}

export interface Transfer {
  from: string;
  to: string;
  count: number;
}

export interface Plan {
  /** max − min utilisation of the members considered. */
  spread: number;
  /** True when spread > threshold. */
  imbalanced: boolean;
  fair: Record<string, number>;
  transfers: Transfer[];
  /** Σ surplus: the minimum number of moves to reach the fair shares. */
  minimumMoves: number;
}

/** Integer shares of `total` proportional to capacity (largest remainder; ties to the member with more phones now, then by id). */
export function fairShares(members: readonly MemberLoad[], total: number): Record<string, number> {
  const cap = members.reduce((a, m) => a + m.capacity, 0);
  const out: Record<string, number> = {};
  if (cap <= 0 || members.length === 0) return out;
  const rows = members.map((m) => {
    const quota = (total * m.capacity) / cap;
    return { id: m.id, phones: m.phones, floor: Math.floor(quota), rest: quota - Math.floor(quota) };
  });
  let left = total - rows.reduce((a, r) => a + r.floor, 0);
  const order = [...rows].sort((a, b) => b.rest - a.rest || b.phones - a.phones || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  for (const r of order) {
    if (left <= 0) break;
    r.floor++;
    left--;
  }
  for (const r of rows) out[r.id] = r.floor;
  return out;
}

export function planRebalance(members: readonly MemberLoad[], threshold: number): Plan {
  const live = members.filter((m) => m.capacity > 0).sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const utils = live.map((m) => m.phones / m.capacity);
  const spread = utils.length > 1 ? Math.max(...utils) - Math.min(...utils) : 0;
  const total = live.reduce((a, m) => a + m.phones, 0);
  const fair = fairShares(live, total);
  const imbalanced = spread > threshold;
  const over = live.map((m) => ({ id: m.id, n: m.phones - (fair[m.id] ?? 0) })).filter((x) => x.n > 0);
  const under = live.map((m) => ({ id: m.id, n: (fair[m.id] ?? 0) - m.phones })).filter((x) => x.n > 0);
  const minimumMoves = over.reduce((a, x) => a + x.n, 0);
  const transfers: Transfer[] = [];
  if (imbalanced) {
    let j = 0;
    for (const o of over) {
      while (o.n > 0 && j < under.length) {
        const u = under[j]!;
        const count = Math.min(o.n, u.n);
        transfers.push({ from: o.id, to: u.id, count });
        o.n -= count;
        u.n -= count;
        if (u.n === 0) j++;
      }
    }
  }
  return { spread, imbalanced, fair, transfers, minimumMoves: imbalanced ? minimumMoves : 0 };
}

/** FNV-1a 32-bit: a stable hash, so the same phones are picked on every run. */
export function stableHash(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h >>> 0;
}

export interface Candidate {
  phone: string;
  busy: boolean;
}

/**
 * Choose which phones go where: idle phones not excluded (already moved or in
 * flight), in stable-hash order, assigned to this member's transfers in order.
 * Busy phones are skipped — they are picked in a later round.
 */
export function pickMoves(self: string, plan: Plan, phones: Iterable<Candidate>, exclude: ReadonlySet<string>): { phone: string; to: string }[] {
  const mine = plan.transfers.filter((t) => t.from === self);
  if (mine.length === 0) return [];
  const pool = [...phones]
    .filter((p) => !p.busy && !exclude.has(p.phone))
    .map((p) => ({ phone: p.phone, h: stableHash(p.phone) }))
    .sort((a, b) => a.h - b.h || (a.phone < b.phone ? -1 : 1));
  const out: { phone: string; to: string }[] = [];
  let i = 0;
  for (const t of mine) {
    for (let k = 0; k < t.count && i < pool.length; k++) out.push({ phone: pool[i++]!.phone, to: t.to });
  }
  return out;
}
