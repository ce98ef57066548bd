import type { FastifyBaseLogger } from 'fastify';
import type { Metrics } from './metrics.js';
import type { Allocation } from './sql/rows.js';
import type { Reclaim } from './sql/transitions.js';

/**
 * One log line and one count per transition, with who, what and why: the routes and the reaper both write them.
 * `reclaimed` also times the reclaim and, after a restart, restart → reclaim (read by the claim's own statement).
 */
export function transitionLog(log: FastifyBaseLogger, metrics: Metrics) {
  function record(transition: string, a: Allocation, reason: string | null = null) {
    metrics.transitions.inc({ kind: transition, reason: reason ?? '' });
    log.info(
      { transition, gateway_id: a.gateway_id, organization_id: a.organization_id, allocation_id: a.allocation_id, epoch: a.epoch, reason },
      `allocation ${transition}`,
    );
  }

  /** A reclaim, answered `startedAtMs` (process clock) after its request arrived. */
  function reclaimed(a: Allocation, reclaim: Reclaim, startedAtMs: number) {
    record('reclaimed', a, reclaim.reason);
    metrics.reclaimLatency.observe({ reason: reclaim.reason }, (performance.now() - startedAtMs) / 1000);
    if (reclaim.restartToReclaimSeconds !== null) metrics.restartToReclaim.observe(reclaim.restartToReclaimSeconds);
  }

  return { record, reclaimed };
}

export type TransitionLog = ReturnType<typeof transitionLog>;
