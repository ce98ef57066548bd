/**
 * The typed client for Ganymede: ts-rest's `initClient` over an undici `Pool` (keep-alive), with
 * `throwOnUnknownStatus` and response validation done here (ts-rest leaves it to a custom `api`).
 *
 * Every method takes the bearer token first and answers `{ status, body, headers }` for each status the
 * contract declares (404, 409, 500 are values, not exceptions). It throws on anything else:
 * - `UnknownStatusError` (@ts-rest/core) for an undeclared status (a 502 from a proxy, a 503 on most routes);
 * - `InvalidAnswerError` (a ts-rest `ResponseValidationError`, with the status and raw body) for a declared
 *   status whose body does not match the contract;
 * - `GanymedeTimeoutError` (code GANYMEDE_TIMEOUT) when no answer came within the call's timeout;
 * - undici's own errors for the network, e.g. `code: 'ECONNREFUSED'` when Ganymede is down.
 */
import {
  type ConfigBody,
  type CurrentReadyBody,
  type DataPullBody,
  type DataPushBody,
  type EventsQuery,
  type GanymedeContract,
  ganymedeContract,
  type LeaseBody,
  type ReclaimBody,
  type RestartBody,
  type StartBody,
  type StopBody,
  type WithdrawRestartBody,
  type AddGatewayBody,
} from '@ganymede/contracts';
import {
  type ApiFetcher,
  type AppRoute,
  type ClientInferResponses,
  initClient,
  ResponseValidationError,
  validateResponse,
} from '@ts-rest/core';
import { Pool } from 'undici';
import type { z } from 'zod';
import { GanymedeTimeoutError, GatewayError, InvalidAnswerError } from './errors.js';

export interface GanymedeClientOptions {
  /** e.g. http://127.0.0.1:4000 (a path prefix is kept). */
  baseUrl: string;
  /** Default timeout of each call, whole answer included. Default 5000 ms. */
  timeoutMs?: number;
  /** Keep-alive connections to Ganymede. Default 8. */
  connections?: number;
}

export interface CallOptions {
  /** Overrides the client's default timeout for this call. */
  timeoutMs?: number;
  /** Aborts the call early (e.g. a shutdown deadline); the error is the signal's reason. */
  signal?: AbortSignal;
}

export type GanymedeRoute = keyof GanymedeContract;
/** What a call answers: one member per declared status, each with the contract's body type. */
export type GanymedeAnswer<R extends GanymedeRoute> = ClientInferResponses<GanymedeContract[R]>;

export interface GanymedeClient {
  /** POST /gateway/start (user token). */
  start(token: string, body: z.input<typeof StartBody>, options?: CallOptions): Promise<GanymedeAnswer<'start'>>;
  /** POST /gateway/config (gateway token). */
  config(token: string, options?: CallOptions): Promise<GanymedeAnswer<'config'>>;
  /** POST /gateway/ready (gateway token), always this gateway's own (v2) body. */
  ready(token: string, body: z.input<typeof CurrentReadyBody>, options?: CallOptions): Promise<GanymedeAnswer<'ready'>>;
  /**
   * POST /gateway/reclaim (gateway token): /config and /ready {allocation_id, instance_id} in one call. A Ganymede
   * older than it has no such route (route-missing.ts).
   */
  reclaim(token: string, body: z.input<typeof ReclaimBody>, options?: CallOptions): Promise<GanymedeAnswer<'reclaim'>>;
  /** POST /gateway/lease (gateway token). */
  lease(token: string, body: z.input<typeof LeaseBody>, options?: CallOptions): Promise<GanymedeAnswer<'lease'>>;
  /** POST /gateway/restart (organization token). */
  restart(token: string, body: z.input<typeof RestartBody>, options?: CallOptions): Promise<GanymedeAnswer<'restart'>>;
  /** POST /gateway/restart/withdraw (organization token): takes back this process's restart; the epoch is required. */
  withdrawRestart(
    token: string,
    body: z.input<typeof WithdrawRestartBody>,
    options?: CallOptions,
  ): Promise<GanymedeAnswer<'withdrawRestart'>>;
  /** POST /gateway/stop (organization token). */
  stop(token: string, body: z.input<typeof StopBody>, options?: CallOptions): Promise<GanymedeAnswer<'stop'>>;
  /**
   * POST /gateway/data/push (organization token): stores the organization's state as its next revision. A stale
   * `epoch` (409 stale_epoch), a `base_revision` that is not the latest (409 revision_conflict) and an ended
   * allocation (403 allocation_ended) are answers, not exceptions.
   */
  dataPush(token: string, body: z.input<typeof DataPushBody>, options?: CallOptions): Promise<GanymedeAnswer<'dataPush'>>;
  /** POST /gateway/data/pull (organization token): the organization's latest snapshot; 404 when none was pushed. */
  dataPull(token: string, body: z.input<typeof DataPullBody>, options?: CallOptions): Promise<GanymedeAnswer<'dataPull'>>;
  /** POST /admin/gateways (admin token). */
  addGateway(token: string, body: z.input<typeof AddGatewayBody>, options?: CallOptions): Promise<GanymedeAnswer<'addGateway'>>;
  /** GET /admin/status (admin token). */
  status(token: string, options?: CallOptions): Promise<GanymedeAnswer<'status'>>;
  /** GET /admin/allocations/:allocation_id (admin token). */
  allocation(token: string, allocationId: string, options?: CallOptions): Promise<GanymedeAnswer<'allocation'>>;
  /** GET /admin/events (admin token): the pool's audit events after a cursor. */
  events(token: string, query: z.input<typeof EventsQuery>, options?: CallOptions): Promise<GanymedeAnswer<'events'>>;
  /** Waits for calls in flight, then closes the connections. */
  close(): Promise<void>;
  /** Closes the connections now, failing calls in flight. */
  destroy(): Promise<void>;
}

export const DEFAULT_CALL_TIMEOUT_MS = 5_000;

function validate(route: AppRoute, response: { status: number; body: unknown }): { status: number; body: unknown } {
  // Undeclared statuses are left to ts-rest, which throws UnknownStatusError for them.
  if (!(String(response.status) in route.responses)) return response;
  try {
    return validateResponse({ appRoute: route, response }) as { status: number; body: unknown };
  } catch (error) {
    if (error instanceof ResponseValidationError) throw new InvalidAnswerError(route, error, response);
    throw error;
  }
}

function toHeaders(raw: Record<string, string | string[] | undefined>): Headers {
  const headers = new Headers();
  for (const [name, value] of Object.entries(raw)) {
    if (Array.isArray(value)) for (const v of value) headers.append(name, v);
    else if (value !== undefined) headers.set(name, value);
  }
  return headers;
}

function parseBody(text: string, contentType: string | string[] | undefined, what: string): unknown {
  const type = Array.isArray(contentType) ? contentType.join(',') : (contentType ?? '');
  if (!/\bjson\b/i.test(type)) return text;
  if (text === '') return undefined;
  try {
    return JSON.parse(text);
  } catch (cause) {
    throw new GatewayError('GANYMEDE_INVALID_JSON', `${what}: the answer is not valid JSON`, { cause });
  }
}

export function createGanymedeClient(options: GanymedeClientOptions): GanymedeClient {
  const base = new URL(options.baseUrl);
  const baseUrl = options.baseUrl.replace(/\/+$/, '');
  const defaultTimeoutMs = options.timeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  const pool = new Pool(base.origin, { connections: options.connections ?? 8, keepAliveTimeout: 10_000 });

  const api: ApiFetcher = async ({ route, path, method, headers, body, fetchOptions }) => {
    const url = new URL(path);
    const what = `${method} ${url.pathname}`;
    const answer = await pool.request({
      path: url.pathname + url.search,
      method: method,
      headers,
      body: typeof body === 'string' ? body : undefined,
      signal: fetchOptions?.signal ?? undefined,
    });
    const text = await answer.body.text();
    const response = { status: answer.statusCode, body: parseBody(text, answer.headers['content-type'], what) };
    const checked = validate(route, response);
    return { status: checked.status, body: checked.body, headers: toHeaders(answer.headers) };
  };

  const raw = initClient(ganymedeContract, { baseUrl, api, throwOnUnknownStatus: true, validateResponse: true });

  /** Runs one call under its timeout (and the caller's signal), turning our own timeout into GanymedeTimeoutError. */
  async function call<T>(what: string, callOptions: CallOptions | undefined, run: (signal: AbortSignal) => Promise<T>): Promise<T> {
    const timeoutMs = callOptions?.timeoutMs ?? defaultTimeoutMs;
    const timeout = AbortSignal.timeout(Math.max(1, timeoutMs));
    const signal = callOptions?.signal ? AbortSignal.any([timeout, callOptions.signal]) : timeout;
    try {
      return await run(signal);
    } catch (error) {
      if (timeout.aborted && !callOptions?.signal?.aborted) throw new GanymedeTimeoutError(what, timeoutMs, error);
      throw error;
    }
  }

  const auth = (token: string) => ({ authorization: `Bearer ${token}` });
  const configBody: z.input<typeof ConfigBody> = {};

  return {
    start: (token, body, o) =>
      call('POST /gateway/start', o, (signal) => raw.start({ headers: auth(token), body, fetchOptions: { signal } })),
    config: (token, o) =>
      call('POST /gateway/config', o, (signal) => raw.config({ headers: auth(token), body: configBody, fetchOptions: { signal } })),
    ready: (token, body, o) =>
      call('POST /gateway/ready', o, (signal) => raw.ready({ headers: auth(token), body, fetchOptions: { signal } })),
    reclaim: (token, body, o) =>
      call('POST /gateway/reclaim', o, (signal) => raw.reclaim({ headers: auth(token), body, fetchOptions: { signal } })),
    lease: (token, body, o) =>
      call('POST /gateway/lease', o, (signal) => raw.lease({ headers: auth(token), body, fetchOptions: { signal } })),
    restart: (token, body, o) =>
      call('POST /gateway/restart', o, (signal) => raw.restart({ headers: auth(token), body, fetchOptions: { signal } })),
    withdrawRestart: (token, body, o) =>
      call('POST /gateway/restart/withdraw', o, (signal) => raw.withdrawRestart({ headers: auth(token), body, fetchOptions: { signal } })),
    stop: (token, body, o) => call('POST /gateway/stop', o, (signal) => raw.stop({ headers: auth(token), body, fetchOptions: { signal } })),
    dataPush: (token, body, o) =>
      call('POST /gateway/data/push', o, (signal) => raw.dataPush({ headers: auth(token), body, fetchOptions: { signal } })),
    dataPull: (token, body, o) =>
      call('POST /gateway/data/pull', o, (signal) => raw.dataPull({ headers: auth(token), body, fetchOptions: { signal } })),
    addGateway: (token, body, o) =>
      call('POST /admin/gateways', o, (signal) => raw.addGateway({ headers: auth(token), body, fetchOptions: { signal } })),
    status: (token, o) => call('GET /admin/status', o, (signal) => raw.status({ headers: auth(token), fetchOptions: { signal } })),
    allocation: (token, allocationId, o) =>
      call('GET /admin/allocations/:allocation_id', o, (signal) =>
        raw.allocation({ headers: auth(token), params: { allocation_id: allocationId }, fetchOptions: { signal } }),
      ),
    events: (token, query, o) =>
      call('GET /admin/events', o, (signal) => raw.events({ headers: auth(token), query, fetchOptions: { signal } })),
    close: () => pool.close(),
    destroy: () => pool.destroy(),
  };
}
