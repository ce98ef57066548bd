/**
 * Example requests and responses for every route and every declared status.
 * Both packages' contract tests use them: Ganymede's tests check it answers each status with this shape,
 * the gateway's tests serve them to its client. `examples.test.ts` checks each one against the contract.
 */
import type { ErrorBody } from './schemas.js';

const GATEWAY = '8f7c2a3e-1b4d-4c6e-9a0f-2d3b4c5d6e7f';
const ORG = '3c1e5b7a-9d2f-4a6c-8e0b-1f2a3b4c5d6e';
const ALLOCATION = 'a1b2c3d4-e5f6-4a7b-8c9d-0e1f2a3b4c5d';
const INSTANCE = '0f9e8d7c-6b5a-4c3d-9e1f-0a1b2c3d4e5f';
const AT = '2026-11-24T09:00:00.000Z';
const TOKEN = 'eyJhbGciOiJIUzI1NiJ9.eyJ0eXAiOiJvcmdhbml6YXRpb24ifQ.c2lnbmF0dXJl';
const auth = { authorization: `Bearer ${TOKEN}` };
/** An Ed25519 public key (base64url) and a notice token's shape (EdDSA header, notice claims, a fake signature). */
const NOTICE_KEY = '11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo';
const NOTICE_TOKEN = 'eyJhbGciOiJFZERTQSJ9.eyJ0eXAiOiJub3RpY2UifQ.c2lnbmF0dXJl';

const err = (error: ErrorBody['error'], message: string): ErrorBody => ({ error, message });
const badRequest = err('bad_request', 'body.organization_id: Invalid uuid');
const tooLarge = err('payload_too_large', 'request body is larger than 65536 bytes');
const badType = err('unsupported_media_type', 'content type text/plain is not supported; send application/json');
const internal = err('internal', 'internal error');
const slow = err('request_timeout', 'the request was not received in time');
const bigHeaders = err('headers_too_large', 'the request line and headers exceed 65536 bytes');
const common = { 400: badRequest, 408: slow, 413: tooLarge, 415: badType, 431: bigHeaders, 500: internal };
const authed = {
  ...common,
  401: err('unauthorized', 'missing or invalid bearer token'),
  403: err('forbidden', 'this token may not act on that allocation'),
};

const allocation = { allocation_id: ALLOCATION, organization_id: ORG, gateway_id: GATEWAY };
const whoami = { ...allocation, epoch: 2, pid: 4242, started_at: AT };
/** An organization's state as the platform's gateways push it; its JSON text is 88 bytes. */
const DATA = { documents: [{ id: 'doc-1', title: 'Roadmap', updated: 1764000000000 }], cursor: 'c-42' };
const SNAPSHOT = {
  organization_id: ORG,
  revision: 3,
  epoch: 2,
  size: 88,
  checksum: 'sha256:fc0c4f5ab9d4b20a541f4626cb79fe5eae89551a4eaeda73d21be06daa8a22cf',
  stored_at: AT,
};

/** A scrape's first lines (the format is prom-client's). */
const METRICS =
  '# HELP ganymede_transitions_total Allocation transitions.\n# TYPE ganymede_transitions_total counter\nganymede_transitions_total{kind="allocated",reason=""} 3\n';
const OPENAPI = {
  openapi: '3.0.2',
  info: { title: 'Ganymede', version: '0.1.0', description: 'The control plane.' },
  paths: {},
  components: {},
};

export const ids = { GATEWAY, ORG, ALLOCATION, INSTANCE, TOKEN, NOTICE_KEY };

export const ganymedeExamples = {
  start: {
    request: { headers: auth, body: { organization_id: ORG } },
    responses: {
      ...authed,
      200: { ...allocation, gateway_url: 'http://127.0.0.1:4101', state: 'restarting', epoch: 3 },
      201: { ...allocation, gateway_url: 'http://127.0.0.1:4101', state: 'active', epoch: 1 },
      503: err('no_gateway_available', 'no ready gateway is free'),
    },
  },
  config: {
    request: { headers: auth, body: {} },
    responses: {
      ...authed,
      200: {
        ...allocation,
        organization_token: TOKEN,
        state: 'restarting',
        epoch: 2,
        restart_deadline: AT,
        organization_name: '',
        projects: [],
        project_names: [],
        members: [],
      },
      404: err('no_allocation', 'this gateway holds no live allocation'),
    },
  },
  ready: {
    request: { headers: auth, body: { allocation_id: ALLOCATION, instance_id: INSTANCE } },
    responses: {
      ...authed,
      200: {
        gateway_id: GATEWAY,
        allocation: { allocation_id: ALLOCATION, organization_id: ORG, state: 'active', epoch: 3 },
        reclaimed: true,
        lease: { expires_at: AT, seconds: 10, renew_deadline_ms: 15_000 },
        notice_key: NOTICE_KEY,
      },
      404: err('allocation_not_found', 'no such allocation'),
      409: err('allocation_ended', 'the allocation has ended'),
    },
  },
  reclaim: {
    request: { headers: auth, body: { instance_id: INSTANCE } },
    responses: {
      ...authed,
      200: {
        ...allocation,
        organization_token: TOKEN,
        state: 'active',
        epoch: 3,
        restart_deadline: null,
        organization_name: '',
        projects: [],
        project_names: [],
        members: [],
        reclaimed: true,
        lease: { expires_at: AT, seconds: 10, renew_deadline_ms: 15_000 },
        notice_key: NOTICE_KEY,
      },
      404: err('no_allocation', 'this gateway holds no live allocation'),
      409: err('allocation_ended', 'the gateway kept dying: the allocation ended (crash_loop)'),
    },
  },
  lease: {
    request: { headers: auth, body: { instance_id: INSTANCE, allocation_id: ALLOCATION, epoch: 3 } },
    responses: {
      ...authed,
      200: {
        lease: { expires_at: AT, seconds: 10, renew_deadline_ms: 15_000 },
        allocation: { allocation_id: ALLOCATION, organization_id: ORG, state: 'active', epoch: 3 },
      },
      409: err('superseded', 'another process of this gateway said ready after this one'),
    },
  },
  stop: {
    request: { headers: auth, body: { reason: 'stop', epoch: 2 } },
    responses: {
      ...authed,
      200: { allocation_id: ALLOCATION, state: 'ended', epoch: 2, ended_at: AT, ended_reason: 'stop' },
      404: err('allocation_not_found', 'no such allocation'),
      409: err('stale_epoch', 'epoch 1 is stale: the allocation is at epoch 2'),
    },
  },
  restart: {
    request: { headers: auth, body: { reason: 'reload', epoch: 2, grace_seconds: 30 } },
    responses: {
      ...authed,
      200: { allocation_id: ALLOCATION, state: 'restarting', epoch: 2, restart_deadline: AT },
      404: err('allocation_not_found', 'no such allocation'),
      409: err('stale_epoch', 'epoch 1 is stale: the allocation is at epoch 2'),
    },
  },
  withdrawRestart: {
    request: { headers: auth, body: { epoch: 2 } },
    responses: {
      ...authed,
      200: { allocation_id: ALLOCATION, state: 'active', epoch: 2 },
      404: err('allocation_not_found', 'no such allocation'),
      409: err('stale_epoch', 'epoch 2 is stale: the allocation is at epoch 3'),
    },
  },
  dataPush: {
    request: {
      headers: auth,
      body: { organization_id: ORG, gateway_id: GATEWAY, timestamp: AT, data: DATA, epoch: 2, base_revision: 2 },
    },
    responses: {
      ...authed,
      200: SNAPSHOT,
      403: err('allocation_ended', 'the allocation has ended: its token no longer acts on it'),
      404: err('allocation_not_found', 'no such allocation'),
      409: err('revision_conflict', 'base_revision 2 is not the latest revision 3'),
      413: err('payload_too_large', 'request body is larger than 16777216 bytes'),
    },
  },
  dataPull: {
    request: { headers: auth, body: { organization_id: ORG, gateway_id: GATEWAY } },
    responses: {
      ...authed,
      200: { ...SNAPSHOT, gateway_id: GATEWAY, timestamp: AT, data: DATA },
      404: err('not_found', 'nothing was ever pushed for this organization'),
    },
  },
  addGateway: {
    request: { headers: auth, body: { url: 'http://127.0.0.1:4101' } },
    responses: { ...authed, 201: { gateway_id: GATEWAY, token: TOKEN } },
  },
  status: {
    request: { headers: auth },
    responses: {
      ...authed,
      200: {
        gateways: [
          {
            gateway_id: GATEWAY,
            url: 'http://127.0.0.1:4101',
            ready: true,
            ready_at: AT,
            allocation_id: ALLOCATION,
            organization_id: ORG,
            state: 'active',
            epoch: 2,
            restart_deadline: null,
            since: AT,
            lease_age_seconds: 2.5,
          },
        ],
        lease_seconds: 10,
      },
    },
  },
  allocation: {
    request: { headers: auth, params: { allocation_id: ALLOCATION } },
    responses: {
      ...authed,
      200: {
        ...allocation,
        state: 'ended',
        epoch: 2,
        ended_at: AT,
        ended_reason: 'stop',
        events: [
          { kind: 'allocated', reason: null, epoch: 1, at: AT },
          { kind: 'restart_requested', reason: 'reload', epoch: 1, at: AT },
          { kind: 'reclaimed', reason: 'restart', epoch: 2, at: AT },
          { kind: 'stopped', reason: 'stop', epoch: 2, at: AT },
        ],
      },
      404: err('allocation_not_found', 'no such allocation'),
    },
  },
  events: {
    request: { headers: auth, query: { after: '41', limit: '100' } },
    responses: {
      ...authed,
      200: {
        events: [
          { id: 42, ...allocation, kind: 'restart_requested', reason: 'reload', epoch: 1, at: AT },
          { id: 43, ...allocation, kind: 'reclaimed', reason: 'restart', epoch: 2, at: AT },
        ],
        last_id: 43,
      },
    },
  },
  healthz: { request: {}, responses: { ...common, 200: { status: 'ok' } } },
  readyz: {
    request: {},
    responses: {
      ...common,
      200: { status: 'ready', database: 'postgres', schema_version: 5 },
      503: err('migrations_pending', 'the database schema is at version 4; this code needs 5: run the migrations'),
    },
  },
  metrics: { request: { headers: auth }, responses: { ...authed, 200: METRICS } },
  openapi: { request: {}, responses: { ...common, 200: OPENAPI } },
} as const;

export const gatewayExamples = {
  healthz: { request: {}, responses: { ...common, 200: { status: 'ok', serving: true } } },
  readyz: {
    request: {},
    responses: { ...common, 200: { status: 'ready', serving: false }, 503: err('not_ready', 'the gateway is draining') },
  },
  metrics: {
    request: { headers: auth },
    responses: {
      ...common,
      200: '# HELP gateway_epoch The epoch this process serves at (0: idle).\n# TYPE gateway_epoch gauge\ngateway_epoch 2\n',
      401: err('unauthorized', "this route needs the gateway's own token"),
    },
  },
  whoami: { request: {}, responses: { ...common, 200: whoami } },
  serve: {
    request: { params: { organization_id: ORG } },
    responses: {
      ...common,
      200: whoami,
      404: err('not_found', 'this gateway does not serve that organization'),
      503: err('not_ready', 'the gateway is starting or shutting down'),
    },
  },
  echo: {
    request: { params: { organization_id: ORG }, body: { data: 'hello' } },
    responses: {
      ...common,
      200: { ...whoami, data: 'hello' },
      404: err('not_found', 'this gateway does not serve that organization'),
      503: err('not_ready', 'the gateway is starting or shutting down'),
    },
  },
  allocated: {
    request: { headers: { authorization: `Bearer ${NOTICE_TOKEN}` }, body: { allocation_id: ALLOCATION } },
    responses: {
      ...common,
      200: whoami,
      401: err('unauthorized', 'the notice is not from Ganymede: it is for another allocation'),
      409: err('allocation_ended', 'Ganymede holds no such allocation for this gateway'),
      503: err('not_ready', 'the gateway is starting or shutting down'),
    },
  },
} as const;

/** Ganymede's calls to the platform's gateway (protocol v1), with the answers it gives. */
export const platformGatewayExamples = {
  collabPing: { request: {}, responses: { 200: {} } },
  collabStart: { request: { body: {} }, responses: { 200: {} } },
} as const;

/**
 * The platform's gateway's own bodies (protocol v1), as it sends them: ready with its id, stop with nothing. The
 * contract's ready and stop bodies take them (examples.test.ts checks it).
 */
export const platformGatewayBodies = {
  ready: { gateway_id: GATEWAY },
  stop: {},
} as const;
