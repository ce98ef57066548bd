/**
 * Ganymede's routes for operating it: liveness (`/healthz`), readiness (`/readyz`), metrics (`/metrics`) and the
 * API's own description (`/openapi.json`; the page that browses it, `/docs`, is registered in ganymede.ts).
 */
import { ganymedeContract as contract } from '@ganymede/contracts';
import { ganymedeOpenApi } from '@ganymede/contracts/openapi';
import type { RouterImplementation } from '@ts-rest/fastify';
import type { FastifyBaseLogger } from 'fastify';
import type { Tokens } from './auth.js';
import { authorizer, fail } from './authorize.js';
import type { Database, Queryable } from './db/database.js';
import { schemaVersion } from './db/migrate.js';
import { PG_ERRORS } from './errors.js';
import type { Metrics } from './metrics.js';

export interface OpsDeps {
  db: Database;
  tokens: Tokens;
  log: FastifyBaseLogger;
  metrics: Metrics;
  /** The schema version this code was built for (its last migration). */
  codeSchemaVersion: number;
  /** `/metrics` without a token (`--metrics-open`); otherwise only an admin token reads it. */
  metricsOpen: boolean;
}

/** A readiness check that waits longer than this answers 503: a probe must not hang on a stuck database. */
export const READY_CHECK_TIMEOUT_MS = 2_000;

let generated: ReturnType<typeof ganymedeOpenApi> | undefined;
/** The OpenAPI document, generated from the contract once per process. */
export const openApiDocument = () => (generated ??= ganymedeOpenApi());

/** The schema's version, 0 when the database has none yet; a rejection when the database does not answer in time. */
async function databaseSchemaVersion(db: Queryable): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${READY_CHECK_TIMEOUT_MS} ms`)), READY_CHECK_TIMEOUT_MS);
  });
  try {
    return await Promise.race([
      schemaVersion(db).catch((error: { code?: string }) => {
        if (error.code === PG_ERRORS.undefinedTable) return 0;
        throw error;
      }),
      timeout,
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/** The contract's routes this module implements; `routes.ts` implements the others. */
export type OpsRoute = 'healthz' | 'readyz' | 'metrics' | 'openapi';

export function opsRoutes(deps: OpsDeps): Pick<RouterImplementation<typeof contract>, OpsRoute> {
  const { db, log, metrics, codeSchemaVersion } = deps;
  const authorize = authorizer(deps.tokens, log);
  return {
    healthz: async () => ({ status: 200, body: { status: 'ok' } }),

    readyz: async () => {
      let version: number;
      try {
        version = await databaseSchemaVersion(db);
      } catch (err) {
        log.warn({ err }, 'not ready: the database does not answer');
        return { status: 503, body: fail('database_unavailable', `the ${db.kind} database does not answer: ${(err as Error).message}`) };
      }
      if (version < codeSchemaVersion) {
        const message = `the database schema is at version ${version}; this code needs ${codeSchemaVersion}: run the migrations`;
        return { status: 503, body: fail('migrations_pending', message) };
      }
      if (version > codeSchemaVersion) {
        const message = `the database schema is at version ${version}, newer than this code's ${codeSchemaVersion}: upgrade Ganymede`;
        return { status: 503, body: fail('schema_too_new', message) };
      }
      return { status: 200, body: { status: 'ready', database: db.kind, schema_version: version } };
    },

    metrics: async ({ headers }) => {
      if (!deps.metricsOpen) {
        if (!headers.authorization)
          return { status: 401, body: fail('unauthorized', 'missing bearer token: /metrics needs an admin token') };
        await authorize(contract.metrics, headers.authorization, 'admin');
      }
      return { status: 200, body: await metrics.scrape(db) };
    },

    openapi: async () => {
      return { status: 200, body: openApiDocument() };
    },
  };
}
