/**
 * The one door to the database. Both backends (embedded PGlite, PostgreSQL through `pg`) implement it;
 * the rest of the code never knows which it has.
 */
export interface Queryable {
  query<T = Record<string, unknown>>(text: string, params?: unknown[]): Promise<{ rows: T[] }>;
  /** Runs a script of several statements with no parameters (migrations). */
  exec(text: string): Promise<void>;
}

/**
 * How an embedded database in a data directory was opened: `reopened` (it existed), `seeded` (new, copied from the
 * seed `pnpm build` ships: no initdb), `initdb` (new, and no seed was found).
 */
export type DataDirOrigin = 'reopened' | 'seeded' | 'initdb';

export interface Database extends Queryable {
  readonly kind: 'pglite' | 'postgres';
  /** PGlite in a data directory only. */
  readonly origin?: DataDirOrigin;
  /** Runs `fn` in one transaction: committed when it resolves, rolled back when it throws. */
  transaction<T>(fn: (tx: Queryable) => Promise<T>): Promise<T>;
  close(): Promise<void>;
}
