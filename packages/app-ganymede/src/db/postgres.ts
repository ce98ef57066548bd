import { createHash } from 'node:crypto';
import pg from 'pg';
import { GanymedeError, PG_ERRORS } from '../errors.js';
import type { Database, Queryable } from './database.js';

export interface PostgresOptions {
  url: string;
  /** Confine every connection to one schema (isolated tests, several deployments in one database). */
  schema?: string;
  poolSize: number;
}

/** PostgreSQL proper through a `pg` pool. */
export async function openPostgres(options: PostgresOptions): Promise<Database> {
  if (options.schema !== undefined && !/^[a-z_][a-z0-9_]{0,62}$/.test(options.schema)) {
    throw new GanymedeError(
      'SCHEMA_NAME_INVALID',
      `invalid schema name ${JSON.stringify(options.schema)}: use lower-case letters, digits and _`,
    );
  }
  const pool = new pg.Pool({
    connectionString: options.url,
    max: options.poolSize,
    options: options.schema ? `-c search_path=${options.schema}` : undefined,
  });
  pool.on('error', () => undefined); // an idle client's connection dropped: the pool replaces it
  // Fail now, with the server's reason, rather than at the first request.
  const probe = await pool.connect().catch(async (cause: unknown) => {
    await pool.end();
    throw new GanymedeError('DATABASE_UNREACHABLE', `cannot reach PostgreSQL at ${redact(options.url)}: ${(cause as Error).message}`, {
      cause,
    });
  });
  try {
    // Two replicas creating it at once: one wins, the other sees a duplicate; both then find it there.
    if (options.schema)
      await probe.query(`CREATE SCHEMA IF NOT EXISTS ${options.schema}`).catch((error: { code?: string }) => {
        if (error.code !== PG_ERRORS.uniqueViolation && error.code !== PG_ERRORS.duplicateSchema) throw error;
      });
  } finally {
    probe.release();
  }
  const wrap = (q: pg.Pool | pg.PoolClient): Queryable => ({
    // With parameters: a named prepared statement, parsed and planned once per connection and then only bound
    // and executed (the state machine's statements are CTEs whose planning costs more than running them).
    query: (text, params) => (params?.length ? q.query({ name: statementName(text), text, values: params }) : q.query(text)) as never,
    exec: async (text) => void (await q.query(text)),
  });
  return {
    kind: 'postgres',
    ...wrap(pool),
    async transaction(fn) {
      const client = await pool.connect();
      try {
        await client.query('BEGIN');
        const result = await fn(wrap(client));
        await client.query('COMMIT');
        return result;
      } catch (error) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw error;
      } finally {
        client.release();
      }
    },
    close: () => pool.end(),
  };
}

const statementNames = new Map<string, string>();
/** A prepared statement's name: the same for the same text, on every connection (texts come from a fixed set of call sites). */
function statementName(text: string): string {
  let name = statementNames.get(text);
  if (!name) {
    name = `g_${createHash('sha1').update(text).digest('hex').slice(0, 20)}`;
    statementNames.set(text, name);
  }
  return name;
}

/** The URL without its password, for messages and logs. */
export const redact = (url: string): string => url.replace(/(\/\/[^:/@]+):[^@]*@/, '$1:***@');
