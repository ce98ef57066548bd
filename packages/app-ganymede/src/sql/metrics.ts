/** What the metrics read from the database: the gauges at scrape time, and a reclaim's timing from its audit rows. */
import type { Queryable } from '../db/database.js';
import { ALLOCATABLE } from './transitions.js';

export interface ScrapeCounts {
  allocations: { active: number; restarting: number; ended: number };
  pool: { free: number; busy: number; unavailable: number };
}

/** Allocations by state and the pool's gateways by status, in one statement (one snapshot: they add up). */
export async function scrapeCounts(db: Queryable): Promise<ScrapeCounts> {
  const { rows } = await db.query<Record<string, number>>(
    `SELECT
       (SELECT count(*) FROM allocations WHERE state = 'active')::int AS active,
       (SELECT count(*) FROM allocations WHERE state = 'restarting')::int AS restarting,
       (SELECT count(*) FROM allocations WHERE state = 'ended')::int AS ended,
       count(*) FILTER (WHERE busy)::int AS busy,
       count(*) FILTER (WHERE NOT busy AND free)::int AS free,
       count(*) FILTER (WHERE NOT busy AND NOT free)::int AS unavailable
     FROM (SELECT EXISTS (SELECT 1 FROM allocations a WHERE a.gateway_id = g.id AND a.state <> 'ended') AS busy,
                  (${ALLOCATABLE}) AS free
           FROM gateways g) pool`,
  );
  const r = rows[0]!;
  return {
    allocations: { active: r.active!, restarting: r.restarting!, ended: r.ended! },
    pool: { free: r.free!, busy: r.busy!, unavailable: r.unavailable! },
  };
}

export interface ReclaimTiming {
  /** The reclaim's audit reason: `restart` or `crash`. */
  reason: string;
  /** restart_requested → reclaimed in the database clock; null for a crash reclaim. */
  restartToReclaimSeconds: number | null;
}

/** The reclaim of `allocationId` at `epoch`, from its audit row and the restart request before it. */
export async function reclaimTiming(db: Queryable, allocationId: string, epoch: number): Promise<ReclaimTiming | null> {
  const { rows } = await db.query<{ reason: string; seconds: number | null }>(
    `SELECT r.reason, extract(epoch FROM r.at - q.at)::float8 AS seconds
     FROM allocation_events r
     LEFT JOIN LATERAL (
       SELECT at FROM allocation_events q
       WHERE q.allocation_id = r.allocation_id AND q.kind = 'restart_requested' AND q.id < r.id
       ORDER BY q.id DESC LIMIT 1
     ) q ON r.reason = 'restart'
     WHERE r.allocation_id = $1 AND r.kind = 'reclaimed' AND r.epoch = $2
     ORDER BY r.id DESC LIMIT 1`,
    [allocationId, epoch],
  );
  const row = rows[0];
  return row ? { reason: row.reason, restartToReclaimSeconds: row.seconds === null ? null : Number(row.seconds) } : null;
}
