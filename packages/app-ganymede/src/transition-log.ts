import type { FastifyBaseLogger } from 'fastify';
import type { Allocation } from './sql/rows.js';

/** One log line per transition, with who, what and why: the routes and the reaper both write them. */
export function logTransition(log: FastifyBaseLogger, transition: string, a: Allocation, reason: string | null = null) {
  log.info(
    { transition, gateway_id: a.gateway_id, organization_id: a.organization_id, allocation_id: a.allocation_id, epoch: a.epoch, reason },
    `allocation ${transition}`,
  );
}
