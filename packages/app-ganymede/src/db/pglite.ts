import { PGlite } from '@electric-sql/pglite';
import type { Database } from './database.js';
import { lockDataDir } from './dir-lock.js';

/**
 * Embedded PostgreSQL in `${dataDir}/pgdata`, owned by this process alone for as long as it is open (see
 * dir-lock.ts). `dataDir` undefined keeps everything in memory.
 */
export async function openPglite(dataDir?: string): Promise<Database> {
  const lock = dataDir === undefined ? undefined : await lockDataDir(dataDir);
  let db: PGlite;
  try {
    db = await PGlite.create(dataDir === undefined ? undefined : `${dataDir}/pgdata`);
  } catch (error) {
    await lock?.release();
    throw error;
  }
  return {
    kind: 'pglite',
    query: (text, params) => db.query(text, params) as never,
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
        await lock?.release();
      }
    },
  };
}
