/**
 * Migrations: several installers at once (replicas starting together) apply each migration exactly once;
 * a second run applies nothing; a schema newer than the code is refused. On PostgreSQL the installers are
 * separate pools racing to create the schema and to take the advisory lock; on PGlite (one connection) they
 * are concurrent calls on one database.
 */
import { readdir } from 'node:fs/promises';
import { afterEach, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { migrate } from '../src/db/migrate.js';
import { SchemaTooNewError } from '../src/errors.js';
import { openDatabase } from '../src/db/open.js';
import { onPostgres, testStorage } from './database.js';

const INSTALLERS = 3;

let open: Database[] = [];
afterEach(async () => {
  await Promise.all(open.splice(0).map((db) => db.close()));
});

const migrationFiles = async () =>
  (await readdir(new URL('../migrations/', import.meta.url))).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();

/** `count` handles on one fresh database: pools on one new schema (PostgreSQL), or the same PGlite. */
async function installers(count: number): Promise<Database[]> {
  const storage = testStorage();
  if (onPostgres) open = await Promise.all(Array.from({ length: count }, () => openDatabase(storage)));
  else open = [await openDatabase(storage)];
  return Array.from({ length: count }, (_, i) => open[i % open.length]!);
}

it(`${INSTALLERS} installers at once apply each migration exactly once`, async () => {
  const files = await migrationFiles();
  const dbs = await installers(INSTALLERS);
  const results = await Promise.all(dbs.map((db) => migrate(db)));
  expect(results.flatMap((r) => r.applied).sort()).toEqual(files);
  expect(new Set(results.map((r) => r.version))).toEqual(new Set([Number.parseInt(files.at(-1)!, 10)]));
  const { rows } = await dbs[0]!.query<{ version: number; name: string }>('SELECT version, name FROM schema_migrations ORDER BY version');
  expect(rows).toEqual(files.map((name) => ({ version: Number.parseInt(name, 10), name })));
});

it('a second run applies nothing', async () => {
  const [db] = await installers(1);
  await migrate(db!);
  expect(await migrate(db!)).toMatchObject({ applied: [] });
});

it('refuses a database whose schema is newer than the code, and changes nothing', async () => {
  const [db] = await installers(1);
  const { version } = await migrate(db!);
  await db!.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [version + 1, 'from_the_future.sql']);
  const error = await migrate(db!).catch((e: unknown) => e);
  expect(error).toBeInstanceOf(SchemaTooNewError);
  expect(error).toMatchObject({ databaseVersion: version + 1, codeVersion: version });
  const { rows } = await db!.query<{ n: number }>('SELECT count(*)::int AS n FROM schema_migrations');
  expect(rows[0]!.n).toBe((await migrationFiles()).length + 1);
});
