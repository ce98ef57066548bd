/**
 * Test support: a real Ganymede on the suite's database (in-memory PGlite, or a fresh PostgreSQL schema: see
 * database.ts), a real HTTP client, and gateways that answer notices.
 */
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import { ERROR_CODES, ganymedeContract } from '@ganymede/contracts';
import { noticeTarget } from '@ganymede/testkit/notice-target';
import { initClient } from '@ts-rest/core';
import { request } from 'undici';
import type { Database } from '../src/db/database.js';
import { createGanymede, type GanymedeOptions } from '../src/ganymede.js';
import { openMigratedTestDatabase, testStorage } from './database.js';
import { LOG_REDACT } from '@ganymede/http-server';
import pino from 'pino';
import { afterAll, beforeAll, beforeEach } from 'vitest';

export type Client = ReturnType<typeof makeClient>;
const makeClient = (baseUrl: string) => initClient(ganymedeContract, { baseUrl, throwOnUnknownStatus: true });
export const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

export interface TestGanymedeOptions extends GanymedeOptions {
  /** No reaper timer: the tests run passes by hand, so no timer expires what a test is still setting up. */
  manualReaper?: boolean;
}

export type TestGanymede = Awaited<ReturnType<typeof startTestGanymede>>;

/**
 * A real Ganymede on the suite's database, with an admin token, a typed client, a notice target standing in for
 * its gateways (`target`), and helpers that drive it over HTTP.
 */
export async function startTestGanymede({ manualReaper = false, ...options }: TestGanymedeOptions = {}) {
  const ganymede = await createGanymede({ logger: false, reaperIntervalMs: 60_000, ...options, ...testStorage(options.dataDir) });
  if (manualReaper) await ganymede.reaper.stop();
  const url = await ganymede.listen(0);
  const target = await noticeTarget();
  const client = makeClient(url);
  const admin = bearer(await ganymede.tokens.sign({ typ: 'admin', sub: 'test' }));

  /** Everything in the database, for before/after comparisons. */
  const snapshot = () => snapshotOf(ganymede.db);

  async function userToken(...organizations: string[]) {
    return bearer(await ganymede.tokens.sign({ typ: 'user', sub: 'user-1', organizations }));
  }

  /** Registers a gateway at `gatewayUrl` and says it is ready (idle). */
  async function addReadyGateway(gatewayUrl: string) {
    const added = await client.addGateway({ headers: admin, body: { url: gatewayUrl } });
    if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
    const auth = bearer(added.body.token);
    const instanceId = randomUUID();
    const ready = await client.ready({ headers: auth, body: { allocation_id: null, instance_id: instanceId } });
    if (ready.status !== 200) throw new Error(`ready answered ${ready.status}`);
    return { gatewayId: added.body.gateway_id, auth, token: added.body.token, instanceId };
  }

  /** An organization token as /gateway/config would mint it, for any allocation id (even one that does not exist). */
  async function orgToken(allocationId: string, gatewayId: string = randomUUID(), organizationId: string = randomUUID()) {
    return bearer(
      await ganymede.tokens.sign({ typ: 'organization', sub: allocationId, gateway_id: gatewayId, organization_id: organizationId }),
    );
  }

  /** Empties every table: for files whose tests need a pool of their own. */
  const truncate = () => truncateAll(ganymede.db);

  /** As before a file's first test: every table empty, and "a reaper just ran, nothing held back". */
  async function reset() {
    await truncate();
    await resetControlPlane(ganymede.db);
  }

  /** Start → config → the organization token, for tests of /stop and /restart. */
  async function allocateTo(organizationId: string, gatewayAuth: ReturnType<typeof bearer>) {
    const started = await client.start({ headers: await userToken(organizationId), body: { organization_id: organizationId } });
    if (started.status !== 201) throw new Error(`start answered ${started.status} ${JSON.stringify(started.body)}`);
    const config = await client.config({ headers: gatewayAuth, body: {} });
    if (config.status !== 200) throw new Error(`config answered ${config.status}`);
    const instanceId = randomUUID();
    const claimed = await client.ready({
      headers: gatewayAuth,
      body: { allocation_id: started.body.allocation_id, instance_id: instanceId },
    });
    if (claimed.status !== 200) throw new Error(`ready answered ${claimed.status}`);
    return { allocation: started.body, orgAuth: bearer(config.body.organization_token), instanceId };
  }

  /** A fresh organization, allocated and claimed on `gw` (default: a fresh ready gateway at the notice target). */
  async function live(gw?: Awaited<ReturnType<typeof addReadyGateway>>) {
    gw ??= await addReadyGateway(target.url);
    const organizationId = randomUUID();
    const { allocation, orgAuth, instanceId } = await allocateTo(organizationId, gw.auth);
    return { gw, organizationId, allocation, orgAuth, instanceId, id: allocation.allocation_id };
  }

  return {
    ganymede,
    url,
    client,
    admin,
    snapshot,
    userToken,
    orgToken,
    addReadyGateway,
    allocateTo,
    live,
    target,
    truncate,
    reset,
    close: async () => {
      await ganymede.close();
      await target.close();
    },
  };
}

/**
 * A test file's Ganymede (as `startTestGanymede`): started before the file's tests, closed after them, and `reset`
 * before each. The handle is filled in when the file's tests start.
 */
export function useGanymede(options: TestGanymedeOptions = {}): TestGanymede {
  const g = {} as TestGanymede;
  beforeAll(async () => void Object.assign(g, await startTestGanymede(options)));
  afterAll(async () => g.close?.());
  beforeEach(async () => g.reset());
  return g;
}

/** A URL on which nothing listens. */
export async function closedUrl() {
  const target = await noticeTarget();
  await target.close();
  return target.url;
}

/** Every row of every table, in a stable order. */
export async function snapshotOf(db: Database) {
  const tables = { gateways: '1', allocations: '1', allocation_events: '1', organization_state: '1', snapshots: '1, 2' };
  const out: Record<string, unknown[]> = {};
  for (const [t, order] of Object.entries(tables)) out[t] = (await db.query(`SELECT * FROM ${t} ORDER BY ${order}`)).rows;
  return out;
}

export const truncateAll = (db: Database) => db.exec('TRUNCATE snapshots, organization_state, allocation_events, allocations, gateways');

/** A fresh database of the suite's kind with the schema applied. */
export const openMigratedDatabase = (): Promise<Database> => openMigratedTestDatabase();

/** One raw HTTP exchange: what the tests of bad input send, byte for byte. */
export async function rawRequest(
  baseUrl: string,
  method: 'GET' | 'POST',
  path: string,
  headers: Record<string, string>,
  body?: string | Buffer | AsyncIterable<Buffer>,
): Promise<{ status: number; body: unknown; text: string }> {
  const payload = body === undefined || typeof body === 'string' || Buffer.isBuffer(body) ? body : Readable.from(body);
  const res = await request(new URL(path, baseUrl), { method, headers, body: payload });
  const text = await res.body.text();
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    parsed = undefined;
  }
  return { status: res.statusCode, body: parsed, text };
}

/** Why `body` is not exactly the contract's error body `{ error, message }` with a known code, or null if it is. */
export function errorBodyProblem(body: unknown): string | null {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) return `not an object: ${JSON.stringify(body)}`;
  const keys = Object.keys(body).sort();
  if (keys.join() !== 'error,message') return `keys ${keys.join()}`;
  const { error, message } = body as { error: unknown; message: unknown };
  if (!(ERROR_CODES as readonly unknown[]).includes(error)) return `unknown error code ${JSON.stringify(error)}`;
  if (typeof message !== 'string' || !message) return 'message is not a non-empty string';
  return null;
}

/**
 * Paths at which `actual` and `example` differ in shape: objects must have the same keys; arrays compare
 * their first elements; a null on either side matches anything (nullable fields).
 */
export function shapeDifferences(actual: unknown, example: unknown, path = '$'): string[] {
  if (actual === null || example === null || actual === undefined || example === undefined) return [];
  if (Array.isArray(example)) {
    if (!Array.isArray(actual)) return [`${path}: expected an array`];
    return actual.length && example.length ? shapeDifferences(actual[0], example[0], `${path}[0]`) : [];
  }
  if (typeof example === 'object') {
    if (typeof actual !== 'object' || Array.isArray(actual)) return [`${path}: expected an object`];
    const a = Object.keys(actual).sort();
    const e = Object.keys(example).sort();
    if (a.join() !== e.join()) return [`${path}: keys ${a.join()} != ${e.join()}`];
    return e.flatMap((k) =>
      shapeDifferences((actual as Record<string, unknown>)[k], (example as Record<string, unknown>)[k], `${path}.${k}`),
    );
  }
  return typeof actual === typeof example ? [] : [`${path}: ${typeof actual} != ${typeof example}`];
}

/** A gateway that takes the connection and never answers (Ganymede's notice times out). */
export async function hangingUrl() {
  return rawHttpTarget(() => undefined);
}

/** A gateway that answers every request with `status` and `body`. */
export async function answeringUrl(status: number, body: unknown = { error: 'not_ready', message: 'fake' }) {
  return rawHttpTarget((res) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  });
}

async function rawHttpTarget(answer: (res: ServerResponse) => void) {
  const server: Server = createHttpServer((req, res) => {
    req.resume();
    answer(res);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/**
 * Records the text of every statement run through `db.query` until `stop()`: to check that a route is one
 * round trip. The routes look `query` up on the database object at each call, so replacing it is enough.
 */
export function recordQueries(db: Database) {
  const texts: string[] = [];
  const original = db.query;
  db.query = ((text: string, params?: unknown[]) => {
    texts.push(text);
    return original.call(db, text, params);
  }) as Database['query'];
  return {
    texts,
    stop: () => {
      db.query = original;
    },
  };
}

/** The control plane's heartbeat row, with its times as seconds from now in the database clock (negative: past). */
export async function controlPlaneOf(db: Database) {
  const { rows } = await db.query<{ last_reaped: number; held_for: number }>(
    `SELECT extract(epoch FROM last_reaped_at - now())::float8 AS last_reaped,
            extract(epoch FROM expiry_held_until - now())::float8 AS held_for
     FROM control_plane`,
  );
  return rows[0]!;
}

/** "A reaper just ran and nothing is held back": for files whose tests move the heartbeat (truncate leaves it). */
export const resetControlPlane = (db: Database) => db.query('UPDATE control_plane SET last_reaped_at = now(), expiry_held_until = now()');

/**
 * A pino logger configured like Ganymede's own (LOG_REDACT), at `trace` so every line is there, writing
 * each line into `lines`: to check what reaches the logs.
 */
export function bufferLogger() {
  const lines: string[] = [];
  const logger = pino({ level: 'trace', redact: LOG_REDACT }, { write: (line: string) => void lines.push(line) });
  return { logger, lines };
}

/**
 * Log lines that give a secret away: a Bearer header, anything shaped like a JWT, one of `tokens` (or its
 * signature), or the signing key (`signingKeyHex`) in any of its encodings. Each entry names what leaked.
 */
export function secretLeaks(lines: string[], tokens: Iterable<string>, signingKeyHex: string): string[] {
  const key = Buffer.from(signingKeyHex, 'hex');
  const keyForms = [signingKeyHex, key.toString('base64'), key.toString('base64url')];
  const leaks: string[] = [];
  for (const line of lines) {
    if (/bearer/i.test(line)) leaks.push(`Bearer: ${line.slice(0, 300)}`);
    if (/eyJ[\w-]{8,}\.[\w-]{8,}/.test(line)) leaks.push(`a JWT: ${line.slice(0, 300)}`);
    for (const token of tokens) {
      const signature = token.split('.')[2] ?? '';
      if (line.includes(token) || (signature.length >= 16 && line.includes(signature))) leaks.push(`a token: ${line.slice(0, 300)}`);
    }
    for (const form of keyForms) if (line.includes(form)) leaks.push(`the signing key: ${line.slice(0, 300)}`);
  }
  return leaks;
}
