import type { Histogram } from 'prom-client';
import type { Database, Queryable } from './database.js';

/**
 * The database door with every statement timed into `histogram`, labelled by backend (never by SQL text: the label
 * set stays small). Inside a transaction each statement is timed too.
 */
export function timedDatabase(db: Database, histogram: Histogram<'backend'>): Database {
  const labels = { backend: db.kind };
  const timed = async <T>(run: () => Promise<T>): Promise<T> => {
    const end = histogram.startTimer(labels);
    try {
      return await run();
    } finally {
      end();
    }
  };
  const timedQueryable = (q: Queryable): Queryable => ({
    query: (text, params) => timed(() => q.query(text, params)),
    exec: (text) => timed(() => q.exec(text)),
  });
  return {
    kind: db.kind,
    origin: db.origin,
    ...timedQueryable(db),
    transaction: (fn) => db.transaction((tx) => fn(timedQueryable(tx))),
    close: () => db.close(),
  };
}
