/**
 * The shutdown's one call to Ganymede: /gateway/restart for a restart reason, /gateway/stop for a stop reason.
 * Refusals that mean "nothing to keep or end" are logged, not thrown. A Ganymede without /gateway/restart (older
 * than it) is never asked to stop instead: that would end the user's allocation. The allocation is left as it is,
 * active, and the next process takes it back as a crash reclaim.
 */
import { failpoint } from '@ganymede/failpoints';
import type { FastifyBaseLogger } from 'fastify';
import type { GatewayConfig } from './config.js';
import { GanymedeAnswerError } from './errors.js';
import type { GanymedeClient } from './ganymede-client.js';
import type { HeldAllocation } from './gateway.js';
import { ROUTE_MISSING, unlessRouteMissing } from './route-missing.js';
import type { ShutdownRequest } from './shutdown-reason.js';

export interface ShutdownCallDeps {
  client: GanymedeClient;
  log: FastifyBaseLogger;
  config: Pick<GatewayConfig, 'requestTimeoutMs' | 'restartGraceSeconds'>;
}

export async function tellGanymede(
  { client, log, config }: ShutdownCallDeps,
  request: ShutdownRequest,
  held: HeldAllocation,
  timeLeftMs: number,
  context: Record<string, unknown>,
): Promise<void> {
  const timeoutMs = Math.min(config.requestTimeoutMs, timeLeftMs);
  const fields = { reason: request.reason, ...context };
  if (timeoutMs < 10) {
    log.error({ event: `${request.kind}_skipped`, ...fields }, 'no time left to tell Ganymede');
    return;
  }
  const base = { epoch: held.epoch, allocation_id: held.allocationId };
  if (request.kind === 'restart') {
    const grace = config.restartGraceSeconds;
    const body = { reason: request.reason, ...base, ...(grace === undefined ? {} : { grace_seconds: grace }) };
    log.info({ event: 'restart_requesting', ...fields }, 'asking Ganymede to keep the allocation');
    failpoint('gateway:before:restart');
    const answer = await unlessRouteMissing(client.restart(held.organizationToken, body, { timeoutMs }));
    failpoint('gateway:after:restart');
    if (answer.status === ROUTE_MISSING.status) {
      log.warn(
        { event: 'restart_unsupported', status: 404, ...fields },
        'Ganymede has no /gateway/restart (an older Ganymede): leaving the allocation active for the next process to reclaim',
      );
    } else if (answer.status === 200) {
      const { restart_deadline } = answer.body;
      log.info({ event: 'restart_requested', restart_deadline, ...fields }, `allocation kept until ${restart_deadline}`);
    } else if (answer.status === 404 || answer.status === 409 || (answer.status === 403 && answer.body.error === 'allocation_ended')) {
      const { error } = answer.body;
      log.info({ event: 'restart_refused', status: answer.status, error, ...fields }, `nothing to keep: ${error}`);
    } else {
      throw new GanymedeAnswerError('POST /gateway/restart', answer);
    }
    return;
  }
  const body = { reason: request.reason, ...base };
  log.info({ event: 'stop_requesting', ...fields }, 'asking Ganymede to end the allocation');
  failpoint('gateway:before:stop');
  const answer = await client.stop(held.organizationToken, body, { timeoutMs });
  failpoint('gateway:after:stop');
  if (answer.status === 200) {
    log.info({ event: 'stop_confirmed', ended_reason: answer.body.ended_reason, ...fields }, 'allocation ended');
  } else if (answer.status === 404 || answer.status === 409 || (answer.status === 403 && answer.body.error === 'allocation_ended')) {
    const { error } = answer.body;
    log.info({ event: 'stop_refused', status: answer.status, error, ...fields }, `nothing to end: ${error}`);
  } else {
    throw new GanymedeAnswerError('POST /gateway/stop', answer);
  }
}
