/**
 * A Ganymede older than leases, restarts and snapshots, for the rolling-upgrade tests of this gateway: a real
 * Fastify server with only /gateway/config, /gateway/ready and /gateway/stop, holding one allocation for one
 * gateway in memory. What it answers is what such a Ganymede answered (no `notice_key`, a lease it never asks to
 * renew, no platform fields in config). Every other route is its server's not-found: a bare Fastify's
 * (`{statusCode, error: "Not Found", message}`, off the contract) or this project's (`{error: "not_found", message}`).
 */
import { randomUUID } from 'node:crypto';
import Fastify from 'fastify';

export interface OlderGanymedeOptions {
  gatewayId: string;
  organizationId: string;
  notFound: 'fastify' | 'contract';
}

export interface OlderGanymede {
  url: string;
  allocationId: string;
  /** The allocation as it stands: its state and epoch. */
  allocation(): { state: 'active' | 'ended'; epoch: number };
  /** Each request received, method and path, in order (the routes it lacks included). */
  calls: string[];
  close(): Promise<void>;
}

export async function startOlderGanymede(options: OlderGanymedeOptions): Promise<OlderGanymede> {
  const allocationId = randomUUID();
  const held = { state: 'active' as 'active' | 'ended', epoch: 1, instance: null as string | null };
  const calls: string[] = [];
  const app = Fastify({ logger: false, forceCloseConnections: true });
  app.addHook('onRequest', async (request) => void calls.push(`${request.method} ${request.url}`));
  if (options.notFound === 'contract') {
    app.setNotFoundHandler((request, reply) =>
      reply.status(404).send({ error: 'not_found', message: `no route ${request.method} ${request.url}` }),
    );
  }
  const served = () => ({ allocation_id: allocationId, organization_id: options.organizationId, state: 'active', epoch: held.epoch });
  app.post('/gateway/config', async (_request, reply) =>
    held.state === 'ended'
      ? reply.status(404).send({ error: 'no_allocation', message: 'this gateway holds no live allocation' })
      : {
          gateway_id: options.gatewayId,
          organization_token: 'older-ganymede-organization-token',
          ...served(),
          restart_deadline: null,
        },
  );
  app.post<{ Body: { allocation_id: string | null; instance_id?: string } }>('/gateway/ready', async (request) => {
    const { allocation_id, instance_id } = request.body;
    const claims = allocation_id === allocationId && held.state === 'active';
    // Another process taking the allocation over: a crash reclaim, epoch + 1.
    const reclaimed = claims && held.instance !== null && held.instance !== instance_id;
    if (reclaimed) held.epoch++;
    if (claims) held.instance = instance_id ?? null;
    return {
      gateway_id: options.gatewayId,
      allocation: held.state === 'active' ? served() : null,
      reclaimed,
      lease: { expires_at: null, seconds: 1 },
    };
  });
  app.post('/gateway/stop', async () => {
    held.state = 'ended';
    const ended_at = new Date().toISOString();
    return { allocation_id: allocationId, state: 'ended', epoch: held.epoch, ended_at, ended_reason: 'stop' };
  });
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, allocationId, allocation: () => ({ state: held.state, epoch: held.epoch }), calls, close: () => app.close() };
}
