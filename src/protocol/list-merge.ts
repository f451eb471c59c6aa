import { cleanPointer, MAX_POINTERS } from './pointers.js';
import type { Pointer } from './types.js';

/**
 * Merging a call-manager group's list into the list a phone holds.
 *
 * A call manager speaks for its group only. Its list body names the group's
 * members in `owns` (shared/CONTRACT.md, pointer body extension); a pointer the
 * phone holds whose id the group does not own — a remote site, say, put there
 * by the installer or an operator — is not the call manager's to drop. So the
 * phone keeps such FOREIGN pointers in the slots they hold and fills the slots
 * of the group's members with the group's new order; group members the phone
 * did not hold yet go at the end. Without `owns` (an operator's list, an older
 * call manager) the list replaces the held one, as before.
 *
 * Bounded: the result holds at most {@link MAX_POINTERS}; when the group's list
 * and the foreign pointers together are more, the group's lowest members give
 * way (at least one of the group's stays), then the last foreign ones.
 *
 * Idempotent — merging the same list into the result changes nothing — so a
 * repeated ack or push of the list the phone took leaves it as it is.
 */
export function mergeGroupList(held: readonly Pointer[], incoming: readonly Pointer[], owns: readonly string[] | undefined): Pointer[] {
  const copy = cleanPointer;
  if (owns === undefined) return incoming.map(copy);
  const owned = new Set(owns);
  for (const p of incoming) owned.add(p.id);
  let foreign = held.filter((p) => !owned.has(p.id));
  if (foreign.length === 0) return incoming.map(copy);
  const groupRoom = Math.max(1, MAX_POINTERS - foreign.length);
  const group = incoming.slice(0, groupRoom);
  if (foreign.length + group.length > MAX_POINTERS) foreign = foreign.slice(0, MAX_POINTERS - group.length);
  const keep = new Set(foreign.map((p) => p.id));
  const out: Pointer[] = [];
  let next = 0;
  for (const p of held) {
    if (keep.has(p.id)) out.push(copy(p));
    else if (owned.has(p.id) && next < group.length) out.push(copy(group[next++]!));
  }
  while (next < group.length) out.push(copy(group[next++]!));
  return out;
}
