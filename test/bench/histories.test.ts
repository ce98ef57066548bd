/** The storms' check by kind (scripts/bench/histories.ts): which audit history is which, and double allocations. */
import { describe, expect, it } from 'vitest';
import { countDoubleAllocations, countHistory, describeHistories, noHistories } from '../../scripts/bench/histories.js';

const ev = (kind: string, epoch: number, reason: string | null = null) => ({ kind, epoch, reason }) as never;
const ORG = ['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002'];

describe('audit histories by kind', () => {
  it('tells a clean reclaim, a crash reclaim and any other history apart, listing the others by trail', () => {
    const h = noHistories();
    countHistory(h, [ev('allocated', 1), ev('restart_requested', 1, 'reload'), ev('reclaimed', 2, 'restart')]);
    countHistory(h, [ev('allocated', 1), ev('restart_requested', 1, 'reload'), ev('reclaimed', 2, 'restart')]);
    countHistory(h, [ev('allocated', 1), ev('reclaimed', 2, 'crash')]);
    const retried = [
      ev('allocated', 1),
      ev('restart_requested', 1),
      ev('restart_withdrawn', 1),
      ev('restart_requested', 1),
      ev('reclaimed', 2),
    ];
    countHistory(h, retried);
    countHistory(h, retried);
    expect(h).toEqual({
      clean_reclaim: 2,
      crash_reclaim: 1,
      double_allocation: 0,
      other: { 'allocated 1 → restart_requested 1 → restart_withdrawn 1 → restart_requested 1 → reclaimed 2': 2 },
    });
    expect(describeHistories(h)).toBe(
      'clean reclaim 2, crash reclaim 1, double allocation 0, ' +
        'other 2 × allocated 1 → restart_requested 1 → restart_withdrawn 1 → restart_requested 1 → reclaimed 2',
    );
  });

  it('counts an organization with two live allocations once, and no idle gateway', () => {
    const h = noHistories();
    countDoubleAllocations(h, [
      { allocation_id: 'a', organization_id: ORG[0]! },
      { allocation_id: 'b', organization_id: ORG[0]! },
      { allocation_id: 'c', organization_id: ORG[1]! },
      { allocation_id: null, organization_id: null },
    ]);
    expect(h.double_allocation).toBe(1);
  });
});
