/**
 * Vitest global setup (once per run, in the main process). With GANYMEDE_TEST_DATABASE=postgres it checks that
 * the server answers before any test runs (an unreachable server fails the run: it never turns into skips),
 * names this run (GANYMEDE_TEST_RUN, inherited by the test workers and the processes they spawn), sweeps the
 * schemas of runs that started over six hours ago (killed before their teardown), and drops this run's schemas
 * at the end.
 */
import { currentRun, dropSchemas, newRunId, schemaPrefix, schemaRunStart, schemasLike } from '@ganymede/testkit/pg-schemas';
import { redactUrl, testDatabaseKind, testDatabaseUrl } from '@ganymede/testkit/test-database';

const STALE_AFTER_SECONDS = 6 * 3600;

export default async function setup(): Promise<(() => Promise<void>) | undefined> {
  if (testDatabaseKind() !== 'postgres') return undefined;
  const url = testDatabaseUrl();
  process.env.GANYMEDE_TEST_RUN ||= newRunId();
  process.env.TEST_DATABASE_URL = url;
  const prefix = schemaPrefix(currentRun());

  let existing: string[];
  try {
    existing = await schemasLike(url, 'gtest\\_%');
  } catch (cause) {
    throw new Error(
      `GANYMEDE_TEST_DATABASE=postgres, but PostgreSQL at ${redactUrl(url)} cannot be reached (${(cause as Error).message}). ` +
        'Start it, point TEST_DATABASE_URL at one, or unset GANYMEDE_TEST_DATABASE to run on PGlite.',
      { cause },
    );
  }
  const now = Date.now() / 1000;
  await dropSchemas(
    url,
    existing.filter((name) => now - schemaRunStart(name) > STALE_AFTER_SECONDS),
  );
  console.log(`Ganymede's tests run on PostgreSQL at ${redactUrl(url)}, in schemas ${prefix}*`);

  return async () => {
    await dropSchemas(url, await schemasLike(url, `${prefix.replaceAll('_', '\\_')}%`));
  };
}
