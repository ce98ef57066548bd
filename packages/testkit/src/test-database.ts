/**
 * Which database the tests run on, read from the environment here and nowhere else: Ganymede's suite, the
 * end-to-end tests and the replica tests all ask this module.
 *
 *   GANYMEDE_TEST_DATABASE  pglite (the default) or postgres
 *   TEST_DATABASE_URL       with postgres; default postgres://postgres@127.0.0.1:5432/test
 */
export type TestDatabaseKind = 'pglite' | 'postgres';

export const DEFAULT_TEST_DATABASE_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** GANYMEDE_TEST_DATABASE: pglite (the default, also when unset or empty) or postgres. Anything else is refused. */
export function testDatabaseKind(env: NodeJS.ProcessEnv = process.env): TestDatabaseKind {
  const value = (env.GANYMEDE_TEST_DATABASE ?? '').trim().toLowerCase();
  if (value === '' || value === 'pglite') return 'pglite';
  if (value === 'postgres' || value === 'postgresql') return 'postgres';
  throw new Error(`GANYMEDE_TEST_DATABASE must be pglite or postgres, not ${JSON.stringify(env.GANYMEDE_TEST_DATABASE)}`);
}

export const testDatabaseUrl = (env: NodeJS.ProcessEnv = process.env) => env.TEST_DATABASE_URL || DEFAULT_TEST_DATABASE_URL;

/** A database URL with its password hidden, for messages. */
export const redactUrl = (url: string) => url.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@');
