/**
 * A stand-in for a gateway's HTTP side: answers every notice of Ganymede's 200 and records it (its allocation id and
 * Authorization header). Real gateways are used by the end-to-end tests; this one only lets /gateway/start finish.
 */
import { randomUUID } from 'node:crypto';
import { gatewayContract, type Whoami } from '@ganymede/contracts';
import { createServer } from '@ganymede/http-server';

export async function noticeTarget() {
  const received: string[] = [];
  /** The Authorization header of each notice, in the order received. */
  const authorizations: (string | undefined)[] = [];
  const whoami = (allocationId: string | null): Whoami => ({
    gateway_id: randomUUID(),
    organization_id: allocationId ? randomUUID() : null,
    allocation_id: allocationId,
    epoch: allocationId ? 1 : null,
    pid: process.pid,
    started_at: new Date().toISOString(),
  });
  const app = createServer(
    gatewayContract,
    {
      healthz: async () => ({ status: 200, body: { status: 'ok', serving: false } }),
      readyz: async () => ({ status: 200, body: { status: 'ready', serving: false } }),
      metrics: async () => ({ status: 401, body: { error: 'unauthorized', message: 'fake' } }),
      whoami: async () => ({ status: 200, body: whoami(null) }),
      serve: async () => ({ status: 404, body: { error: 'not_found', message: 'fake' } }),
      echo: async () => ({ status: 404, body: { error: 'not_found', message: 'fake' } }),
      allocated: async ({ body, headers }) => {
        received.push(body.allocation_id);
        authorizations.push(headers.authorization);
        return { status: 200, body: whoami(body.allocation_id) };
      },
    },
    { logger: false },
  );
  const url = await app.listen({ port: 0, host: '127.0.0.1' });
  return { url, received, authorizations, close: () => app.close() };
}
