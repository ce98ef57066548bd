/**
 * The database the Ganymede suite runs on, chosen by the environment (read by the test kit's `test-database`):
 *
 *   GANYMEDE_TEST_DATABASE  pglite (the default): an in-memory PGlite for each database a test opens;
 *                           postgres: PostgreSQL proper, through the same `pg` pool as production.
 *   TEST_DATABASE_URL       with postgres; default postgres://postgres@127.0.0.1:5432/test
 *
 * On PostgreSQL each database a test file opens is a fresh schema of its own, dropped after the file (and swept
 * by the global setup's teardown if the file died). An unreachable server fails: it never turns into a skip.
 */
import { afterAll } from 'vitest';
import type { Database } from '../src/db/database.js';
import { migrate } from '../src/db/migrate.js';
import { openDatabase } from '../src/db/open.js';
import type { GanymedeOptions } from '../src/ganymede.js';
import { dropSchemas, schemaPrefix } from '@ganymede/testkit/pg-schemas';
import { testDatabaseKind, testDatabaseUrl } from '@ganymede/testkit/test-database';

export const TEST_DATABASE = testDatabaseKind();
export const onPostgres = TEST_DATABASE === 'postgres';
export const TEST_DATABASE_URL = testDatabaseUrl();

let counter = 0;
/** Schemas this file made, dropped after it. */
const created = new Set<string>();
/** A data directory a test reopens (a server restarted on the same data) maps to the same schema. */
const byDataDir = new Map<string, string>();

function freshSchema(): string {
  const schema = `${schemaPrefix()}${process.pid}_${++counter}`;
  created.add(schema);
  return schema;
}

export type TestStorage = Pick<GanymedeOptions, 'databaseUrl' | 'schema' | 'dataDir' | 'keyDir'>;

/**
 * Where `createGanymede` keeps its data in a test. PGlite: in memory, or in `dataDir` when one is given (a test
 * that restarts the server on the same data). PostgreSQL: a fresh schema, or the one already used for that
 * `dataDir`; the signing key stays in `dataDir` either way.
 */
export function testStorage(dataDir?: string): TestStorage {
  const persistent = dataDir !== undefined && dataDir !== ':memory:' ? dataDir : undefined;
  if (!onPostgres) return { dataDir: persistent ?? ':memory:' };
  let schema = persistent === undefined ? undefined : byDataDir.get(persistent);
  if (!schema) {
    schema = freshSchema();
    if (persistent !== undefined) byDataDir.set(persistent, schema);
  }
  return { databaseUrl: TEST_DATABASE_URL, schema, ...(persistent === undefined ? {} : { dataDir: persistent, keyDir: persistent }) };
}

/** A fresh, empty database of the selected kind. */
export function openTestDatabase(): Promise<Database> {
  return openDatabase(testStorage());
}

/** A fresh database with the migrations applied. */
export async function openMigratedTestDatabase(): Promise<Database> {
  const db = await openTestDatabase();
  try {
    await migrate(db);
  } catch (error) {
    await db.close();
    throw error;
  }
  return db;
}

// Registered when a test file first imports this module, so it runs after the file's own `afterAll` hooks
// (vitest runs them last-registered first): the file's servers and pools are closed by then.
afterAll(async () => {
  if (!created.size) return;
  const schemas = [...created];
  created.clear();
  byDataDir.clear();
  await dropSchemas(TEST_DATABASE_URL, schemas);
});
