/**
 * Organization state snapshots (migration 005): each push is the organization's next revision, one statement; a
 * pull reads the latest. Snapshots belong to the organization, not to the allocation that pushed them: they stay
 * after it ends, and the organization's next allocation pulls them.
 */
import type { Queryable } from '../db/database.js';
import { iso } from './time.js';

export interface PushSnapshotInput {
  /** The organization token's allocation: the push is fenced by its state and epoch. */
  allocationId: string;
  organizationId: string;
  gatewayId: string;
  /** The pushing process's epoch; null (an older gateway): accepted while the allocation is live. */
  epoch: number | null;
  /** Compare-and-set: the revision the state was based on (0: none yet); null: on top of whatever is there. */
  baseRevision: number | null;
  /** The platform's timestamp, kept as given. */
  timestamp: string | number;
  /** The JSON text of the state, stored as is; `size` and `checksum` are of this text. */
  dataJson: string;
  size: number;
  checksum: string;
  /** Revisions kept per organization: older ones are deleted by the push that stores a new one. */
  retention: number;
}

/** A stored snapshot without its content. */
export interface SnapshotMeta {
  organization_id: string;
  revision: number;
  epoch: number | null;
  size: number;
  checksum: string;
  stored_at: string;
}

export type PushResult =
  | { kind: 'ok'; snapshot: SnapshotMeta }
  /** no such allocation; it ended; it is not of that organization or gateway */
  | { kind: 'not_found' | 'ended' | 'forbidden' }
  | { kind: 'stale_epoch'; current: number }
  /** `current`: the latest revision (0: none); null when a concurrent first push created it unseen by this statement. */
  | { kind: 'revision_conflict'; current: number | null };

/**
 * Stores a snapshot as the organization's next revision, in one statement:
 * - `cur` locks the allocation row FOR SHARE, so a reclaim (epoch + 1) or an end is ordered with the push: either
 *   the push commits first (and the successor, which pulls after its reclaim, sees it), or it waits for them and
 *   reads the row they committed (and is refused). Concurrent pushes share that lock and queue on the head row.
 * - `ok`: the allocation is live, of that organization and gateway, at the epoch named (none named: any).
 * - `head` locks the organization's head row, reading its latest revision whatever the statement's snapshot says;
 *   `upd` bumps it (compare-and-set on base_revision, re-checked on the latest row), or `ins` creates it at 1 (base
 *   0 or none). A head created by a concurrent first push after this statement's snapshot is met by ON CONFLICT:
 *   bumped when no base was named, a conflict for base 0.
 * - `snap` inserts the snapshot at the new revision, and `gone` deletes those past the latest `retention`.
 * The last SELECT answers the stored snapshot or which check failed; no row: no such allocation.
 */
export async function pushSnapshot(db: Queryable, input: PushSnapshotInput): Promise<PushResult> {
  const { rows } = await db.query(
    `WITH cur AS (
       SELECT a.id, a.organization_id, a.gateway_id, a.state, a.epoch FROM allocations a WHERE a.id = $1 FOR SHARE
     ), ok AS (
       SELECT cur.id FROM cur
       WHERE cur.organization_id = $2 AND cur.gateway_id = $3 AND cur.state <> 'ended'
         AND ($4::int IS NULL OR cur.epoch = $4::int)
     ), head AS (
       SELECT s.revision FROM organization_state s, ok WHERE s.organization_id = $2 FOR UPDATE OF s
     ), upd AS (
       -- Joined with head so that head is read (and locked) first: once this update ran, the row would be this
       -- statement's own change, which head's FOR UPDATE would skip.
       UPDATE organization_state s SET revision = s.revision + 1, updated_at = now()
       FROM head
       WHERE s.organization_id = $2 AND ($5::bigint IS NULL OR s.revision = $5::bigint)
       RETURNING s.revision
     ), ins AS (
       INSERT INTO organization_state (organization_id, revision)
       SELECT $2, 1 FROM ok WHERE NOT EXISTS (SELECT 1 FROM head) AND coalesce($5::bigint, 0) = 0
       ON CONFLICT (organization_id) DO UPDATE SET revision = organization_state.revision + 1, updated_at = now()
         WHERE $5::bigint IS NULL
       RETURNING revision
     ), new AS (
       SELECT revision FROM upd UNION ALL SELECT revision FROM ins
     ), snap AS (
       INSERT INTO snapshots (organization_id, revision, epoch, allocation_id, gateway_id, data, size, checksum, client_timestamp)
       SELECT $2, new.revision, $4::int, $1, $3, $6, $7, $8, $9::jsonb FROM new
       RETURNING organization_id, revision, epoch, size, checksum, stored_at
     ), gone AS (
       DELETE FROM snapshots d USING new WHERE d.organization_id = $2 AND d.revision <= new.revision - $10::int
     )
     SELECT 'stored' AS outcome, snap.organization_id, snap.revision, snap.epoch, snap.size, snap.checksum, snap.stored_at,
            NULL::int AS current_epoch, NULL::bigint AS current_revision
     FROM snap
     UNION ALL
     SELECT CASE WHEN cur.organization_id <> $2 OR cur.gateway_id <> $3 THEN 'forbidden'
                 WHEN cur.state = 'ended' THEN 'ended'
                 WHEN $4::int IS NOT NULL AND cur.epoch <> $4::int THEN 'stale_epoch'
                 ELSE 'revision_conflict' END,
            NULL, NULL, NULL, NULL, NULL, NULL, cur.epoch,
            -- No head in this statement's snapshot: none at all (0), or, for a base of 0, one a concurrent first
            -- push just created (its revision is not visible here: null).
            coalesce((SELECT revision FROM head), CASE WHEN $5::bigint = 0 THEN NULL ELSE 0 END)
     FROM cur WHERE NOT EXISTS (SELECT 1 FROM snap)`,
    [
      input.allocationId,
      input.organizationId,
      input.gatewayId,
      input.epoch,
      input.baseRevision,
      input.dataJson,
      input.size,
      input.checksum,
      JSON.stringify(input.timestamp),
      input.retention,
    ],
  );
  const row = rows[0];
  if (!row) return { kind: 'not_found' };
  switch (row.outcome) {
    case 'stored':
      return { kind: 'ok', snapshot: toMeta(row) };
    case 'stale_epoch':
      return { kind: 'stale_epoch', current: Number(row.current_epoch) };
    case 'revision_conflict':
      return { kind: 'revision_conflict', current: row.current_revision == null ? null : Number(row.current_revision) };
    default:
      return { kind: row.outcome as 'ended' | 'forbidden' };
  }
}

export interface Snapshot extends SnapshotMeta {
  gateway_id: string;
  timestamp: string | number;
  data: unknown;
}

/** The organization's latest snapshot, or null when nothing was ever pushed for it. */
export async function pullSnapshot(db: Queryable, organizationId: string): Promise<Snapshot | null> {
  const { rows } = await db.query(
    `SELECT s.organization_id, s.revision, s.epoch, s.gateway_id, s.data, s.size, s.checksum, s.client_timestamp, s.stored_at
     FROM organization_state h JOIN snapshots s ON s.organization_id = h.organization_id AND s.revision = h.revision
     WHERE h.organization_id = $1`,
    [organizationId],
  );
  const row = rows[0];
  if (!row) return null;
  return {
    ...toMeta(row),
    gateway_id: row.gateway_id as string,
    timestamp: row.client_timestamp as string | number,
    data: JSON.parse(row.data as string) as unknown,
  };
}

const toMeta = (r: Record<string, unknown>): SnapshotMeta => ({
  organization_id: r.organization_id as string,
  revision: Number(r.revision),
  epoch: r.epoch == null ? null : Number(r.epoch),
  size: Number(r.size),
  checksum: r.checksum as string,
  stored_at: iso(r.stored_at)!,
});
