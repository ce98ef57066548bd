/**
 * Liveness (migration 002): every gateway process renews a lease; an active allocation whose gateway's lease
 * lapsed past its grace ends (`lease_expired`); a renewal is fenced by the process's instance id and epoch; and the
 * control plane's own heartbeat holds expiry back after an outage. The crash-loop rule lives with the reclaim it
 * limits, in transitions.ts.
 */
import type { Queryable } from '../db/database.js';
import { type Allocation, allocationColumns, audit, COLUMNS, toAllocation } from './rows.js';
import { iso } from './time.js';

/** The liveness rules `ready`, `renewLease` and the reaper apply. */
export interface LivenessPolicy {
  leaseSeconds: number;
  /** A gateway that reclaims after this many deaths within the window loses the allocation. */
  crashLoopLimit: number;
  crashLoopWindowSeconds: number;
}

export const DEFAULT_LIVENESS: LivenessPolicy = { leaseSeconds: 10, crashLoopLimit: 5, crashLoopWindowSeconds: 300 };

/** A lease as the contract tells it: when it lapses (null: never renewed, an older gateway) and its length. */
export interface LeaseInfo {
  expires_at: string | null;
  seconds: number;
}

export type LeaseResult =
  | { kind: 'ok'; lease: LeaseInfo; allocation: Allocation | null }
  | { kind: 'forbidden' | 'superseded' | 'ended' }
  | { kind: 'stale_epoch'; current: number };

/**
 * One renewal, one statement. Fenced: only the gateway's current process (its last /ready's instance id),
 * still serving what it says at the epoch it says, renews; anything else is refused and changes nothing.
 * `superseded` and `stale_epoch` mean another process took over: the caller must stand down. `ended` means
 * its allocation is gone: it stops serving it and may say ready again.
 */
export async function renewLease(
  db: Queryable,
  gatewayId: string,
  instanceId: string,
  allocationId: string | null,
  epoch: number | null,
  leaseSeconds: number,
): Promise<LeaseResult> {
  const { rows } = await db.query(
    `WITH gw AS (SELECT id, instance_id FROM gateways WHERE id = $1),
     claimed AS (SELECT id, gateway_id, state, epoch FROM allocations WHERE id = $3),
     upd AS (
       -- A live process renewing is back in the pool if a rollback or a lapsed lease had taken it out.
       UPDATE gateways g SET lease_expires_at = now() + make_interval(secs => $5), ready_at = coalesce(g.ready_at, now())
       WHERE g.id = $1 AND g.instance_id = $2
         AND ($3::uuid IS NULL OR EXISTS (
           SELECT 1 FROM claimed c WHERE c.gateway_id = $1 AND c.state <> 'ended' AND ($4::int IS NULL OR c.epoch = $4::int)))
       RETURNING g.lease_expires_at
     )
     SELECT (SELECT instance_id FROM gw) AS instance_id, EXISTS (SELECT 1 FROM gw) AS known,
            (SELECT lease_expires_at FROM upd) AS lease_expires_at,
            c.gateway_id AS claimed_gateway, c.state AS claimed_state, c.epoch AS claimed_epoch,
            ${COLUMNS}
     FROM (SELECT 1) one
     LEFT JOIN claimed c ON true
     LEFT JOIN allocations a ON a.gateway_id = $1 AND a.state <> 'ended'
     LEFT JOIN gateways g ON g.id = a.gateway_id`,
    [gatewayId, instanceId, allocationId, epoch, leaseSeconds],
  );
  const row = rows[0]!;
  if (!row.known) return { kind: 'forbidden' };
  if (row.lease_expires_at) {
    const allocation = row.allocation_id ? toAllocation(row) : null;
    return { kind: 'ok', lease: { expires_at: iso(row.lease_expires_at), seconds: leaseSeconds }, allocation };
  }
  // A stop or a restart timeout lets the gateway's process go (no instance is current): nobody took over, so a
  // process that names the allocation that ended under it is told just that.
  const letGo = row.instance_id === null && allocationId !== null && row.claimed_gateway === gatewayId && row.claimed_state === 'ended';
  if (row.instance_id !== instanceId && !letGo) return { kind: 'superseded' };
  if (allocationId && row.claimed_gateway !== null && row.claimed_gateway !== gatewayId) return { kind: 'forbidden' };
  if (allocationId && (row.claimed_state === null || row.claimed_state === 'ended')) return { kind: 'ended' };
  if (allocationId && epoch !== null && Number(row.claimed_epoch) !== epoch) {
    return { kind: 'stale_epoch', current: Number(row.claimed_epoch) };
  }
  return { kind: 'ended' };
}

/**
 * Ends active allocations whose gateway's lease lapsed more than `graceSeconds` ago: the organization's
 * next /gateway/start then gets a live gateway. The gateway leaves the pool until its process renews or
 * says ready again (a paused process that resumes learns from its renewal that the allocation ended).
 */
export async function expireLeases(db: Queryable, graceSeconds: number, outageSeconds: number | null = null): Promise<Allocation[]> {
  const { rows } = await db.query(
    `WITH upd AS (
       UPDATE allocations SET state = 'ended', ended_at = now(), ended_reason = 'lease_expired', updated_at = now()
       WHERE id IN (
         SELECT a.id FROM allocations a JOIN gateways g ON g.id = a.gateway_id
         WHERE a.state = 'active' AND g.lease_expires_at < now() - make_interval(secs => $1)
         -- Both rows: a renewal (or reclaim) committing meanwhile is re-checked, never overruled.
         FOR UPDATE OF a, g SKIP LOCKED
       ) AND ${REAPER_ALIVE('$2')}
       RETURNING *
     ), gw AS (UPDATE gateways SET ready_at = NULL FROM upd WHERE gateways.id = upd.gateway_id),
     ev AS (${audit('upd', 'lease_expired', `'lease_expired'`)})
     SELECT ${allocationColumns('upd')} FROM upd JOIN gateways g ON g.id = upd.gateway_id`,
    [graceSeconds, outageSeconds],
  );
  return rows.map(toAllocation);
}

/**
 * An expiry statement's guard, given a reaper pass's outage threshold as `param` (NULL: no guard, for tests that
 * expire directly): the pass's heartbeat is recent and expiry is not held back. A statement sent before Ganymede
 * was cut off from its database and run once it healed (the network held its bytes) then ends nothing: whatever
 * lapsed meanwhile lapsed because nobody could reach the database, and the next heartbeat holds expiry back.
 */
export const REAPER_ALIVE = (param: string) =>
  `(${param}::float8 IS NULL OR (SELECT now() - last_reaped_at <= make_interval(secs => ${param}::float8)
      AND expiry_held_until <= now() FROM control_plane))`;

/**
 * The control plane's heartbeat, run by every reaper pass. When no reaper ran for longer than
 * `outageSeconds` (every replica was down), expiry is held back for one lease period, so gateways that
 * could not renew or reclaim while nobody answered get a full period to reach it again. Answers whether
 * expiry is held back now.
 */
export async function controlPlaneHeartbeat(db: Queryable, outageSeconds: number, leaseSeconds: number): Promise<boolean> {
  const { rows } = await db.query<{ held: boolean }>(
    `UPDATE control_plane SET
       expiry_held_until = CASE WHEN now() - last_reaped_at > make_interval(secs => $1)
                                THEN greatest(expiry_held_until, now() + make_interval(secs => $2))
                                ELSE expiry_held_until END,
       last_reaped_at = now()
     RETURNING expiry_held_until > now() AS held`,
    [outageSeconds, leaseSeconds],
  );
  return rows[0]?.held === true;
}
