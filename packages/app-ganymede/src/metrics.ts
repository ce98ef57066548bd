/**
 * Ganymede's metrics (prom-client), in a registry of each server's own: several servers in one process (the tests)
 * never share a series. What the database knows (allocations by state, the pool) is read at scrape time with one
 * query, so every replica reports the same, right numbers; what happens in this process (transitions, renewals,
 * notices, query time) is counted here, so a fleet's total is the sum over its replicas.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { Queryable } from './db/database.js';
import { scrapeCounts } from './sql/metrics.js';

/** Seconds: from a fast reclaim (a hot restart's successor) to one at the edge of the default 60 s grace. */
const RESTART_BUCKETS = [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120];
/** Seconds: a statement on either backend, from a few hundred microseconds to a stuck one. */
const QUERY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 5];

export function createMetrics() {
  const registry = new Registry();
  const registers = [registry];
  const allocations = new Gauge({
    name: 'ganymede_allocations',
    help: 'Allocations by state, from the database at scrape time (ended: every allocation that ever ended).',
    labelNames: ['state'],
    registers,
  });
  const poolGateways = new Gauge({
    name: 'ganymede_pool_gateways',
    help: 'Registered gateways, from the database at scrape time: free (allocatable), busy (holding a live allocation), unavailable (neither: not ready, or its lease lapsed).',
    labelNames: ['status'],
    registers,
  });
  return {
    transitions: new Counter({
      name: 'ganymede_transitions_total',
      help: 'Allocation transitions made by this process, by kind (the audit kinds) and reason ("" when none).',
      labelNames: ['kind', 'reason'],
      registers,
    }),
    reclaimLatency: new Histogram({
      name: 'ganymede_reclaim_latency_seconds',
      help: 'Time this process took to answer a /gateway/ready that reclaimed an allocation, by reason (restart, crash).',
      labelNames: ['reason'],
      buckets: QUERY_BUCKETS,
      registers,
    }),
    restartToReclaim: new Histogram({
      name: 'ganymede_restart_to_reclaim_seconds',
      help: "From an allocation's restart_requested to its reclaim, in the database clock (audit timestamps), observed at the reclaim.",
      buckets: RESTART_BUCKETS,
      registers,
    }),
    leaseRenewals: new Counter({
      name: 'ganymede_lease_renewals_total',
      help: 'Lease renewals (/gateway/lease) by outcome: ok, or why it was refused (superseded, stale_epoch, allocation_ended, forbidden).',
      labelNames: ['outcome'],
      registers,
    }),
    leaseExpiries: new Counter({
      name: 'ganymede_lease_expiries_total',
      help: "Active allocations this process's reaper ended because their gateway's lease lapsed past its grace.",
      registers,
    }),
    noticeFailures: new Counter({
      name: 'ganymede_notice_failures_total',
      help: 'Notices (POST /allocated) a gateway did not take, by why: unreachable, timeout, refused (an error status), invalid_answer.',
      labelNames: ['why'],
      registers,
    }),
    queryDuration: new Histogram({
      name: 'ganymede_db_query_duration_seconds',
      help: 'Time of each statement through the database door (query or script), by backend.',
      labelNames: ['backend'],
      buckets: QUERY_BUCKETS,
      registers,
    }),
    /** The exposition text, the database's gauges read first (one query). */
    async scrape(db: Queryable): Promise<string> {
      const counts = await scrapeCounts(db);
      for (const [state, n] of Object.entries(counts.allocations)) allocations.set({ state }, n);
      for (const [status, n] of Object.entries(counts.pool)) poolGateways.set({ status }, n);
      return registry.metrics();
    },
  };
}

export type Metrics = ReturnType<typeof createMetrics>;
