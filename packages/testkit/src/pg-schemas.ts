/**
 * PostgreSQL schemas for test runs, with no test-runner code in it: used by Ganymede's suite
 * (packages/app-ganymede/test/database.ts), the global setup, the Ganymede processes of the end-to-end tests
 * (each works in a schema of the run), the replica tests and the benchmark.
 *
 * A schema is named `gtest_<run>_<…>`; the run id starts with the run's start time, so that a later run can
 * sweep what a killed one left.
 */
import { createHash, randomBytes } from 'node:crypto';
import pg from 'pg';

/** A run id that ages: base-36 seconds since the epoch, then four hex digits. */
export function newRunId(): string {
  return `${Math.floor(Date.now() / 1000).toString(36)}${randomBytes(2).toString('hex')}`;
}

/** The run this process belongs to: set by the global setup (inherited by workers and the processes they spawn). */
let fallbackRun: string | undefined;
export function currentRun(env: NodeJS.ProcessEnv = process.env): string {
  return env.GANYMEDE_TEST_RUN || (fallbackRun ??= newRunId());
}

export const schemaPrefix = (run: string = currentRun()) => `gtest_${run}_`;

/** When the run that made `schema` started (seconds since the epoch), or NaN for a name of another form. */
export function schemaRunStart(schema: string): number {
  const match = /^gtest_([0-9a-z]+)_/.exec(schema);
  return match ? Number.parseInt(match[1]!.slice(0, -4), 36) : Number.NaN;
}

/** A short, stable tag for a path: a Ganymede data directory maps to the same schema on every start. */
export const pathTag = (path: string) => createHash('sha256').update(path).digest('hex').slice(0, 12);

async function withClient<T>(url: string, fn: (client: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: 5_000 });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

/** Names of the schemas matching a LIKE pattern. */
export const schemasLike = (url: string, pattern: string) =>
  withClient(url, async (c) =>
    (await c.query<{ name: string }>('SELECT nspname AS name FROM pg_namespace WHERE nspname LIKE $1 ORDER BY 1', [pattern])).rows.map(
      (r) => r.name,
    ),
  );

/** Drops each schema with everything in it. */
export async function dropSchemas(url: string, schemas: Iterable<string>): Promise<void> {
  const names = [...schemas];
  if (!names.length) return;
  await withClient(url, async (c) => {
    for (const name of names) await c.query(`DROP SCHEMA IF EXISTS ${pg.escapeIdentifier(name)} CASCADE`);
  });
}
