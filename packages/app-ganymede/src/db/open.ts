import type { Database } from './database.js';

/** Connections in a PostgreSQL pool unless configured. */
export const DEFAULT_POOL_SIZE = 10;

export interface StorageOptions {
  /** `postgres://…`: PostgreSQL proper. Otherwise the embedded database. */
  databaseUrl?: string;
  /** With `databaseUrl`: the schema to work in. */
  schema?: string;
  /** With `databaseUrl`: connections in the pool (default `DEFAULT_POOL_SIZE`). */
  poolSize?: number;
  /** Embedded database directory; omitted or `:memory:` keeps it in memory. */
  dataDir?: string;
}

/**
 * Opens the configured database. Each backend's driver is loaded only when it is used: PGlite alone adds about
 * 40 MB to the process, which a server on PostgreSQL should not carry.
 */
export async function openDatabase(options: StorageOptions): Promise<Database> {
  if (options.databaseUrl) {
    const { openPostgres } = await import('./postgres.js');
    return openPostgres({ url: options.databaseUrl, schema: options.schema, poolSize: options.poolSize ?? DEFAULT_POOL_SIZE });
  }
  const { openPglite } = await import('./pglite.js');
  return openPglite(options.dataDir === ':memory:' ? undefined : options.dataDir);
}
