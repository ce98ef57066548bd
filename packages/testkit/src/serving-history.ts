/**
 * The serving history checker (README, Guarantees › Partitions): proves from the gateways' `served` log lines that
 * no two processes served one organization at the same time.
 *
 * Each gateway process at debug level logs, for every organization request it answered 200, the allocation and
 * epoch it held and the machine's CLOCK_MONOTONIC time at which it took the request (comparable across the
 * processes of one machine). A process's *serving window* is [first, last] of the requests it took under one
 * tenure: one allocation at one epoch. Per tenure, not per process: a process may lose an organization and be
 * given it again later (a new allocation), with another process serving it in between.
 *
 * Windows of different processes for one organization must not overlap, with one exception: the ordered
 * handover of a hot restart. The successor holds a later epoch of the same allocation (e + 1; more if it died
 * and its supervisor's next child reclaimed again), took its first request after the old process's first, and
 * the old process took requests after the successor's first only on the connections it already had, while it
 * drained: at most the drain timeout (`GATEWAY_DRAIN_TIMEOUT_MS`) after it stopped accepting, which is before
 * the successor's first request. So the allowed overlap is at most `handoverBoundMs` = the drain timeout.
 */
import type { LogRecord } from './logged-process.js';

/** One organization request a gateway process answered 200 (its `served` log line). */
export interface ServedRecord {
  pid: number;
  gatewayId: string | null;
  organizationId: string;
  allocationId: string;
  epoch: number;
  /** CLOCK_MONOTONIC, in milliseconds, when the request was taken. */
  atMs: number;
}

/** The requests one process took for one organization under one allocation at one epoch. */
export interface ServingWindow {
  pid: number;
  gatewayId: string | null;
  organizationId: string;
  allocationId: string;
  epoch: number;
  first: number;
  last: number;
  requests: number;
}

export type OverlapKind =
  /** Two allocations of one organization served at once: split brain. */
  | 'two_allocations'
  /** Two processes served one allocation at one epoch. */
  | 'same_epoch'
  /** An older epoch began serving after a newer one had: no handover goes that way. */
  | 'older_epoch_later'
  /** A hot restart whose old process went on serving past the bound. */
  | 'handover_beyond_bound';

/** Two windows of different processes for one organization that overlap beyond what is allowed. */
export interface Overlap {
  kind: OverlapKind;
  organizationId: string;
  /** The window that began first, and the one that began while it was still serving. */
  earlier: ServingWindow;
  later: ServingWindow;
  /** The overlapping interval: from the later window's first request to the end of the first of the two to end. */
  fromMs: number;
  toMs: number;
}

export interface HistoryCheck {
  records: number;
  windows: ServingWindow[];
  /** Overlaps allowed as a hot restart's handover, each at most the bound. */
  handovers: number;
  overlaps: Overlap[];
}

const isString = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const isNumber = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);

/** The `served` lines among log lines. A `served` line missing a field throws: a history with holes proves nothing. */
export function servedRecords(logs: Iterable<LogRecord>): ServedRecord[] {
  const out: ServedRecord[] = [];
  for (const line of logs) {
    if (line.event !== 'served') continue;
    const { pid, organization_id, allocation_id, epoch, at_ms, gateway_id } = line;
    if (!isNumber(pid) || !isString(organization_id) || !isString(allocation_id) || !isNumber(epoch) || !isNumber(at_ms)) {
      throw new Error(`a served line without pid, organization_id, allocation_id, epoch or at_ms: ${JSON.stringify(line)}`);
    }
    out.push({
      pid,
      gatewayId: isString(gateway_id) ? gateway_id : null,
      organizationId: organization_id,
      allocationId: allocation_id,
      epoch,
      atMs: at_ms,
    });
  }
  return out;
}

const tenure = (r: Pick<ServedRecord, 'pid' | 'allocationId' | 'epoch'>) => `${r.pid}/${r.allocationId}/${r.epoch}`;

/** Each process's serving window per organization and tenure, ordered by first request. */
export function servingWindows(records: readonly ServedRecord[]): ServingWindow[] {
  const windows = new Map<string, ServingWindow>();
  for (const r of records) {
    const key = `${r.organizationId}/${tenure(r)}`;
    const w = windows.get(key);
    if (!w) {
      const { pid, gatewayId, organizationId, allocationId, epoch } = r;
      windows.set(key, { pid, gatewayId, organizationId, allocationId, epoch, first: r.atMs, last: r.atMs, requests: 1 });
      continue;
    }
    w.first = Math.min(w.first, r.atMs);
    w.last = Math.max(w.last, r.atMs);
    w.requests++;
  }
  return [...windows.values()].sort((a, b) => a.first - b.first);
}

/** What an overlap of `earlier` and `later` (which began while `earlier` served) is; null when allowed. */
function classify(earlier: ServingWindow, later: ServingWindow, handoverBoundMs: number): OverlapKind | null {
  if (earlier.allocationId !== later.allocationId) return 'two_allocations';
  if (earlier.epoch === later.epoch) return 'same_epoch';
  if (later.epoch < earlier.epoch) return 'older_epoch_later';
  return earlier.last - later.first <= handoverBoundMs ? null : 'handover_beyond_bound';
}

/**
 * Checks a history. `handoverBoundMs`: how long the old process of a hot restart may go on taking requests after
 * its successor took its first (the drain timeout).
 */
export function checkServingHistory(records: readonly ServedRecord[], { handoverBoundMs }: { handoverBoundMs: number }): HistoryCheck {
  const windows = servingWindows(records);
  const overlaps: Overlap[] = [];
  let handovers = 0;
  const byOrganization = new Map<string, ServingWindow[]>();
  for (const w of windows) {
    const list = byOrganization.get(w.organizationId);
    if (list) list.push(w);
    else byOrganization.set(w.organizationId, [w]);
  }
  for (const [organizationId, list] of byOrganization) {
    // Ordered by first request: a window overlaps a later one when that one begins before it ends.
    for (let i = 0; i < list.length; i++) {
      const earlier = list[i]!;
      for (let j = i + 1; j < list.length && list[j]!.first <= earlier.last; j++) {
        const later = list[j]!;
        if (later.pid === earlier.pid) continue; // one process's tenures follow each other
        const kind = classify(earlier, later, handoverBoundMs);
        if (kind === null) handovers++;
        else overlaps.push({ kind, organizationId, earlier, later, fromMs: later.first, toMs: Math.min(earlier.last, later.last) });
      }
    }
  }
  return { records: records.length, windows, handovers, overlaps };
}

const inWindow = (w: ServingWindow) => (r: ServedRecord) =>
  r.pid === w.pid && r.organizationId === w.organizationId && r.allocationId === w.allocationId && r.epoch === w.epoch;

/**
 * The smallest sub-history that shows an overlap: the earlier window's last request at or before the later one's
 * first, that first request, the earlier window's first request after it (it was still serving), and the last
 * request of each window within the overlap (how long it went on). At most five records, in time order.
 */
export function overlapWitness(records: readonly ServedRecord[], overlap: Overlap): ServedRecord[] {
  const a = records.filter(inWindow(overlap.earlier)).sort((x, y) => x.atMs - y.atMs);
  const b = records.filter(inWindow(overlap.later)).sort((x, y) => x.atMs - y.atMs);
  const within = (r: ServedRecord) => r.atMs >= overlap.fromMs && r.atMs <= overlap.toMs;
  const picked = [
    a.findLast((r) => r.atMs <= overlap.fromMs),
    b[0],
    a.find((r) => r.atMs >= overlap.fromMs),
    a.findLast(within),
    b.findLast(within),
  ].filter((r): r is ServedRecord => r !== undefined);
  return [...new Set(picked)].sort((x, y) => x.atMs - y.atMs);
}

const WHY: Record<OverlapKind, string> = {
  two_allocations: 'two allocations of the organization served at once',
  same_epoch: 'two processes served one allocation at one epoch',
  older_epoch_later: 'an older epoch began serving after a newer one',
  handover_beyond_bound: 'a hot restart whose old process served on past the bound',
};

const who = (w: ServingWindow) =>
  `pid ${w.pid} (gateway ${w.gatewayId ?? '?'}, allocation ${w.allocationId}, epoch ${w.epoch}, ` +
  `${w.requests} requests in [${w.first.toFixed(1)}, ${w.last.toFixed(1)}])`;

/** A violation, for people: the organization, the two processes and epochs, the interval, and the witness records. */
export function describeOverlap(records: readonly ServedRecord[], overlap: Overlap, handoverBoundMs: number): string {
  const { earlier, later, fromMs, toMs } = overlap;
  const bound = overlap.kind === 'handover_beyond_bound' ? ` (the bound is ${handoverBoundMs} ms)` : '';
  const lines = [
    `organization ${overlap.organizationId}: ${WHY[overlap.kind]}${bound}`,
    `  ${who(earlier)}`,
    `  ${who(later)}`,
    `  both served during [${fromMs.toFixed(1)}, ${toMs.toFixed(1)}] ms (${(toMs - fromMs).toFixed(1)} ms); the smallest history that shows it:`,
    ...overlapWitness(records, overlap).map(
      (r) =>
        `    at_ms ${r.atMs.toFixed(1)} (${r.atMs - fromMs >= 0 ? '+' : ''}${(r.atMs - fromMs).toFixed(1)}) pid ${r.pid} epoch ${r.epoch}`,
    ),
  ];
  return lines.join('\n');
}
