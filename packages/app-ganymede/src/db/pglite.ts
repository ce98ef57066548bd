import { PGlite } from '@electric-sql/pglite';
import type { Database } from './database.js';

/** Embedded PostgreSQL. `dataDir` undefined keeps everything in memory. */
export async function openPglite(dataDir?: string): Promise<Database> {
  const db = await PGlite.create(dataDir);
  return {
    kind: 'pglite',
    query: (text, params) => db.query(text, params) as never,
    exec: async (text) => void (await db.exec(text)),
    // PGlite has one connection: inside a transaction every query must go through `tx`.
    transaction: (fn) =>
      db.transaction((tx) =>
        fn({ query: (text, params) => tx.query(text, params) as never, exec: async (text) => void (await tx.exec(text)) }),
      ),
    close: () => db.close(),
  };
}
