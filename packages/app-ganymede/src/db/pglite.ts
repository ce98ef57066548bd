import { PGlite } from '@electric-sql/pglite';
import { existsSync } from 'node:fs';
import type { Database, DataDirOrigin } from './database.js';
import { lockDataDir } from './dir-lock.js';
import { preparedStatements } from './pglite-prepared.js';
import { seedPgdata } from './seed.js';

/**
 * Embedded PostgreSQL in `${dataDir}/pgdata`, owned by this process alone for as long as it is open (see
 * dir-lock.ts). `dataDir` undefined keeps everything in memory. A new directory is copied from the seed (seed.ts).
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  const lock = dataDir === undefined ? undefined : await lockDataDir(dataDir);
  let db: PGlite;
  let origin: DataDirOrigin | undefined;
  try {
    const pgdata = dataDir === undefined ? undefined : `${dataDir}/pgdata`;
    if (pgdata !== undefined) origin = existsSync(pgdata) ? 'reopened' : (await seedPgdata(pgdata)) ? 'seeded' : 'initdb';
    db = await PGlite.create(pgdata);
  } catch (error) {
    await lock?.release();
    throw error;
  }
  return pgliteDatabase(db, origin, () => lock?.release());
}

/** The database door over an open PGlite; `release` runs once it is closed (the data directory's lock). */
export function pgliteDatabase(db: PGlite, origin?: DataDirOrigin, release?: () => Promise<void> | undefined): Database {
  const prepared = preparedStatements(db);
  return {
    kind: 'pglite',
    origin,
    // With parameters: a prepared statement, as on PostgreSQL (pglite-prepared.ts).
    query: (text, params) => (params?.length ? prepared(text, params) : db.query(text)) as never,
    exec: async (text) => void (await db.exec(text)),
    // PGlite has one connection: inside a transaction every query must go through `tx`.
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({ query: (text, params) => tx.query(text, params) as never, exec: async (text) => void (await tx.exec(text)) }),
      ),
    close: async () => {
      try {
        await db.close();
      } finally {
        await release?.();
      }
    },
  };
}
