/**
 * Former members of the group in the lists' `owns` (config `retired`).
 *
 * A phone keeps every pointer its group does not own (list-merge.ts): that is
 * what keeps a remote site's pointer in place when a call manager reorders
 * its group (issue 15: lists without `owns` erased it). The same rule kept a
 * member removed from the group in every phone's list for good — the group no
 * longer names it, so to the phone it looks like a remote site — and the
 * phone went on trying it at every failover. The phone cannot tell the two
 * apart, and should not guess: a pointer dropped by a guess is a site lost.
 * The operator can. `retired` in the call manager's config names the former
 * members; every list this call manager signs names them in `owns` beside the
 * group's members, and leaves them out of `list`, so the phone's merge drops
 * their pointers (an owned id the list does not hold) and keeps every other
 * pointer outside the group where it was. Nothing changes on the phone, and
 * only the group's own signing key can retire an id: a remote site's pointer
 * goes only if an operator names it here (config validation refuses an id of
 * the group; docs/configuration.md says to name former members only).
 */
import type { PointersSigner } from './list-book.js';

/** `sign` with `retired` added to every list body's `owns` (unchanged without retired ids or without `owns`). */
export function signRetired(sign: PointersSigner, retired: readonly string[]): PointersSigner {
  if (retired.length === 0) return sign;
  const extra = [...retired];
  return (body) => {
    if (body.owns === undefined) return sign(body);
    const owns = [...body.owns, ...extra.filter((id) => !body.owns!.includes(id))];
    return sign({ ...body, owns });
  };
}
