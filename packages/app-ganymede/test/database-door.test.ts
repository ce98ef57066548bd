/**
 * The database door's parameterized queries, which both backends run as named prepared statements (pglite-prepared.ts,
 * postgres.ts): values of each type the state machine sends come back as sent, null included; the same text runs
 * again and again, from concurrent callers; a failure keeps its SQLSTATE and leaves the statement usable; a text that
 * does not parse is not remembered; a transaction still sees its own writes.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { PG_ERRORS } from '../src/errors.js';
import { openTestDatabase } from './database.js';

let db: Database;
beforeAll(async () => {
  db = await openTestDatabase();
  await db.exec('CREATE TABLE door (id uuid PRIMARY KEY, n int NOT NULL, label text, at timestamptz, ok boolean)');
});
afterAll(() => db.close());

const INSERT = 'INSERT INTO door (id, n, label, at, ok) VALUES ($1, $2, $3, $4, $5) RETURNING *';

describe('the database door', () => {
  it('sends each type and reads it back, null included, the same text many times from concurrent callers', async () => {
    const at = new Date('2026-12-02T10:00:00.123Z');
    const rows = await Promise.all(
      Array.from({ length: 40 }, (_, i) =>
        db.query(INSERT, [randomUUID(), i, i % 2 ? null : `label ${i}`, i % 3 ? at : null, i % 2 === 0]).then((r) => r.rows[0]!),
      ),
    );
    expect(rows.map((r) => r.n)).toEqual(Array.from({ length: 40 }, (_, i) => i));
    expect(rows[0]).toMatchObject({ label: 'label 0', at: null, ok: true });
    expect(rows[1]).toMatchObject({ label: null, ok: false });
    expect((rows[1]!.at as Date).toISOString()).toBe(at.toISOString());
    const { rows: counted } = await db.query<{ n: number }>('SELECT count(*)::int AS n FROM door WHERE n >= $1', [0]);
    expect(counted[0]!.n).toBe(40);
  });

  it('a failing statement keeps its SQLSTATE and stays usable', async () => {
    const id = randomUUID();
    await db.query(INSERT, [id, 1, null, null, true]);
    await expect(db.query(INSERT, [id, 2, null, null, true])).rejects.toMatchObject({ code: PG_ERRORS.uniqueViolation });
    const again = await db.query(INSERT, [randomUUID(), 3, null, null, true]);
    expect(again.rows[0]!.n).toBe(3);
  });

  it('a text that does not parse fails each time, and the next statement runs', async () => {
    await expect(db.query('SELEC $1::int AS n', [1])).rejects.toMatchObject({ code: '42601' });
    await expect(db.query('SELEC $1::int AS n', [1])).rejects.toMatchObject({ code: '42601' });
    expect((await db.query('SELECT $1::int AS n', [7])).rows).toEqual([{ n: 7 }]);
  });

  it('a transaction sees its own writes, and a rollback leaves nothing', async () => {
    const id = randomUUID();
    await expect(
      db.transaction(async (tx) => {
        await tx.query(INSERT, [id, 5, 'in tx', null, true]);
        expect((await tx.query('SELECT n FROM door WHERE id = $1', [id])).rows).toEqual([{ n: 5 }]);
        throw new Error('roll back');
      }),
    ).rejects.toThrow('roll back');
    expect((await db.query('SELECT n FROM door WHERE id = $1', [id])).rows).toEqual([]);
  });
});
