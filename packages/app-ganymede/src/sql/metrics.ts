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
