/**
 * The shutdown's one call to Ganymede: /gateway/restart for a restart reason (never falling back to /gateway/stop),
 * /gateway/stop for a stop reason. Refusals that mean "nothing to keep or end" are logged, not thrown.
 */
import { failpoint } from '@ganymede/failpoints';
import type { FastifyBaseLogger } from 'fastify';
import type { GatewayConfig } from './config.js';
import { GanymedeAnswerError, InvalidAnswerError } from './errors.js';
import type { GanymedeClient } from './ganymede-client.js';
import type { HeldAllocation } from './gateway.js';
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
    const answer = await client.restart(held.organizationToken, body, { timeoutMs }).catch((error: unknown) => {
      // A 404 whose body is off the contract: a Ganymede too old to have the route at all. Same as a 404.
      if (error instanceof InvalidAnswerError && error.status === 404) {
        return { status: 404 as const, body: { error: 'not_found' as const, message: 'no /gateway/restart route' } };
      }
      throw error;
    });
    failpoint('gateway:after:restart');
    if (answer.status === 200) {
      const { restart_deadline } = answer.body;
      log.info({ event: 'restart_requested', restart_deadline, ...fields }, `allocation kept until ${restart_deadline}`);
    } else if (answer.status === 404) {
      // An older Ganymede without /gateway/restart: never fall back to /gateway/stop; the next start reclaims.
      log.warn(
        { event: 'restart_unsupported', status: 404, error: answer.body.error, ...fields },
        'Ganymede has no restart for this allocation: leaving it as it is',
      );
    } else if (answer.status === 409 || (answer.status === 403 && answer.body.error === 'allocation_ended')) {
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
