/**
 * Every route of `ganymedeContract` × every status it declares: a real server is driven into that state over
 * real HTTP, and the answer must have that status, parse with the contract's schema for it, and have the same
 * keys as the example in `ganymedeExamples`. A last test checks that the table covers every declared status
 * but the ones listed in NOT_PRODUCIBLE (with the reason).
 */
import { randomUUID } from 'node:crypto';
import { type ErrorCode, ganymedeContract, ganymedeExamples } from '@ganymede/contracts';
import { openApiText } from '@ganymede/contracts/openapi';
import { MAX_HEADER_BYTES } from '@ganymede/http-server';
import { rawHttp } from '@ganymede/testkit/raw-http';
import { type AppRouteResponse, isAppRouteOtherResponse } from '@ts-rest/core';
import { describe, expect, it } from 'vitest';
import type { ZodTypeAny } from 'zod';
import { bearer, rawRequest, shapeDifferences, useGanymede } from './support.js';

type Route = keyof typeof ganymedeContract;
type Headers = Record<string, string>;

/** Small, so the crash-loop case needs few reclaims. */
const CRASH_LOOP_LIMIT = 3;
/** A short headers timeout, so the 408 cases are quick. */
const g = useGanymede({ crashLoopLimit: CRASH_LOOP_LIMIT, httpTimeouts: { headersMs: 1000, requestMs: 2000 } });

const JSON_TYPE = { 'content-type': 'application/json' };

interface Request {
  headers: Headers;
  /** A value to send as JSON, or a string sent as is. */
  body?: unknown;
  params?: Record<string, string>;
  /** The query string, as sent. */
  query?: string;
}

/** Sends `route` over raw HTTP: the method and path come from the contract. */
function send(route: Route, { headers, body, params = {}, query }: Request) {
  const r = ganymedeContract[route];
  const path = r.path.replace(/:(\w+)/g, (_, name: string) => encodeURIComponent(params[name] ?? '')) + (query ? `?${query}` : '');
  const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
  const contentType = payload === undefined || Object.keys(headers).some((h) => h.toLowerCase() === 'content-type') ? {} : JSON_TYPE;
  return rawRequest(g.url, r.method, path, { ...contentType, ...headers }, payload);
}

const gateway = () => g.addReadyGateway(g.target.url);
const gatewayToken = async () => bearer(await g.ganymede.tokens.sign({ typ: 'gateway', sub: randomUUID() }));

const live = () => g.live();

async function restarting() {
  const a = await live();
  const r = await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch: 1 } });
  expect(r.status).toBe(200);
  return a;
}

async function ended() {
  const a = await live();
  const r = await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop', epoch: 1 } });
  expect(r.status).toBe(200);
  return a;
}

type Live = Awaited<ReturnType<typeof live>>;
/** A's state as the example pushes it (the 200s are compared with the example's shape, `data` included). */
const pushBody = (a: Live, over: Record<string, unknown> = {}) => ({
  ...ganymedeExamples.dataPush.request.body,
  organization_id: a.organizationId,
  gateway_id: a.gw.gatewayId,
  epoch: 1,
  base_revision: undefined,
  ...over,
});
const pullBody = (a: Live) => ({ organization_id: a.organizationId, gateway_id: a.gw.gatewayId });
/** A live allocation whose organization has one snapshot. */
async function pushed() {
  const a = await live();
  expect((await send('dataPush', { headers: a.orgAuth, body: pushBody(a) })).status).toBe(200);
  return a;
}

/** A valid body padded past the 64 KiB body limit. */
const oversize = (body: Record<string, unknown>) => JSON.stringify({ ...body, pad: 'x'.repeat(70 * 1024) });
const XML = { 'content-type': 'application/xml' };
const GARBAGE = bearer('garbage');

/** Runs `fn` while the database is broken (a table renamed away), so any query of it fails: the 500 path. */
async function withBrokenDatabase<T>(fn: () => Promise<T>, table = 'gateways'): Promise<T> {
  await g.ganymede.db.exec(`ALTER TABLE ${table} RENAME TO ${table}_away`);
  try {
    return await fn();
  } finally {
    await g.ganymede.db.exec(`ALTER TABLE ${table}_away RENAME TO ${table}`);
  }
}

interface Case {
  route: Route;
  status: number;
  /** The error code for error statuses. */
  code?: ErrorCode;
  how: string;
  run: () => Promise<{ status: number | null; body: unknown }>;
}

/** Every route's transport-level statuses: Node's parser answers them before any route is chosen. */
const transportCases = (route: Route): Case[] => {
  const { method, path } = ganymedeContract[route];
  const line = `${method} ${path.replace(':allocation_id', randomUUID())} HTTP/1.1\r\nHost: t\r\n`;
  return [
    {
      route,
      status: 408,
      code: 'request_timeout',
      how: 'its headers trickle in past the headers timeout',
      run: () => rawHttp(g.url, `${line}X-Slow: `, { trickle: { everyMs: 100 }, timeoutMs: 20_000 }),
    },
    {
      route,
      status: 431,
      code: 'headers_too_large',
      how: 'its headers are over the limit',
      run: () => rawHttp(g.url, `${line}X-Pad: ${'p'.repeat(MAX_HEADER_BYTES)}\r\n\r\n`, { timeoutMs: 20_000 }),
    },
  ];
};

const cases: Case[] = [
  // start
  {
    route: 'start',
    status: 201,
    how: 'a ready gateway is free',
    run: async () => {
      await gateway();
      const org = randomUUID();
      return send('start', { headers: await g.userToken(org), body: { organization_id: org } });
    },
  },
  {
    route: 'start',
    status: 200,
    how: 'the organization already has a (restarting) allocation',
    run: async () => {
      const a = await restarting();
      return send('start', { headers: await g.userToken(a.organizationId), body: { organization_id: a.organizationId } });
    },
  },
  {
    route: 'start',
    status: 400,
    code: 'bad_request',
    how: 'organization_id is not a uuid',
    run: async () => send('start', { headers: await g.userToken(randomUUID()), body: { organization_id: 'nope' } }),
  },
  {
    route: 'start',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('start', { headers: GARBAGE, body: { organization_id: randomUUID() } }),
  },
  {
    route: 'start',
    status: 403,
    code: 'forbidden',
    how: 'the user is not in the organization',
    run: async () => send('start', { headers: await g.userToken(randomUUID()), body: { organization_id: randomUUID() } }),
  },
  {
    route: 'start',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('start', { headers: await g.userToken(randomUUID()), body: oversize({ organization_id: randomUUID() }) }),
  },
  {
    route: 'start',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('start', { headers: { ...(await g.userToken(randomUUID())), ...XML }, body: '<a/>' }),
  },
  {
    route: 'start',
    status: 503,
    code: 'no_gateway_available',
    how: 'no gateway in the pool',
    run: async () => {
      const org = randomUUID();
      return send('start', { headers: await g.userToken(org), body: { organization_id: org } });
    },
  },
  {
    route: 'start',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const org = randomUUID();
      const headers = await g.userToken(org);
      return withBrokenDatabase(() => send('start', { headers, body: { organization_id: org } }));
    },
  },

  // config
  {
    route: 'config',
    status: 200,
    how: 'the gateway holds a restarting allocation',
    run: async () => send('config', { headers: (await restarting()).gw.auth, body: {} }),
  },
  {
    route: 'config',
    status: 400,
    code: 'bad_request',
    how: 'unknown field',
    run: async () => send('config', { headers: (await gateway()).auth, body: { allocation_id: randomUUID() } }),
  },
  {
    route: 'config',
    status: 401,
    code: 'unauthorized',
    how: 'no Authorization',
    run: async () => send('config', { headers: {}, body: {} }),
  },
  {
    route: 'config',
    status: 403,
    code: 'forbidden',
    how: 'an admin token',
    run: async () => send('config', { headers: g.admin, body: {} }),
  },
  {
    route: 'config',
    status: 404,
    code: 'no_allocation',
    how: 'the gateway is idle',
    run: async () => send('config', { headers: (await gateway()).auth, body: {} }),
  },
  {
    route: 'config',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('config', { headers: (await gateway()).auth, body: oversize({}) }),
  },
  {
    route: 'config',
    status: 415,
    code: 'unsupported_media_type',
    how: 'no content type',
    run: async () => {
      const r = ganymedeContract.config;
      return rawRequest(g.url, 'POST', r.path, { ...(await gateway()).auth }, '{}');
    },
  },
  {
    route: 'config',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const headers = (await gateway()).auth;
      return withBrokenDatabase(() => send('config', { headers, body: {} }));
    },
  },

  // ready
  {
    route: 'ready',
    status: 200,
    how: 'a new process reclaims its restarting allocation',
    run: async () => {
      const a = await restarting();
      return send('ready', { headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    },
  },
  {
    route: 'ready',
    status: 400,
    code: 'bad_request',
    how: 'allocation_id is not a uuid',
    run: async () => send('ready', { headers: (await gateway()).auth, body: { allocation_id: 'x' } }),
  },
  {
    route: 'ready',
    status: 401,
    code: 'unauthorized',
    how: 'a token signed with another key',
    run: async () => {
      const { Tokens } = await import('../src/auth.js');
      const other = new Tokens(new Uint8Array(32).fill(7));
      return send('ready', { headers: bearer(await other.sign({ typ: 'gateway', sub: randomUUID() })), body: { allocation_id: null } });
    },
  },
  {
    route: 'ready',
    status: 403,
    code: 'forbidden',
    how: "gateway A's token readies B's allocation",
    run: async () => {
      const a = await live();
      const other = await gateway();
      return send('ready', { headers: other.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    },
  },
  {
    route: 'ready',
    status: 404,
    code: 'allocation_not_found',
    how: 'unknown allocation',
    run: async () => send('ready', { headers: (await gateway()).auth, body: { allocation_id: randomUUID() } }),
  },
  {
    route: 'ready',
    status: 409,
    code: 'allocation_ended',
    how: 'the allocation ended',
    run: async () => {
      const a = await ended();
      return send('ready', { headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    },
  },
  {
    route: 'ready',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('ready', { headers: (await gateway()).auth, body: oversize({ allocation_id: null }) }),
  },
  {
    route: 'ready',
    status: 415,
    code: 'unsupported_media_type',
    how: 'form-urlencoded',
    run: async () =>
      send('ready', {
        headers: { ...(await gateway()).auth, 'content-type': 'application/x-www-form-urlencoded' },
        body: 'allocation_id=',
      }),
  },
  {
    route: 'ready',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const headers = (await gateway()).auth;
      return withBrokenDatabase(() => send('ready', { headers, body: { allocation_id: null } }));
    },
  },

  {
    route: 'ready',
    status: 409,
    code: 'allocation_ended',
    how: 'a crash reclaim past the crash-loop limit ends it',
    run: async () => {
      const a = await live();
      // Crash reclaims already in the window: the next one is the limit-th.
      for (let i = 1; i < CRASH_LOOP_LIMIT; i++) {
        const r = await send('ready', { headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
        expect(r.status).toBe(200);
      }
      return send('ready', { headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
    },
  },

  // reclaim
  {
    route: 'reclaim',
    status: 200,
    how: 'a new process reclaims its restarting allocation in one call',
    run: async () => {
      const a = await restarting();
      const res = await send('reclaim', { headers: a.gw.auth, body: { instance_id: randomUUID() } });
      expect(res.body).toMatchObject({ allocation_id: a.id, state: 'active', epoch: 2, restart_deadline: null, reclaimed: true });
      return res;
    },
  },
  {
    route: 'reclaim',
    status: 400,
    code: 'bad_request',
    how: 'no instance_id',
    run: async () => send('reclaim', { headers: (await gateway()).auth, body: {} }),
  },
  {
    route: 'reclaim',
    status: 401,
    code: 'unauthorized',
    how: 'no Authorization',
    run: async () => send('reclaim', { headers: {}, body: { instance_id: randomUUID() } }),
  },
  {
    route: 'reclaim',
    status: 403,
    code: 'forbidden',
    how: 'a gateway token of a gateway never registered',
    run: async () => send('reclaim', { headers: await gatewayToken(), body: { instance_id: randomUUID() } }),
  },
  {
    route: 'reclaim',
    status: 404,
    code: 'no_allocation',
    how: 'the gateway is idle',
    run: async () => send('reclaim', { headers: (await gateway()).auth, body: { instance_id: randomUUID() } }),
  },
  {
    route: 'reclaim',
    status: 409,
    code: 'allocation_ended',
    how: 'a crash reclaim past the crash-loop limit ends it',
    run: async () => {
      const a = await live();
      for (let i = 1; i < CRASH_LOOP_LIMIT; i++) {
        const r = await send('reclaim', { headers: a.gw.auth, body: { instance_id: randomUUID() } });
        expect(r.status).toBe(200);
      }
      return send('reclaim', { headers: a.gw.auth, body: { instance_id: randomUUID() } });
    },
  },
  {
    route: 'reclaim',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('reclaim', { headers: (await gateway()).auth, body: oversize({ instance_id: randomUUID() }) }),
  },
  {
    route: 'reclaim',
    status: 415,
    code: 'unsupported_media_type',
    how: 'text/plain',
    run: async () => send('reclaim', { headers: { ...(await gateway()).auth, 'content-type': 'text/plain' }, body: randomUUID() }),
  },
  {
    route: 'reclaim',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const headers = (await gateway()).auth;
      return withBrokenDatabase(() => send('reclaim', { headers, body: { instance_id: randomUUID() } }));
    },
  },

  // lease
  {
    route: 'lease',
    status: 200,
    how: 'the holding process renews at its epoch',
    run: async () => {
      const a = await live();
      return send('lease', { headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 1 } });
    },
  },
  {
    route: 'lease',
    status: 400,
    code: 'bad_request',
    how: 'instance_id missing',
    run: async () => send('lease', { headers: (await gateway()).auth, body: { allocation_id: null } }),
  },
  {
    route: 'lease',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('lease', { headers: GARBAGE, body: { instance_id: randomUUID(), allocation_id: null } }),
  },
  {
    route: 'lease',
    status: 403,
    code: 'forbidden',
    how: "gateway B renews with A's allocation",
    run: async () => {
      const a = await live();
      const b = await gateway();
      return send('lease', { headers: b.auth, body: { instance_id: b.instanceId, allocation_id: a.id, epoch: 1 } });
    },
  },
  {
    route: 'lease',
    status: 403,
    code: 'forbidden',
    how: 'an unregistered gateway',
    run: async () => send('lease', { headers: await gatewayToken(), body: { instance_id: randomUUID(), allocation_id: null } }),
  },
  {
    route: 'lease',
    status: 409,
    code: 'superseded',
    how: 'another process of the gateway said ready since',
    run: async () => {
      const a = await live();
      await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
      return send('lease', { headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 1 } });
    },
  },
  {
    route: 'lease',
    status: 409,
    code: 'allocation_ended',
    how: 'the allocation ended under the process (lease expired)',
    run: async () => {
      const a = await live();
      await send('lease', { headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 1 } });
      await g.ganymede.db.query(`UPDATE gateways SET lease_expires_at = now() - interval '1 hour' WHERE id = $1`, [a.gw.gatewayId]);
      expect(await g.ganymede.reaper.runOnce()).toBe(1);
      return send('lease', { headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 1 } });
    },
  },
  {
    route: 'lease',
    status: 409,
    code: 'stale_epoch',
    how: 'the process names an epoch the allocation is not at',
    run: async () => {
      const a = await live();
      return send('lease', { headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 2 } });
    },
  },
  {
    route: 'lease',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('lease', { headers: (await gateway()).auth, body: oversize({ instance_id: randomUUID(), allocation_id: null }) }),
  },
  {
    route: 'lease',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('lease', { headers: { ...(await gateway()).auth, ...XML }, body: '<lease/>' }),
  },
  {
    route: 'lease',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const gw = await gateway();
      return withBrokenDatabase(() => send('lease', { headers: gw.auth, body: { instance_id: gw.instanceId, allocation_id: null } }));
    },
  },

  // stop
  {
    route: 'stop',
    status: 200,
    how: 'the holder stops at its epoch',
    run: async () => send('stop', { headers: (await live()).orgAuth, body: { reason: 'stop', epoch: 1 } }),
  },
  {
    route: 'stop',
    status: 400,
    code: 'bad_request',
    how: 'a restart reason',
    run: async () => send('stop', { headers: (await live()).orgAuth, body: { reason: 'reload' } }),
  },
  {
    route: 'stop',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('stop', { headers: GARBAGE, body: { reason: 'stop' } }),
  },
  {
    route: 'stop',
    status: 403,
    code: 'forbidden',
    how: 'the org token names another allocation',
    run: async () => {
      const a = await live();
      const b = await live();
      return send('stop', { headers: a.orgAuth, body: { reason: 'stop', allocation_id: b.id } });
    },
  },
  {
    route: 'stop',
    status: 404,
    code: 'allocation_not_found',
    how: 'an org token for an allocation that does not exist',
    run: async () => send('stop', { headers: await g.orgToken(randomUUID()), body: { reason: 'stop' } }),
  },
  {
    route: 'stop',
    status: 409,
    code: 'stale_epoch',
    how: 'a stale epoch',
    run: async () => {
      const a = await live();
      await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } }); // epoch 2
      return send('stop', { headers: a.orgAuth, body: { reason: 'stop', epoch: 1 } });
    },
  },
  {
    route: 'stop',
    status: 403,
    code: 'allocation_ended',
    how: 'already ended (its token went with it)',
    run: async () => send('stop', { headers: (await ended()).orgAuth, body: { reason: 'stop' } }),
  },
  {
    route: 'stop',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('stop', { headers: (await live()).orgAuth, body: oversize({ reason: 'stop' }) }),
  },
  {
    route: 'stop',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('stop', { headers: { ...(await live()).orgAuth, ...XML }, body: '<stop/>' }),
  },
  {
    route: 'stop',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const headers = (await live()).orgAuth;
      return withBrokenDatabase(() => send('stop', { headers, body: { reason: 'stop' } }));
    },
  },

  // restart
  {
    route: 'restart',
    status: 200,
    how: 'the holder restarts at its epoch',
    run: async () => send('restart', { headers: (await live()).orgAuth, body: { reason: 'reload', epoch: 1, grace_seconds: 30 } }),
  },
  {
    route: 'restart',
    status: 400,
    code: 'bad_request',
    how: 'grace_seconds 0',
    run: async () => send('restart', { headers: (await live()).orgAuth, body: { reason: 'reload', grace_seconds: 0 } }),
  },
  {
    route: 'restart',
    status: 401,
    code: 'unauthorized',
    how: 'no Authorization',
    run: async () => send('restart', { headers: {}, body: { reason: 'reload' } }),
  },
  {
    route: 'restart',
    status: 403,
    code: 'forbidden',
    how: 'a gateway token',
    run: async () => send('restart', { headers: (await live()).gw.auth, body: { reason: 'reload' } }),
  },
  {
    route: 'restart',
    status: 404,
    code: 'allocation_not_found',
    how: 'an org token for an allocation that does not exist',
    run: async () => send('restart', { headers: await g.orgToken(randomUUID()), body: { reason: 'reload' } }),
  },
  {
    route: 'restart',
    status: 403,
    code: 'allocation_ended',
    how: 'already ended (its token went with it)',
    run: async () => send('restart', { headers: (await ended()).orgAuth, body: { reason: 'reload', epoch: 1 } }),
  },
  {
    route: 'restart',
    status: 409,
    code: 'stale_epoch',
    how: 'a stale epoch',
    run: async () => send('restart', { headers: (await live()).orgAuth, body: { reason: 'reload', epoch: 2 } }),
  },
  {
    route: 'restart',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('restart', { headers: (await live()).orgAuth, body: oversize({ reason: 'reload' }) }),
  },
  {
    route: 'restart',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('restart', { headers: { ...(await live()).orgAuth, ...XML }, body: '<restart/>' }),
  },
  {
    route: 'restart',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const headers = (await live()).orgAuth;
      return withBrokenDatabase(() => send('restart', { headers, body: { reason: 'reload' } }));
    },
  },

  // withdrawRestart
  {
    route: 'withdrawRestart',
    status: 200,
    how: 'the process that asked for the restart takes it back at its epoch',
    run: async () => send('withdrawRestart', { headers: (await restarting()).orgAuth, body: { epoch: 1 } }),
  },
  {
    route: 'withdrawRestart',
    status: 400,
    code: 'bad_request',
    how: 'no epoch (a withdrawal is always fenced)',
    run: async () => send('withdrawRestart', { headers: (await restarting()).orgAuth, body: {} }),
  },
  {
    route: 'withdrawRestart',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('withdrawRestart', { headers: GARBAGE, body: { epoch: 1 } }),
  },
  {
    route: 'withdrawRestart',
    status: 403,
    code: 'forbidden',
    how: 'the org token names another allocation',
    run: async () => {
      const a = await restarting();
      const b = await restarting();
      return send('withdrawRestart', { headers: a.orgAuth, body: { epoch: 1, allocation_id: b.id } });
    },
  },
  {
    route: 'withdrawRestart',
    status: 403,
    code: 'allocation_ended',
    how: 'already ended (its token went with it)',
    run: async () => send('withdrawRestart', { headers: (await ended()).orgAuth, body: { epoch: 1 } }),
  },
  {
    route: 'withdrawRestart',
    status: 404,
    code: 'allocation_not_found',
    how: 'an org token for an allocation that does not exist',
    run: async () => send('withdrawRestart', { headers: await g.orgToken(randomUUID()), body: { epoch: 1 } }),
  },
  {
    route: 'withdrawRestart',
    status: 409,
    code: 'stale_epoch',
    how: 'a successor reclaimed the allocation (epoch 2) before the withdrawal',
    run: async () => {
      const a = await restarting();
      await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } }); // epoch 2
      return send('withdrawRestart', { headers: a.orgAuth, body: { epoch: 1 } });
    },
  },
  {
    route: 'withdrawRestart',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('withdrawRestart', { headers: (await restarting()).orgAuth, body: oversize({ epoch: 1 }) }),
  },
  {
    route: 'withdrawRestart',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('withdrawRestart', { headers: { ...(await restarting()).orgAuth, ...XML }, body: '<withdraw/>' }),
  },
  {
    route: 'withdrawRestart',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const headers = (await restarting()).orgAuth;
      return withBrokenDatabase(() => send('withdrawRestart', { headers, body: { epoch: 1 } }));
    },
  },

  // dataPush
  {
    route: 'dataPush',
    status: 200,
    how: 'the holder pushes at its epoch, on the latest revision',
    run: async () => {
      const a = await pushed();
      return send('dataPush', { headers: a.orgAuth, body: pushBody(a, { base_revision: 1 }) });
    },
  },
  {
    route: 'dataPush',
    status: 400,
    code: 'bad_request',
    how: 'no data',
    run: async () => {
      const a = await live();
      return send('dataPush', { headers: a.orgAuth, body: pushBody(a, { data: undefined }) });
    },
  },
  {
    route: 'dataPush',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('dataPush', { headers: GARBAGE, body: pushBody(await live()) }),
  },
  {
    route: 'dataPush',
    status: 403,
    code: 'forbidden',
    how: "the body names another organization than the token's",
    run: async () => {
      const a = await live();
      const b = await live();
      return send('dataPush', { headers: a.orgAuth, body: pushBody(b) });
    },
  },
  {
    route: 'dataPush',
    status: 403,
    code: 'allocation_ended',
    how: "the token's allocation ended",
    run: async () => {
      const a = await ended();
      return send('dataPush', { headers: a.orgAuth, body: pushBody(a) });
    },
  },
  {
    route: 'dataPush',
    status: 404,
    code: 'allocation_not_found',
    how: 'an org token for an allocation that does not exist',
    run: async () => {
      const [allocation, gateway, organization] = [randomUUID(), randomUUID(), randomUUID()];
      const headers = await g.orgToken(allocation, gateway, organization);
      return send('dataPush', { headers, body: { ...pushBody(await live()), organization_id: organization, gateway_id: gateway } });
    },
  },
  {
    route: 'dataPush',
    status: 409,
    code: 'stale_epoch',
    how: 'a successor reclaimed the allocation (epoch 2)',
    run: async () => {
      const a = await restarting();
      await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } }); // epoch 2
      return send('dataPush', { headers: a.orgAuth, body: pushBody(a) });
    },
  },
  {
    route: 'dataPush',
    status: 409,
    code: 'revision_conflict',
    how: 'base_revision is not the latest',
    run: async () => {
      const a = await pushed();
      return send('dataPush', { headers: a.orgAuth, body: pushBody(a, { base_revision: 0 }) });
    },
  },
  {
    route: 'dataPush',
    status: 413,
    code: 'payload_too_large',
    how: 'body over the snapshot limit (16 MiB)',
    run: async () => {
      const a = await live();
      return send('dataPush', { headers: a.orgAuth, body: pushBody(a, { data: 'x'.repeat(16 * 1024 * 1024) }) });
    },
  },
  {
    route: 'dataPush',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('dataPush', { headers: { ...(await live()).orgAuth, ...XML }, body: '<push/>' }),
  },
  {
    route: 'dataPush',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const a = await live();
      return withBrokenDatabase(() => send('dataPush', { headers: a.orgAuth, body: pushBody(a) }), 'snapshots');
    },
  },

  // dataPull
  {
    route: 'dataPull',
    status: 200,
    how: 'the organization has a snapshot',
    run: async () => {
      const a = await pushed();
      return send('dataPull', { headers: a.orgAuth, body: pullBody(a) });
    },
  },
  {
    route: 'dataPull',
    status: 400,
    code: 'bad_request',
    how: 'organization_id is not a uuid',
    run: async () => send('dataPull', { headers: (await live()).orgAuth, body: { organization_id: 'acme' } }),
  },
  {
    route: 'dataPull',
    status: 401,
    code: 'unauthorized',
    how: 'no Authorization',
    run: async () => send('dataPull', { headers: {}, body: pullBody(await live()) }),
  },
  {
    route: 'dataPull',
    status: 403,
    code: 'forbidden',
    how: "the body names another organization than the token's",
    run: async () => {
      const a = await live();
      const b = await pushed();
      return send('dataPull', { headers: a.orgAuth, body: pullBody(b) });
    },
  },
  {
    route: 'dataPull',
    status: 403,
    code: 'allocation_ended',
    how: "the token's allocation ended",
    run: async () => {
      const a = await pushed();
      await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop', epoch: 1 } });
      return send('dataPull', { headers: a.orgAuth, body: pullBody(a) });
    },
  },
  {
    route: 'dataPull',
    status: 404,
    code: 'not_found',
    how: 'nothing was ever pushed for the organization',
    run: async () => {
      const a = await live();
      return send('dataPull', { headers: a.orgAuth, body: pullBody(a) });
    },
  },
  {
    route: 'dataPull',
    status: 404,
    code: 'allocation_not_found',
    how: 'an org token for an allocation that does not exist',
    run: async () => {
      const organization = randomUUID();
      return send('dataPull', {
        headers: await g.orgToken(randomUUID(), randomUUID(), organization),
        body: { organization_id: organization },
      });
    },
  },
  {
    route: 'dataPull',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB (only a push takes more)',
    run: async () => {
      const a = await live();
      return send('dataPull', { headers: a.orgAuth, body: oversize(pullBody(a)) });
    },
  },
  {
    route: 'dataPull',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('dataPull', { headers: { ...(await live()).orgAuth, ...XML }, body: '<pull/>' }),
  },
  {
    route: 'dataPull',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => {
      const a = await pushed();
      return withBrokenDatabase(() => send('dataPull', { headers: a.orgAuth, body: pullBody(a) }));
    },
  },

  // addGateway
  {
    route: 'addGateway',
    status: 201,
    how: 'an admin registers a URL',
    run: async () => send('addGateway', { headers: g.admin, body: { url: 'http://127.0.0.1:4101' } }),
  },
  {
    route: 'addGateway',
    status: 400,
    code: 'bad_request',
    how: 'not an http(s) URL',
    run: async () => send('addGateway', { headers: g.admin, body: { url: 'ftp://127.0.0.1/' } }),
  },
  {
    route: 'addGateway',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('addGateway', { headers: GARBAGE, body: { url: 'http://127.0.0.1:4101' } }),
  },
  {
    route: 'addGateway',
    status: 403,
    code: 'forbidden',
    how: 'a gateway token',
    run: async () => send('addGateway', { headers: await gatewayToken(), body: { url: 'http://127.0.0.1:4101' } }),
  },
  {
    route: 'addGateway',
    status: 413,
    code: 'payload_too_large',
    how: 'body over 64 KiB',
    run: async () => send('addGateway', { headers: g.admin, body: oversize({ url: 'http://127.0.0.1:4101' }) }),
  },
  {
    route: 'addGateway',
    status: 415,
    code: 'unsupported_media_type',
    how: 'application/xml',
    run: async () => send('addGateway', { headers: { ...g.admin, ...XML }, body: '<url/>' }),
  },
  {
    route: 'addGateway',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => withBrokenDatabase(() => send('addGateway', { headers: g.admin, body: { url: 'http://127.0.0.1:4101' } })),
  },

  // status
  {
    route: 'status',
    status: 200,
    how: 'a pool with an idle and a live gateway',
    run: async () => {
      await live();
      await gateway();
      return send('status', { headers: g.admin });
    },
  },
  {
    route: 'status',
    status: 401,
    code: 'unauthorized',
    how: 'Basic instead of Bearer',
    run: async () => send('status', { headers: { authorization: 'Basic YTpi' } }),
  },
  {
    route: 'status',
    status: 403,
    code: 'forbidden',
    how: 'a user token',
    run: async () => send('status', { headers: await g.userToken(randomUUID()) }),
  },
  {
    route: 'status',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => withBrokenDatabase(() => send('status', { headers: g.admin })),
  },

  // allocation
  {
    route: 'allocation',
    status: 200,
    how: 'an allocation with a history',
    run: async () => {
      const a = await restarting();
      await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } });
      await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop', epoch: 2 } });
      return send('allocation', { headers: g.admin, params: { allocation_id: a.id } });
    },
  },
  {
    route: 'allocation',
    status: 400,
    code: 'bad_request',
    how: 'the path is not a uuid',
    run: async () => send('allocation', { headers: g.admin, params: { allocation_id: 'not-a-uuid' } }),
  },
  {
    route: 'allocation',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('allocation', { headers: GARBAGE, params: { allocation_id: randomUUID() } }),
  },
  {
    route: 'allocation',
    status: 403,
    code: 'forbidden',
    how: 'an organization token',
    run: async () => send('allocation', { headers: await g.orgToken(randomUUID()), params: { allocation_id: randomUUID() } }),
  },
  {
    route: 'allocation',
    status: 404,
    code: 'allocation_not_found',
    how: 'unknown allocation',
    run: async () => send('allocation', { headers: g.admin, params: { allocation_id: randomUUID() } }),
  },
  {
    route: 'allocation',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => withBrokenDatabase(() => send('allocation', { headers: g.admin, params: { allocation_id: randomUUID() } })),
  },

  // events
  {
    route: 'events',
    status: 200,
    how: 'a restart happened since the cursor',
    run: async () => {
      const a = await restarting();
      const { events } = (await g.client.allocation({ headers: g.admin, params: { allocation_id: a.id } })).body as { events: unknown[] };
      expect(events).toHaveLength(2);
      return send('events', { headers: g.admin, query: 'after=0&limit=500' });
    },
  },
  {
    route: 'events',
    status: 400,
    code: 'bad_request',
    how: 'the cursor is negative',
    run: async () => send('events', { headers: g.admin, query: 'after=-1' }),
  },
  {
    route: 'events',
    status: 401,
    code: 'unauthorized',
    how: 'garbage token',
    run: async () => send('events', { headers: GARBAGE }),
  },
  {
    route: 'events',
    status: 403,
    code: 'forbidden',
    how: 'a gateway token',
    run: async () => send('events', { headers: await gatewayToken() }),
  },
  {
    route: 'events',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: async () => withBrokenDatabase(() => send('events', { headers: g.admin }), 'allocation_events'),
  },
  // healthz, readyz, metrics, openapi
  { route: 'healthz', status: 200, how: 'the process answers', run: () => send('healthz', { headers: {} }) },
  { route: 'readyz', status: 200, how: 'the database is migrated', run: () => send('readyz', { headers: {} }) },
  {
    route: 'readyz',
    status: 503,
    code: 'migrations_pending',
    how: 'the schema is behind the code',
    run: () => withSchemaBehind(() => send('readyz', { headers: {} })),
  },
  {
    route: 'metrics',
    status: 200,
    how: 'an admin token',
    run: async () => {
      const res = await send('metrics', { headers: g.admin });
      return { status: res.status, body: res.text };
    },
  },
  { route: 'metrics', status: 401, code: 'unauthorized', how: 'no token', run: () => send('metrics', { headers: {} }) },
  {
    route: 'metrics',
    status: 403,
    code: 'forbidden',
    how: 'a user token',
    run: async () => send('metrics', { headers: await g.userToken(randomUUID()) }),
  },
  {
    route: 'metrics',
    status: 500,
    code: 'internal',
    how: 'the database fails',
    run: () => withBrokenDatabase(() => send('metrics', { headers: g.admin })),
  },
  {
    route: 'openapi',
    status: 200,
    how: 'always',
    run: async () => {
      const res = await send('openapi', { headers: {} });
      // The document is the one generated from the contract; its envelope is compared with the example's below.
      expect(res.body).toEqual(JSON.parse(openApiText()));
      const { paths: _paths, components: _components, ...envelope } = res.body as Record<string, unknown>;
      return { status: res.status, body: { ...envelope, paths: {}, components: {} } };
    },
  },

  ...(Object.keys(ganymedeContract) as Route[]).flatMap(transportCases),
];

/** Runs `fn` while the schema's recorded version is one behind the code's (its last row moved away). */
async function withSchemaBehind<T>(fn: () => Promise<T>): Promise<T> {
  const { rows } = await g.ganymede.db.query<{ version: number; name: string }>(
    'DELETE FROM schema_migrations WHERE version = (SELECT max(version) FROM schema_migrations) RETURNING version, name',
  );
  try {
    return await fn();
  } finally {
    await g.ganymede.db.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [rows[0]!.version, rows[0]!.name]);
  }
}

/**
 * Declared statuses no request can make Ganymede answer. The two GET routes take no body: Fastify does not
 * read a GET's body (so no 413, no 415, no malformed JSON), and their only header is `authorization`, which
 * answers 401 when malformed. `allocation` still answers 400, for a path that is not a uuid.
 */
const GET_WITHOUT_INPUT = {
  400: 'a GET with no parameters: nothing to be malformed',
  413: 'GET bodies are not read',
  415: 'GET bodies are not read',
};
const NOT_PRODUCIBLE: Partial<Record<Route, Record<number, string>>> = {
  status: GET_WITHOUT_INPUT,
  allocation: { 413: 'GET bodies are not read', 415: 'GET bodies are not read' },
  events: { 413: 'GET bodies are not read', 415: 'GET bodies are not read' },
  healthz: { ...GET_WITHOUT_INPUT, 500: 'answers without any I/O' },
  readyz: { ...GET_WITHOUT_INPUT, 500: 'a failing database is its 503 database_unavailable' },
  metrics: { ...GET_WITHOUT_INPUT, 400: 'its only header is authorization, which answers 401 when malformed' },
  openapi: { ...GET_WITHOUT_INPUT, 500: 'a document generated from the contract: no I/O' },
};

describe("every route × declared status: the body parses with the contract and has the example's keys", () => {
  it.each(cases)('$route answers $status when $how', async (c) => {
    const res = await c.run();
    expect(res.status, JSON.stringify(res.body)).toBe(c.status);
    const response = (ganymedeContract[c.route].responses as Record<number, AppRouteResponse>)[c.status]!;
    // The metrics' text is a response of another media type: its schema is its `body`.
    const schema = (isAppRouteOtherResponse(response) ? response.body : response) as ZodTypeAny;
    const parsed = schema.safeParse(res.body);
    expect(parsed.success, JSON.stringify(parsed.error)).toBe(true);
    const example = (ganymedeExamples[c.route].responses as Record<number, unknown>)[c.status];
    expect(example, 'an example exists').toBeDefined();
    expect(shapeDifferences(res.body, example)).toEqual([]);
    if (c.code) expect((res.body as { error: string }).error).toBe(c.code);
    if (c.status === 500) expect(res.body).toEqual({ error: 'internal', message: 'internal error' }); // nothing leaks
  });
});

it('the table covers every route and every declared status, but those documented as not producible', () => {
  const missing: string[] = [];
  for (const route of Object.keys(ganymedeContract) as Route[]) {
    for (const status of Object.keys(ganymedeContract[route].responses).map(Number)) {
      const covered = cases.some((c) => c.route === route && c.status === status);
      const excused = NOT_PRODUCIBLE[route]?.[status] !== undefined;
      if (covered === excused) missing.push(`${route} ${status}: ${covered ? 'covered and excused' : 'neither covered nor excused'}`);
    }
  }
  expect(missing).toEqual([]);
  for (const c of cases) expect(Object.keys(ganymedeContract[c.route].responses)).toContain(String(c.status));
});

/** The statuses excused above really are not produced by the requests that would produce them on a POST. */
describe('the GET routes ignore what would make a POST answer 400, 413 or 415', () => {
  it.each(['status', 'allocation', 'healthz', 'readyz', 'metrics', 'openapi'] as const)('%s', async (route) => {
    const { id } = await live();
    const params = { allocation_id: id };
    for (const [headers, body] of [
      [JSON_TYPE, '{not json'],
      [XML, '<a/>'],
      [JSON_TYPE, oversize({})],
    ] as const) {
      const res = await send(route, { headers: { ...g.admin, ...headers }, body, params });
      expect(res.status).toBe(200);
    }
  });
});
