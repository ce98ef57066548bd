import type { FastifyBaseLogger } from 'fastify';
import type { Queryable } from './db/database.js';
import type { Metrics } from './metrics.js';
import { reclaimTiming } from './sql/metrics.js';
import type { Allocation } from './sql/rows.js';

/**
 * One log line and one count per transition, with who, what and why: the routes and the reaper both write them.
 * `reclaimed` also reads the reclaim's reason and, after a restart, restart → reclaim from the audit rows.
 */
export function transitionLog(log: FastifyBaseLogger, metrics: Metrics, db: Queryable) {
  function record(transition: string, a: Allocation, reason: string | null = null) {
    metrics.transitions.inc({ kind: transition, reason: reason ?? '' });
    log.info(
      { transition, gateway_id: a.gateway_id, organization_id: a.organization_id, allocation_id: a.allocation_id, epoch: a.epoch, reason },
      `allocation ${transition}`,
    );
  }

  /** A reclaim, answered `startedAtMs` (process clock) after its request arrived. Never throws: the reclaim is done. */
  async function reclaimed(a: Allocation, startedAtMs: number) {
    const timing = await reclaimTiming(db, a.allocation_id, a.epoch).catch((err: unknown) => {
      log.warn({ err, allocation_id: a.allocation_id }, 'could not read the reclaim from the audit: not measured');
      return null;
    });
    record('reclaimed', a, timing?.reason ?? null);
    if (!timing) return;
    metrics.reclaimLatency.observe({ reason: timing.reason }, (performance.now() - startedAtMs) / 1000);
    if (timing.restartToReclaimSeconds !== null) metrics.restartToReclaim.observe(timing.restartToReclaimSeconds);
  }

  return { record, reclaimed };
}

export type TransitionLog = ReturnType<typeof transitionLog>;
