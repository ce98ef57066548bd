import { readdir, readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { SchemaTooNewError } from '../errors.js';
import type { Database, Queryable } from './database.js';

const MIGRATIONS_DIR = fileURLToPath(new URL('../../migrations/', import.meta.url));
/** Any constant works: it only has to be the same in every replica. */
const MIGRATION_LOCK = 7_400_100;

interface Migration {
  version: number;
  name: string;
  sql: string;
}

/** Every migration file, in order. */
export async function loadMigrations(): Promise<Migration[]> {
  const files = (await readdir(MIGRATIONS_DIR)).filter((f) => /^\d+_.+\.sql$/.test(f)).sort();
  return Promise.all(
    files.map(async (name) => ({
      version: Number.parseInt(name, 10),
      name,
      sql: await readFile(MIGRATIONS_DIR + name, 'utf8'),
    })),
  );
}

/**
 * Applies the numbered `.sql` files not yet applied, each in its own transaction. A transaction-scoped
 * advisory lock makes concurrent installers (several replicas starting at once) take turns.
 */
export async function migrate(db: Database): Promise<{ applied: string[]; version: number }> {
  const migrations = await loadMigrations();
  const codeVersion = migrations.at(-1)?.version ?? 0;
  const applied: string[] = [];
  for (const migration of migrations) {
    const done = await db.transaction(async (tx) => {
      await tx.query('SELECT pg_advisory_xact_lock($1)', [MIGRATION_LOCK]);
      await tx.query(`CREATE TABLE IF NOT EXISTS schema_migrations (
        version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`);
      const current = await schemaVersion(tx);
      if (current > codeVersion) throw new SchemaTooNewError(current, codeVersion);
      if (current >= migration.version) return false;
      await tx.exec(migration.sql);
      await tx.query('INSERT INTO schema_migrations (version, name) VALUES ($1, $2)', [migration.version, migration.name]);
      return true;
    });
    if (done) applied.push(migration.name);
  }
  return { applied, version: codeVersion };
}

/** The version the database's schema was migrated to (0: none). Throws when the database does not answer. */
export async function schemaVersion(db: Queryable): Promise<number> {
  const { rows } = await db.query<{ max: number | null }>('SELECT max(version)::int AS max FROM schema_migrations');
  return rows[0]?.max ?? 0;
}
