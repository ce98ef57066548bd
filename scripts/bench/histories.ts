/**
 * The storms' check, by kind: each allocation's audit history after the storm, and each organization's live
 * allocations. A double allocation must never happen; every other history that is not a clean reclaim is listed,
 * trail by trail, so BENCHMARKS.md says what happened rather than lumping it in with a double allocation.
 */
import type { AllocationEvent, PoolEntry } from '@ganymede/contracts';

export interface Histories {
  /** allocated → restart_requested → reclaimed: the old process asked for the restart, its successor reclaimed. */
  clean_reclaim: number;
  /**
   * allocated → reclaimed, no restart_requested: the successor reclaimed a crashed process's allocation (the old
   * process ran out of its shutdown budget, or died, before it asked for the restart).
   */
  crash_reclaim: number;
  /** Organizations with more than one live allocation (must be 0). */
  double_allocation: number;
  /** Every other history, as its trail (kind epoch (reason) → …), with how many allocations had it. */
  other: Record<string, number>;
}

export const noHistories = (): Histories => ({ clean_reclaim: 0, crash_reclaim: 0, double_allocation: 0, other: {} });

export const trailOf = (events: Pick<AllocationEvent, 'kind' | 'epoch' | 'reason'>[]) =>
  events.map((e) => `${e.kind} ${e.epoch}${e.reason ? ` (${e.reason})` : ''}`).join(' → ');

/** Counts one allocation's history (its audit events, oldest first) in `h`. */
export function countHistory(h: Histories, events: Pick<AllocationEvent, 'kind' | 'epoch' | 'reason'>[]): void {
  const kinds = events.map((e) => e.kind).join(',');
  if (kinds === 'allocated,restart_requested,reclaimed') h.clean_reclaim++;
  else if (kinds === 'allocated,reclaimed') h.crash_reclaim++;
  else {
    const trail = trailOf(events);
    h.other[trail] = (h.other[trail] ?? 0) + 1;
  }
}

/** Counts in `h` the organizations holding more than one of the pool's live allocations. */
export function countDoubleAllocations(h: Histories, pool: Pick<PoolEntry, 'allocation_id' | 'organization_id'>[]): void {
  const perOrganization = new Map<string, number>();
  for (const e of pool)
    if (e.allocation_id && e.organization_id) perOrganization.set(e.organization_id, (perOrganization.get(e.organization_id) ?? 0) + 1);
  h.double_allocation += [...perOrganization.values()].filter((n) => n > 1).length;
}

/** The histories in one line: each kind with its count, then every other trail with its own. */
export function describeHistories(h: Histories): string {
  const others = Object.entries(h.other).map(([trail, n]) => `${n} × ${trail}`);
  return [
    `clean reclaim ${h.clean_reclaim}`,
    `crash reclaim ${h.crash_reclaim}`,
    `double allocation ${h.double_allocation}`,
    `other ${others.length ? others.join('; ') : 0}`,
  ].join(', ');
}
