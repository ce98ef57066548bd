import type { PoolEntry } from '@ganymede/contracts';
import type { Queryable } from '../db/database.js';
import { iso } from './time.js';

export async function addGateway(db: Queryable, url: string): Promise<string> {
  const { rows } = await db.query<{ id: string }>('INSERT INTO gateways (url) VALUES ($1) RETURNING id', [url]);
  return rows[0]!.id;
}

/**
 * Every gateway with its live allocation, if any. A lease is granted for `leaseSeconds` from its renewal, so its
 * age is what is left of it subtracted from that, by the database's clock (the one that decides expiry).
 */
export async function poolStatus(db: Queryable, leaseSeconds: number): Promise<PoolEntry[]> {
  const { rows } = await db.query(
    `SELECT g.id AS gateway_id, g.url, g.ready_at, a.id AS allocation_id, a.organization_id,
            coalesce(a.state, 'idle') AS state, a.epoch, a.restart_deadline,
            coalesce(a.updated_at, g.ready_at, g.created_at) AS since,
            greatest(0, $1::float8 - extract(epoch FROM g.lease_expires_at - now())::float8) AS lease_age_seconds
     FROM gateways g LEFT JOIN allocations a ON a.gateway_id = g.id AND a.state <> 'ended'
     ORDER BY g.created_at, g.id`,
    [leaseSeconds],
  );
  return rows.map((r) => ({
    gateway_id: r.gateway_id as string,
    url: r.url as string,
    ready: r.ready_at != null,
    ready_at: iso(r.ready_at),
    allocation_id: (r.allocation_id as string | null) ?? null,
    organization_id: (r.organization_id as string | null) ?? null,
    state: r.state as PoolEntry['state'],
    epoch: r.epoch == null ? null : Number(r.epoch),
    restart_deadline: iso(r.restart_deadline),
    since: iso(r.since)!,
    lease_age_seconds: r.lease_age_seconds == null ? null : Number(r.lease_age_seconds),
  }));
}
