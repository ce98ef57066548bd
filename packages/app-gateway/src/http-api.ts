/**
 * The gateway's own API (`gatewayContract`), served by the shared `createServer`.
 * The router reads everything from a `GatewayView`: the lifecycle owns the state, this module only maps it.
 */
import { type ErrorBody, gatewayContract, type Whoami } from '@ganymede/contracts';
import { createServer } from '@ganymede/http-server';
import { initServer } from '@ts-rest/fastify';
import type { FastifyBaseLogger, FastifyInstance } from 'fastify';

/**
 * `stood_down`: another process of this gateway took over; this one serves nothing and waits to be shut down.
 * `handing_over`: a hot restart is under way (the restart asked for, a successor booting): still serving.
 * `draining`: the successor accepts now; this process finishes the requests and connections it has.
 */
export const PHASES = ['created', 'booting', 'up', 'handing_over', 'draining', 'stood_down', 'shutting_down', 'stopped'] as const;
export type Phase = (typeof PHASES)[number];

/** Phases in which the process answers its organization's traffic. */
export const servesTraffic = (phase: Phase): boolean => phase === 'up' || phase === 'handing_over' || phase === 'draining';

/**
 * Phases in which the process is ready for new traffic (`/readyz`): serving, or idle and ready to be allocated. A
 * draining process still answers what it has, but new connections belong to its successor.
 */
export const readyForTraffic = (phase: Phase): boolean => phase === 'up' || phase === 'handing_over';

export type AllocatedAnswer =
  | { status: 200; body: Whoami }
  | { status: 401; body: ErrorBody & { error: 'unauthorized' } }
  | { status: 409; body: ErrorBody & { error: 'allocation_ended' } }
  | { status: 503; body: ErrorBody & { error: 'not_ready' } };

/** What the API needs to know about the process. */
export interface GatewayView {
  phase(): Phase;
  /** Past the renew deadline (serve-deadline.ts): the organization's traffic is refused with 503 not_serving. */
  lapsed(): boolean;
  /** Which allocation this process serves; nulls when idle. */
  whoami(): Whoami;
  /**
   * Ganymede's notice that this (idle) gateway was allocated, with its `Authorization` header: refused (401)
   * unless it proves it comes from Ganymede, then verified with Ganymede before answering.
   */
  allocated(allocationId: string, authorization: string | undefined): Promise<AllocatedAnswer>;
  /** The metrics' exposition text for a caller that presents this gateway's own token (`authorization`); null otherwise. */
  metrics(authorization: string): Promise<string | null>;
}

export const NOT_READY = { error: 'not_ready', message: 'the gateway is starting, standing down or shutting down' } as const;
export const NOT_SERVING = {
  error: 'not_serving',
  message: 'the gateway could not renew its lease in time: it serves nothing until Ganymede answers again',
} as const;

/** The organization's traffic: answered while this process serves that organization. */
function servedBy(view: GatewayView, organizationId: string) {
  if (!servesTraffic(view.phase())) return { status: 503 as const, body: NOT_READY };
  const who = view.whoami();
  if (who.organization_id !== organizationId) {
    return { status: 404 as const, body: { error: 'not_found' as const, message: 'this gateway does not serve that organization' } };
  }
  return { status: 200 as const, body: who };
}

export function gatewayRouter(view: GatewayView) {
  return initServer().router(gatewayContract, {
    healthz: async () => {
      const who = view.whoami();
      return { status: 200, body: { status: 'ok', serving: servesTraffic(view.phase()) && who.allocation_id !== null } };
    },
    readyz: async () => {
      const phase = view.phase();
      if (!readyForTraffic(phase))
        return { status: 503, body: { error: 'not_ready', message: `the gateway is ${phase.replace('_', ' ')}` } };
      if (view.lapsed()) return { status: 503, body: NOT_SERVING };
      return { status: 200, body: { status: 'ready', serving: view.whoami().allocation_id !== null } };
    },
    metrics: async ({ headers }) => {
      const text = await view.metrics(headers.authorization);
      if (text === null) return { status: 401, body: { error: 'unauthorized', message: "/metrics needs this gateway's own token" } };
      return { status: 200, body: text };
    },
    whoami: async () => ({ status: 200, body: view.whoami() }),
    serve: async ({ params }) => servedBy(view, params.organization_id),
    echo: async ({ params, body }) => {
      const answer = servedBy(view, params.organization_id);
      return answer.status === 200 ? { status: 200, body: { ...answer.body, data: body.data } } : answer;
    },
    allocated: async ({ body, headers }) => view.allocated(body.allocation_id, headers.authorization),
  });
}

export function createGatewayServer(view: GatewayView, options: { logger: FastifyBaseLogger | false }): FastifyInstance {
  return createServer(gatewayContract, gatewayRouter(view), options);
}
