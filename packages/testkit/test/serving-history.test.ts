/**
 * The serving history checker on hand-written histories: what it must refuse (two allocations at once, two
 * processes at one epoch, an older epoch after a newer one, a handover past its bound, a process serving again in
 * the middle of another's window) and what it must allow (a clean handover, one within the bound, one process
 * given the organization again after another, other organizations).
 */
import { describe, expect, it } from 'vitest';
import {
  checkServingHistory,
  describeOverlap,
  overlapWitness,
  type ServedRecord,
  servedRecords,
  servingWindows,
} from '../src/serving-history.js';

const ORG = 'org-1';
const BOUND = { handoverBoundMs: 1_000 };

/** `count` requests taken by one process, one every `everyMs` from `fromMs`. */
function served(
  pid: number,
  allocationId: string,
  epoch: number,
  fromMs: number,
  count: number,
  { everyMs = 10, organizationId = ORG } = {},
): ServedRecord[] {
  return Array.from({ length: count }, (_, i) => ({
    pid,
    gatewayId: `gw-${allocationId}`,
    organizationId,
    allocationId,
    epoch,
    atMs: fromMs + i * everyMs,
  }));
}

const check = (...records: ServedRecord[][]) => checkServingHistory(records.flat(), BOUND);

describe('serving history checker', () => {
  it('one window per process, allocation and epoch, with its first and last request and count', () => {
    const windows = servingWindows([...served(1, 'a', 1, 0, 5), ...served(1, 'a', 2, 100, 3), ...served(2, 'b', 1, 200, 2)]);
    expect(windows).toEqual([
      expect.objectContaining({ pid: 1, epoch: 1, first: 0, last: 40, requests: 5 }),
      expect.objectContaining({ pid: 1, epoch: 2, first: 100, last: 120, requests: 3 }),
      expect.objectContaining({ pid: 2, allocationId: 'b', first: 200, last: 210, requests: 2 }),
    ]);
  });

  it('a clean hot restart (the successor begins after the old process ended) overlaps nothing', () => {
    const result = check(served(1, 'a', 1, 0, 50), served(2, 'a', 2, 500, 50));
    expect(result).toMatchObject({ records: 100, handovers: 0, overlaps: [] });
  });

  it('a hot restart whose old process finishes its open connections within the bound is allowed, and counted', () => {
    // The old process takes requests until 400 ms after the successor's first (bound: 1,000 ms).
    const result = check(served(1, 'a', 1, 0, 91), served(2, 'a', 2, 500, 50));
    expect(result.overlaps).toEqual([]);
    expect(result.handovers).toBe(1);
  });

  it('a hot restart whose old process serves on past the bound is refused', () => {
    // The old process takes requests until 1,490 ms after the successor's first.
    const result = check(served(1, 'a', 1, 0, 200), served(2, 'a', 2, 500, 50));
    expect(result.overlaps).toEqual([
      expect.objectContaining({
        kind: 'handover_beyond_bound',
        organizationId: ORG,
        earlier: expect.objectContaining({ pid: 1, epoch: 1 }),
        later: expect.objectContaining({ pid: 2, epoch: 2 }),
        fromMs: 500,
        toMs: 990,
      }),
    ]);
  });

  it('two allocations of one organization serving at once are refused, however short the overlap', () => {
    const result = check(served(1, 'a', 1, 0, 50), served(2, 'b', 2, 490, 50));
    expect(result.overlaps).toEqual([expect.objectContaining({ kind: 'two_allocations', fromMs: 490, toMs: 490 })]);
    expect(result.handovers).toBe(0);
  });

  it('two processes at one epoch of one allocation are refused', () => {
    const result = check(served(1, 'a', 3, 0, 50), served(2, 'a', 3, 200, 10));
    expect(result.overlaps).toEqual([expect.objectContaining({ kind: 'same_epoch', fromMs: 200, toMs: 290 })]);
  });

  it('an older epoch that begins serving while a newer one serves is refused', () => {
    const result = check(served(2, 'a', 2, 0, 50), served(1, 'a', 1, 100, 3));
    expect(result.overlaps).toEqual([expect.objectContaining({ kind: 'older_epoch_later' })]);
  });

  it('a process given the organization again (a new allocation) after another served it overlaps nothing', () => {
    // pid 1 serves allocation a, loses it; pid 2 serves b; pid 1 gets the organization again as c.
    const result = check(served(1, 'a', 1, 0, 10), served(2, 'b', 1, 200, 10), served(1, 'c', 1, 400, 10));
    expect(result.overlaps).toEqual([]);
  });

  it('a process that serves its old tenure again while another process serves is caught (windows are per tenure)', () => {
    // pid 1 at allocation a epoch 1, then pid 2's allocation b, then pid 1 again at a/1: its window covers b's.
    const result = check(served(1, 'a', 1, 0, 10), served(2, 'b', 1, 200, 10), served(1, 'a', 1, 400, 10));
    expect(result.overlaps).toEqual([expect.objectContaining({ kind: 'two_allocations', fromMs: 200, toMs: 290 })]);
  });

  it('windows of different organizations never conflict', () => {
    const result = check(served(1, 'a', 1, 0, 50), served(2, 'b', 1, 0, 50, { organizationId: 'org-2' }));
    expect(result.overlaps).toEqual([]);
  });

  it('reports the organization, both processes and epochs, the interval and at most five witness records', () => {
    const records = [...served(1, 'a', 1, 0, 100), ...served(2, 'b', 1, 305, 100)];
    const [overlap] = checkServingHistory(records, BOUND).overlaps;
    if (!overlap) throw new Error('no overlap found');
    const witness = overlapWitness(records, overlap);
    // pid 1's last before pid 2's first, pid 2's first, pid 1's first after it, and each one's last in the overlap.
    expect(witness.map((r) => [r.pid, r.atMs])).toEqual([
      [1, 300],
      [2, 305],
      [1, 310],
      [2, 985],
      [1, 990],
    ]);
    const text = describeOverlap(records, overlap, BOUND.handoverBoundMs);
    expect(text).toContain(`organization ${ORG}: two allocations of the organization served at once`);
    expect(text).toContain('pid 1 (gateway gw-a, allocation a, epoch 1, 100 requests in [0.0, 990.0])');
    expect(text).toContain('pid 2 (gateway gw-b, allocation b, epoch 1, 100 requests in [305.0, 1295.0])');
    expect(text).toContain('both served during [305.0, 990.0] ms (685.0 ms)');
    expect(text.split('\n').filter((line) => line.startsWith('    at_ms'))).toHaveLength(5);
  });

  it('reads served lines from log lines, and refuses one without its allocation', () => {
    const line = { event: 'served', pid: 7, gateway_id: 'g', organization_id: ORG, allocation_id: 'a', epoch: 2, at_ms: 12.5 };
    const records = servedRecords([{ event: 'listening', port: 1 }, line, { msg: 'not json' }]);
    expect(records).toEqual([{ pid: 7, gatewayId: 'g', organizationId: ORG, allocationId: 'a', epoch: 2, atMs: 12.5 }]);
    expect(() => servedRecords([{ ...line, allocation_id: undefined }])).toThrow(/without pid, organization_id, allocation_id/);
  });
});
