import { initContract } from '@ts-rest/core';
import { z } from 'zod';
import {
  AddGatewayBody,
  AddGatewayResponse,
  AllocatedNotice,
  AllocationHistoryResponse,
  BearerHeaders,
  CollabAnswer,
  CollabStartBody,
  ConfigBody,
  ConfigResponse,
  DataPullBody,
  DataPullResponse,
  DataPushBody,
  DataPushResponse,
  EchoBody,
  EchoResponse,
  ErrorBody,
  EventsQuery,
  EventsResponse,
  GatewayReadiness,
  Health,
  Liveness,
  NoticeHeaders,
  OpenApiDocument,
  OptionalBearerHeaders,
  PROMETHEUS_CONTENT_TYPE,
  Readiness,
  LeaseBody,
  LeaseResponse,
  ReadyBody,
  ReadyResponse,
  ReclaimBody,
  ReclaimResponse,
  RestartBody,
  RestartResponse,
  StartBody,
  StartResponse,
  StatusResponse,
  StopBody,
  StopResponse,
  Uuid,
  Whoami,
  WithdrawRestartBody,
  WithdrawRestartResponse,
} from './schemas.js';

const c = initContract();

/**
 * Statuses any route can answer before its handler runs: bad input (including a malformed request line, chunk
 * or content length), a request not received in time (408), oversize headers or URL (431), oversize body (413),
 * wrong content type (415), a bug (500).
 */
const common = { 400: ErrorBody, 408: ErrorBody, 413: ErrorBody, 415: ErrorBody, 431: ErrorBody, 500: ErrorBody };
const authed = { ...common, 401: ErrorBody, 403: ErrorBody };
/** Metrics in the Prometheus text format: rendered by prom-client, never by hand. */
const prometheusText = c.otherResponse({ contentType: PROMETHEUS_CONTENT_TYPE, body: z.string() });

/** Ganymede, the control plane. Gateways, users and operators call it. */
export const ganymedeContract = c.router(
  {
    start: {
      method: 'POST',
      path: '/gateway/start',
      summary: "A user asks for its organization's gateway (user token).",
      headers: BearerHeaders,
      body: StartBody,
      responses: { ...authed, 200: StartResponse, 201: StartResponse, 503: ErrorBody },
    },
    config: {
      method: 'POST',
      path: '/gateway/config',
      summary: 'A gateway asks for its live allocation (gateway token).',
      headers: BearerHeaders,
      body: ConfigBody,
      responses: { ...authed, 200: ConfigResponse, 404: ErrorBody },
    },
    ready: {
      method: 'POST',
      path: '/gateway/ready',
      summary: 'A gateway process says it is up, idle or serving (and so reclaiming) an allocation (gateway token).',
      headers: BearerHeaders,
      body: ReadyBody,
      responses: { ...authed, 200: ReadyResponse, 404: ErrorBody, 409: ErrorBody },
    },
    reclaim: {
      method: 'POST',
      path: '/gateway/reclaim',
      summary:
        "A restarted gateway process reclaims the allocation its gateway holds in one call (gateway token): /gateway/config's answer, claimed at once as /gateway/ready {allocation_id, instance_id} would claim it (epoch + 1 for a reclaim, crash-loop limit, lease renewed), in one statement. 404 no_allocation when the gateway holds none (nothing changes: say ready idle); 409 allocation_ended when the claim ended it (crash_loop).",
      headers: BearerHeaders,
      body: ReclaimBody,
      responses: { ...authed, 200: ReclaimResponse, 404: ErrorBody, 409: ErrorBody },
    },
    lease: {
      method: 'POST',
      path: '/gateway/lease',
      summary:
        'A gateway process renews its liveness lease (gateway token). Fenced: a process superseded by a newer one, or serving an ended allocation or a stale epoch, is refused (409) and must stop serving.',
      headers: BearerHeaders,
      body: LeaseBody,
      responses: { ...authed, 200: LeaseResponse, 409: ErrorBody },
    },
    stop: {
      method: 'POST',
      path: '/gateway/stop',
      summary: 'End the allocation (organization token).',
      headers: BearerHeaders,
      body: StopBody,
      responses: { ...authed, 200: StopResponse, 404: ErrorBody, 409: ErrorBody },
    },
    restart: {
      method: 'POST',
      path: '/gateway/restart',
      summary: 'Keep the allocation, marked restarting, until the restarted gateway reclaims it (organization token).',
      headers: BearerHeaders,
      body: RestartBody,
      responses: { ...authed, 200: RestartResponse, 404: ErrorBody, 409: ErrorBody },
    },
    withdrawRestart: {
      method: 'POST',
      path: '/gateway/restart/withdraw',
      summary:
        'Take back a restart this process asked for (its successor failed to boot): the allocation is active again at the same epoch (organization token). Fenced by the required epoch; a repeat answers 200 and changes nothing.',
      headers: BearerHeaders,
      body: WithdrawRestartBody,
      responses: { ...authed, 200: WithdrawRestartResponse, 404: ErrorBody, 409: ErrorBody },
    },
    dataPush: {
      method: 'POST',
      path: '/gateway/data/push',
      summary:
        "Store the organization's state as its next revision (organization token). Fenced by the epoch (409 stale_epoch) and, with base_revision, compare-and-set (409 revision_conflict); refused once the token's allocation ended (403 allocation_ended). Its body may be larger than other routes' (the snapshot limit, 413 past it); unknown top-level keys are dropped.",
      headers: BearerHeaders,
      body: DataPushBody,
      responses: { ...authed, 200: DataPushResponse, 404: ErrorBody, 409: ErrorBody },
    },
    dataPull: {
      method: 'POST',
      path: '/gateway/data/pull',
      summary:
        "The organization's latest snapshot, whichever allocation pushed it (organization token of a live allocation). 404 not_found when nothing was ever pushed.",
      headers: BearerHeaders,
      body: DataPullBody,
      responses: { ...authed, 200: DataPullResponse, 404: ErrorBody },
    },
    addGateway: {
      method: 'POST',
      path: '/admin/gateways',
      summary: 'Register a gateway by its URL; answers its id and token (admin token).',
      headers: BearerHeaders,
      body: AddGatewayBody,
      responses: { ...authed, 201: AddGatewayResponse },
    },
    status: {
      method: 'GET',
      path: '/admin/status',
      summary: 'The pool: every gateway with its live allocation, if any (admin token).',
      headers: BearerHeaders,
      responses: { ...authed, 200: StatusResponse },
    },
    allocation: {
      method: 'GET',
      path: '/admin/allocations/:allocation_id',
      summary: 'One allocation with its audit trail (admin token).',
      pathParams: z.object({ allocation_id: Uuid }),
      headers: BearerHeaders,
      responses: { ...authed, 200: AllocationHistoryResponse, 404: ErrorBody },
    },
    events: {
      method: 'GET',
      path: '/admin/events',
      summary: "The pool's audit events after the cursor `after`, oldest first, at most `limit` (admin token).",
      query: EventsQuery,
      headers: BearerHeaders,
      responses: { ...authed, 200: EventsResponse },
    },
    healthz: {
      method: 'GET',
      path: '/healthz',
      summary: 'Liveness: the process answers. Checks nothing else (no token).',
      responses: { ...common, 200: Liveness },
    },
    readyz: {
      method: 'GET',
      path: '/readyz',
      summary:
        'Readiness: the database answers and its schema is at the version of this code (no token). 503 database_unavailable or migrations_pending otherwise.',
      responses: { ...common, 200: Readiness, 503: ErrorBody },
    },
    metrics: {
      method: 'GET',
      path: '/metrics',
      summary: 'Metrics in the Prometheus text format (admin token, unless the server runs with --metrics-open / GANYMEDE_METRICS_OPEN=1).',
      headers: OptionalBearerHeaders,
      responses: { ...authed, 200: prometheusText },
    },
    openapi: {
      method: 'GET',
      path: '/openapi.json',
      summary: 'This API described in OpenAPI 3, generated from the contract (no token). A page to browse it: /docs.',
      responses: { ...common, 200: OpenApiDocument },
    },
  },
  { strictStatusCodes: true },
);

/** The gateway process. Ganymede and users call it. */
export const gatewayContract = c.router(
  {
    healthz: {
      method: 'GET',
      path: '/healthz',
      summary: 'Liveness: the process answers; `serving` says whether it serves an organization now.',
      responses: { ...common, 200: Health },
    },
    readyz: {
      method: 'GET',
      path: '/readyz',
      summary:
        'Readiness: serving its organization, or idle and ready to be allocated. 503 not_ready while booting, draining, standing down or shutting down; 503 not_serving past its renew deadline (it could not renew its lease in time).',
      responses: { ...common, 200: GatewayReadiness, 503: ErrorBody },
    },
    metrics: {
      method: 'GET',
      path: '/metrics',
      summary:
        "This process's metrics in the Prometheus text format (the gateway's own token: its port also serves organizations' traffic).",
      headers: BearerHeaders,
      responses: { ...common, 401: ErrorBody, 200: prometheusText },
    },
    whoami: {
      method: 'GET',
      path: '/whoami',
      summary: 'Which organization and allocation this process serves, at which epoch (nulls when idle).',
      responses: { ...common, 200: Whoami },
    },
    serve: {
      method: 'GET',
      path: '/orgs/:organization_id',
      summary: "The organization's traffic: 200 only while this process serves that organization.",
      pathParams: z.object({ organization_id: Uuid }),
      responses: { ...common, 200: Whoami, 404: ErrorBody, 503: ErrorBody },
    },
    echo: {
      method: 'POST',
      path: '/orgs/:organization_id/echo',
      summary:
        "The organization's traffic with a body: answered, once the whole body arrived, by the process that read it (so a request under way when a hot restart begins ends on the old process).",
      pathParams: z.object({ organization_id: Uuid }),
      body: EchoBody,
      responses: { ...common, 200: EchoResponse, 404: ErrorBody, 503: ErrorBody },
    },
    allocated: {
      method: 'POST',
      path: '/allocated',
      summary:
        "Ganymede tells an idle gateway it was just allocated (notice token: NoticeClaims). A notice without Ganymede's proof is refused (401) before Ganymede is asked anything; a proven one is still only a hint: the gateway asks /gateway/config and claims with /gateway/ready, then answers. The header is optional only for a Ganymede older than notice tokens, which gave the gateway no notice_key: such notices are taken unproven.",
      headers: NoticeHeaders,
      body: AllocatedNotice,
      responses: { ...common, 200: Whoami, 401: ErrorBody, 409: ErrorBody, 503: ErrorBody },
    },
  },
  { strictStatusCodes: true },
);

/** The platform's gateway, as far as Ganymede calls it: how a v1 gateway is told of its allocation. Not served here. */
export const platformGatewayContract = c.router(
  {
    collabPing: {
      method: 'GET',
      path: '/collab/ping',
      summary: 'Is the platform gateway up? (the first half of its allocation notice)',
      responses: { 200: CollabAnswer },
    },
    collabStart: {
      method: 'POST',
      path: '/collab/start',
      summary: 'You were allocated: the platform gateway reads /gateway/config, starts serving, then answers.',
      body: CollabStartBody,
      responses: { 200: CollabAnswer },
    },
  },
  { strictStatusCodes: true },
);

export type GanymedeContract = typeof ganymedeContract;
export type GatewayContract = typeof gatewayContract;
