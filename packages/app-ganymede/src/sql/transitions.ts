/**
 * The allocation state machine, one SQL statement per transition. Each statement writes its audit row (and,
 * where the process goes away, clears the gateway's readiness) in the same statement, so a crash at any instant
 * leaves either all of a transition or none of it.
 *
 *            allocate                 restart                  ready or reclaim (new process): reclaim, epoch + 1
 *   (free) ──────────▶ active ─────────────────▶ restarting ─────────────────────────────▶ active
 *                       │  ▲ ready or reclaim (another process: the last one died): crash reclaim, epoch + 1
 *                       │  └─┘
 *                       │
 *                       ├─ stop ─────────────────────────────────────▶ ended (stop, idle, decommission)
 *                       ├─ not taken, never claimed (rollBack) ──────▶ ended (gateway_unreachable)
 *                       ├─ the crash-loop-limit-th crash reclaim ────▶ ended (crash_loop)
 *                       └─ lease lapsed past its grace (liveness.ts) ▶ ended (lease_expired)
 *   restarting ─┬─ withdraw (same process, same epoch) ───────────────▶ active
 *               ├─ stop ─────────────────────────────────────────────▶ ended (stop, idle, decommission)
 *               └─ deadline passed (expireRestarts) ─────────────────▶ ended (restart_timeout)
 *
 * `ended` is terminal and epochs never decrease (triggers, migration 001).
 */
import type { GatewayProtocol, RestartReason, StopReason } from '@ganymede/contracts';
import type { Queryable } from '../db/database.js';
import { DEFAULT_LIVENESS, type LeaseInfo, type LivenessPolicy, REAPER_ALIVE } from './liveness.js';
import { type Allocation, allocationColumns, audit, COLUMNS, toAllocation } from './rows.js';
import { iso } from './time.js';

/**
 * A gateway `g` is allocatable when its process said ready, its lease (if it ever took one: older gateways
 * never do) has not lapsed, and it holds no live allocation.
 */
export const ALLOCATABLE = `g.ready_at IS NOT NULL
  AND (g.lease_expires_at IS NULL OR g.lease_expires_at > now())
  AND NOT EXISTS (SELECT 1 FROM allocations a WHERE a.gateway_id = g.id AND a.state <> 'ended')`;

/** A new allocation comes with the protocol its gateway speaks: how it must be told (notify.ts). */
export type AllocateResult =
  { kind: 'existing'; allocation: Allocation } | { kind: 'created'; allocation: Allocation; protocol: GatewayProtocol } | { kind: 'none' };

/**
 * Statements one `allocate` may spend losing races. Each lost race means a concurrent caller committed an
 * allocation in between, so this bounds the wait by the pool's churn, not by luck.
 */
const ALLOCATE_ATTEMPTS = 64;

/**
 * The organization's live allocation if it has one; else a new one on the longest-ready free gateway;
 * `none` only when no gateway is free. Concurrent callers are kept apart by the partial unique indexes and by
 * SKIP LOCKED on the gateway row. Under READ COMMITTED a statement can lose a race it could not see (its
 * snapshot predates the winner's commit: the gateway it picked, or this organization's own allocation, was just
 * taken), so a `none` is retried with a fresh snapshot while the retry could succeed.
 */
export async function allocate(db: Queryable, organizationId: string): Promise<AllocateResult> {
  for (let attempt = 1; ; attempt++) {
    const result = await allocateOnce(db, organizationId);
    if (result.kind !== 'none' || attempt === ALLOCATE_ATTEMPTS || !(await couldAllocate(db, organizationId))) {
      return result;
    }
  }
}

/** True when a fresh `allocateOnce` could answer something other than `none`. */
async function couldAllocate(db: Queryable, organizationId: string): Promise<boolean> {
  if (await anyGatewayFree(db)) return true;
  const { rows } = await db.query<{ live: boolean }>(
    `SELECT EXISTS (SELECT 1 FROM allocations WHERE organization_id = $1 AND state <> 'ended') AS live`,
    [organizationId],
  );
  return rows[0]?.live === true;
}

async function allocateOnce(db: Queryable, organizationId: string): Promise<AllocateResult> {
  const { rows } = await db.query(
    `WITH existing AS (
       SELECT ${COLUMNS} FROM allocations a JOIN gateways g ON g.id = a.gateway_id
       WHERE a.organization_id = $1 AND a.state <> 'ended'
     ), pick AS (
       SELECT g.id, g.url, g.protocol FROM gateways g
       WHERE ${ALLOCATABLE} AND NOT EXISTS (SELECT 1 FROM existing)
       ORDER BY g.ready_at, g.id
       LIMIT 1
       FOR UPDATE OF g SKIP LOCKED
     ), ins AS (
       INSERT INTO allocations (gateway_id, organization_id, state)
       SELECT id, $1, 'active' FROM pick
       ON CONFLICT DO NOTHING
       RETURNING *
     ), ev AS (${audit('ins', 'allocated', 'NULL')})
     SELECT *, false AS created, NULL AS protocol FROM existing
     UNION ALL
     SELECT ${allocationColumns('ins', 'pick.url')}, true, pick.protocol FROM ins JOIN pick ON pick.id = ins.gateway_id`,
    [organizationId],
  );
  const row = rows[0];
  if (!row) return { kind: 'none' };
  const allocation = toAllocation(row);
  return row.created ? { kind: 'created', allocation, protocol: row.protocol as GatewayProtocol } : { kind: 'existing', allocation };
}

/** True when some gateway is allocatable. */
export async function anyGatewayFree(db: Queryable): Promise<boolean> {
  const { rows } = await db.query<{ free: boolean }>(`SELECT EXISTS (SELECT 1 FROM gateways g WHERE ${ALLOCATABLE}) AS free`);
  return rows[0]?.free === true;
}

/**
 * Why an allocation was reclaimed (its audit reason), and for a restart how long after it was asked for. A
 * `takeback` is a claim by the process that held it before its current holder: after a hot restart whose successor
 * reclaimed it and was then killed, the old process takes it back. Only a `crash` counts toward the crash loop.
 */
export type ReclaimReason = 'restart' | 'crash' | 'takeback';
/** The claims that are reclaims (epoch + 1, audited `reclaimed` with the claim as reason), as SQL. */
const RECLAIMS = `('restart', 'crash', 'takeback')`;
export interface Reclaim {
  reason: ReclaimReason;
  /** restart_requested → reclaimed, in the database's clock; null for a crash reclaim. */
  restartToReclaimSeconds: number | null;
}

export type ReadyResult =
  | { kind: 'ok'; allocation: Allocation | null; reclaimed: false; lease: LeaseInfo }
  | { kind: 'ok'; allocation: Allocation | null; reclaimed: true; reclaim: Reclaim; lease: LeaseInfo }
  | { kind: 'crash_loop'; allocation: Allocation }
  | { kind: 'not_found' }
  | { kind: 'forbidden' }
  | { kind: 'ended' };

/**
 * A gateway process says it is up. With an allocation id it claims that allocation:
 * - the first process to claim an active allocation keeps epoch 1;
 * - leaving `restarting` is always a reclaim (epoch + 1, audited with reason `restart`);
 * - the process that held it before its current holder taking it back is a reclaim with reason `takeback` (a hot
 *   restart's successor reclaimed it and was killed; the old process served on): not a crash (migration 007);
 * - another process taking over an active allocation means the previous one died: a reclaim with reason
 *   `crash`, unless it is the `crashLoopLimit`-th within the window: then the allocation ends (`crash_loop`);
 * - the same process (same instance id) repeating itself changes nothing (not even `updated_at`, or its
 *   gateway's place in the pool's line). No instance id (an older gateway) is always a new process.
 * Only a call that succeeds marks the gateway ready (and renews a lease it holds), in the same statement. A
 * process with no instance id (an older gateway) never renews, so it holds no lease: its call clears one.
 * The same statement records the `protocol` the process speaks (migration 006): how it is told of an allocation.
 *
 * Concurrent takeovers cannot skip the crash-loop limit. Under READ COMMITTED, `cur ... FOR UPDATE` answers the
 * latest committed row, but the audit count reads the statement's snapshot, which misses the crash reclaims that
 * committed while this statement waited for the lock. Each crash reclaim also bumps `allocations.crash_reclaims`
 * (migration 003), so the locked row's counter minus the snapshot's is exactly what the snapshot missed, all of it
 * recent. A counter rather than a list of times on the row: the audit rows stay the one record of when each
 * reclaim happened (the window is counted from them), and the row carries one integer, not a growing array.
 */
export function ready(
  db: Queryable,
  gatewayId: string,
  allocationId: string | null,
  instanceId: string | null,
  policy: LivenessPolicy = DEFAULT_LIVENESS,
  protocol: GatewayProtocol = 'v2',
): Promise<ReadyResult> {
  return claim(db, gatewayId, allocationId, instanceId, policy, protocol);
}

/**
 * /gateway/config and /gateway/ready {allocation_id, instance_id} in one statement (a process of this project's
 * gateway, protocol v2): claims whatever live allocation the gateway holds, exactly as `ready` claims the one it is
 * named. `not_found` when the gateway holds none: then nothing changes (the process goes on with an idle `ready`).
 * A concurrent end between finding the allocation and locking it answers `ended`.
 */
export function reclaim(
  db: Queryable,
  gatewayId: string,
  instanceId: string,
  policy: LivenessPolicy = DEFAULT_LIVENESS,
): Promise<ReadyResult> {
  return claim(db, gatewayId, null, instanceId, policy, 'v2', true);
}

/** `ready`'s statement; `live` claims the gateway's live allocation (found in the same statement) instead of `allocationId`. */
async function claim(
  db: Queryable,
  gatewayId: string,
  allocationId: string | null,
  instanceId: string | null,
  policy: LivenessPolicy,
  protocol: GatewayProtocol,
  live = false,
): Promise<ReadyResult> {
  const { rows } = await db.query(
    `WITH cur AS (
       SELECT a.id, a.gateway_id, a.state, a.claimed_at, a.holder_instance, a.previous_holder, a.crash_reclaims FROM allocations a
       WHERE a.id = coalesce($2::uuid, (SELECT l.id FROM allocations l WHERE $8 AND l.gateway_id = $1 AND l.state <> 'ended'))
       FOR UPDATE
     ), mine AS (
       SELECT cur.*, CASE WHEN cur.state = 'restarting' THEN 'restart'
                          WHEN cur.claimed_at IS NULL THEN 'first'
                          WHEN $3::uuid IS NOT NULL AND cur.holder_instance = $3::uuid THEN 'repeat'
                          WHEN $3::uuid IS NOT NULL AND cur.previous_holder = $3::uuid THEN 'takeback'
                          ELSE 'crash' END AS claim
       FROM cur WHERE cur.gateway_id = $1 AND cur.state <> 'ended'
     ), looping AS (
       -- Crash reclaims in the window: those this statement's snapshot sees in the audit, plus those committed
       -- while it waited for the row lock, which only the locked row shows (its counter, against the snapshot's).
       SELECT mine.id, mine.gateway_id FROM mine WHERE mine.claim = 'crash' AND 1 + (
         SELECT count(*) FROM allocation_events e
         WHERE e.allocation_id = mine.id AND e.kind = 'reclaimed' AND e.reason = 'crash'
           AND e.at > now() - make_interval(secs => $5))
         + mine.crash_reclaims - coalesce((SELECT s.crash_reclaims FROM allocations s WHERE s.id = mine.id), 0) >= $4
     ), upd AS (
       UPDATE allocations a SET
         epoch = CASE WHEN mine.claim IN ${RECLAIMS} THEN a.epoch + 1 ELSE a.epoch END,
         crash_reclaims = CASE WHEN mine.claim = 'crash' THEN a.crash_reclaims + 1 ELSE a.crash_reclaims END,
         state = 'active', restart_deadline = NULL, restart_reason = NULL,
         holder_instance = $3, claimed_at = coalesce(mine.claimed_at, now()),
         previous_holder = CASE WHEN a.holder_instance IS DISTINCT FROM $3::uuid THEN a.holder_instance ELSE a.previous_holder END,
         updated_at = CASE WHEN mine.claim = 'repeat' THEN a.updated_at ELSE now() END
       FROM mine
       WHERE a.id = mine.id AND NOT EXISTS (SELECT 1 FROM looping)
       RETURNING a.*, mine.claim
     ), loop_ended AS (
       UPDATE allocations a SET state = 'ended', ended_at = now(), ended_reason = 'crash_loop', updated_at = now()
       FROM looping WHERE a.id = looping.id
       RETURNING a.*
     ), loop_gw AS (
       -- Out of the pool: the process that keeps dying goes to the back of the line when it says ready again.
       UPDATE gateways SET ready_at = NULL FROM looping WHERE gateways.id = looping.gateway_id
     ), gw AS (
       -- The same process saying ready again keeps its place in the pool's line.
       UPDATE gateways SET ready_at = CASE WHEN $3::uuid IS NOT NULL AND instance_id = $3::uuid THEN coalesce(ready_at, now())
                                           ELSE now() END,
         instance_id = $3, protocol = $7,
         lease_expires_at = CASE WHEN lease_expires_at IS NULL OR $3::uuid IS NULL THEN NULL ELSE now() + make_interval(secs => $6) END
       WHERE id = $1 AND (($2::uuid IS NULL AND NOT $8) OR EXISTS (SELECT 1 FROM upd))
       RETURNING id, url, lease_expires_at
     ), ev AS (${audit(`upd WHERE claim IN ${RECLAIMS}`, 'reclaimed', 'claim')}),
     ev_loop AS (${audit('loop_ended', 'crash_loop', `'crash_loop'`)})
     SELECT 'claimed' AS outcome, upd.claim IN ${RECLAIMS} AS reclaimed, gw.lease_expires_at,
            upd.id AS allocation_id, upd.gateway_id, gw.url AS gateway_url, upd.organization_id, upd.state, upd.epoch,
            upd.restart_deadline, upd.ended_at, upd.ended_reason, upd.updated_at, upd.claim,
            -- For the restart → reclaim histogram, in the database's clock: read here, not by a second statement.
            CASE WHEN upd.claim = 'restart' THEN (
              SELECT extract(epoch FROM now() - q.at)::float8 FROM allocation_events q
              WHERE q.allocation_id = upd.id AND q.kind = 'restart_requested' ORDER BY q.id DESC LIMIT 1) END
              AS restart_to_reclaim_seconds
     FROM upd, gw
     UNION ALL
     SELECT 'crash_loop', false, NULL, le.id, le.gateway_id, NULL, le.organization_id, le.state, le.epoch,
            le.restart_deadline, le.ended_at, le.ended_reason, le.updated_at, NULL, NULL
     FROM loop_ended le
     UNION ALL
     SELECT CASE WHEN cur.gateway_id <> $1 THEN 'forbidden' ELSE 'ended' END,
            false, NULL, cur.id, cur.gateway_id, NULL, NULL, cur.state, 1, NULL, NULL, NULL, now(), NULL, NULL
     FROM cur WHERE NOT EXISTS (SELECT 1 FROM upd) AND NOT EXISTS (SELECT 1 FROM loop_ended)
     UNION ALL
     SELECT 'idle', false, gw.lease_expires_at, a.id, a.gateway_id, gw.url, a.organization_id, a.state, a.epoch,
            a.restart_deadline, a.ended_at, a.ended_reason, a.updated_at, NULL, NULL
     FROM gw LEFT JOIN allocations a ON a.gateway_id = gw.id AND a.state <> 'ended'
     WHERE $2::uuid IS NULL AND NOT $8
     UNION ALL
     SELECT 'unknown_gateway', false, NULL, NULL, NULL, NULL, NULL, NULL, 1, NULL, NULL, NULL, now(), NULL, NULL
     WHERE NOT EXISTS (SELECT 1 FROM gateways WHERE id = $1)`,
    [gatewayId, allocationId, instanceId, policy.crashLoopLimit, policy.crashLoopWindowSeconds, policy.leaseSeconds, protocol, live],
  );
  // A token of a gateway that is not (or no longer) registered is refused like another gateway's.
  if (rows.some((r) => r.outcome === 'unknown_gateway')) return { kind: 'forbidden' };
  const row = rows[0];
  if (!row) return { kind: 'not_found' };
  if (row.outcome === 'forbidden' || row.outcome === 'ended') return { kind: row.outcome };
  if (row.outcome === 'crash_loop') return { kind: 'crash_loop', allocation: toAllocation(row) };
  const lease = { expires_at: iso(row.lease_expires_at), seconds: policy.leaseSeconds };
  const allocation = row.allocation_id ? toAllocation(row) : null;
  if (row.reclaimed !== true) return { kind: 'ok', allocation, reclaimed: false, lease };
  const seconds = row.restart_to_reclaim_seconds;
  const reclaim = { reason: row.claim as ReclaimReason, restartToReclaimSeconds: seconds === null ? null : Number(seconds) };
  return { kind: 'ok', allocation, reclaimed: true, reclaim, lease };
}

export type FencedResult =
  { kind: 'ok'; allocation: Allocation } | { kind: 'not_found' | 'ended' } | { kind: 'stale_epoch'; current: number };

/** Reads the outcome of a fenced transition: the updated row, or why nothing was updated. */
function fencedOutcome(rows: Record<string, unknown>[]): FencedResult {
  const row = rows[0];
  if (!row) return { kind: 'not_found' };
  if (row.updated) return { kind: 'ok', allocation: toAllocation(row) };
  if (row.prev_state === 'ended') return { kind: 'ended' };
  return { kind: 'stale_epoch', current: Number(row.prev_epoch) };
}

/** The `SELECT` that ends a fenced transition: the row as updated, joined with the row as it was. */
const FENCED_SELECT = `SELECT upd.id IS NOT NULL AS updated, cur.state AS prev_state, cur.epoch AS prev_epoch,
    cur.id AS allocation_id, cur.gateway_id, g.url AS gateway_url, cur.organization_id,
    coalesce(upd.state, cur.state) AS state, coalesce(upd.epoch, cur.epoch) AS epoch,
    upd.restart_deadline, upd.ended_at, upd.ended_reason, coalesce(upd.updated_at, cur.updated_at) AS updated_at
  FROM cur JOIN gateways g ON g.id = cur.gateway_id LEFT JOIN upd ON upd.id = cur.id`;

/**
 * Marks the allocation restarting until `now() + graceSeconds` (database clock). Fenced: a stale epoch
 * changes nothing. A repeat while already restarting keeps the first deadline, so a looping caller
 * cannot extend it forever (and the first reason stands).
 */
export async function requestRestart(
  db: Queryable,
  allocationId: string,
  epoch: number | null,
  reason: RestartReason,
  graceSeconds: number,
): Promise<FencedResult> {
  const { rows } = await db.query(
    `WITH cur AS (SELECT * FROM allocations WHERE id = $1 FOR UPDATE),
     upd AS (
       UPDATE allocations a SET state = 'restarting',
         restart_deadline = CASE WHEN a.state = 'restarting' THEN a.restart_deadline
                                 ELSE now() + make_interval(secs => $4) END,
         restart_reason = CASE WHEN a.state = 'restarting' THEN a.restart_reason ELSE $3 END,
         updated_at = CASE WHEN a.state = 'restarting' THEN a.updated_at ELSE now() END
       WHERE a.id = $1 AND a.state <> 'ended' AND ($2::int IS NULL OR a.epoch = $2::int)
       RETURNING a.*
     ), ev AS (${audit(`upd WHERE EXISTS (SELECT 1 FROM cur WHERE cur.state = 'active')`, 'restart_requested', '$3')})
     ${FENCED_SELECT}`,
    [allocationId, epoch, reason, graceSeconds],
  );
  return fencedOutcome(rows);
}

/**
 * Takes a restart back: the process that asked for it keeps serving (its successor failed to boot), so the
 * allocation is active again at the same epoch, its deadline and reason cleared. Always fenced: once a successor
 * reclaimed it (epoch + 1), the old process's epoch is stale and nothing changes. A repeat (already active at
 * that epoch) succeeds and changes nothing, not even `updated_at`; only a real withdrawal writes an audit row.
 */
export async function withdrawRestart(
  db: Queryable,
  allocationId: string,
  epoch: number,
  leaseSeconds: number = DEFAULT_LIVENESS.leaseSeconds,
): Promise<FencedResult> {
  // The withdrawing process stopped renewing its lease while its successor booted: renewed here, in the same
  // statement, or the allocation (active again) could be ended for a lapsed lease before its next renewal lands.
  const { rows } = await db.query(
    `WITH cur AS (SELECT * FROM allocations WHERE id = $1 FOR UPDATE),
     upd AS (
       UPDATE allocations a SET state = 'active', restart_deadline = NULL, restart_reason = NULL,
         updated_at = CASE WHEN a.state = 'restarting' THEN now() ELSE a.updated_at END
       WHERE a.id = $1 AND a.state <> 'ended' AND a.epoch = $2::int
       RETURNING a.*
     ), gw AS (
       UPDATE gateways g SET lease_expires_at = now() + make_interval(secs => $3)
       FROM upd JOIN cur ON cur.id = upd.id
       WHERE g.id = upd.gateway_id AND cur.state = 'restarting' AND g.lease_expires_at IS NOT NULL
     ), ev AS (${audit(`upd WHERE EXISTS (SELECT 1 FROM cur WHERE cur.state = 'restarting')`, 'restart_withdrawn', 'NULL')})
     ${FENCED_SELECT}`,
    [allocationId, epoch, leaseSeconds],
  );
  return fencedOutcome(rows);
}

/** Ends the allocation. Fenced like `requestRestart`; the gateway's process is going away, so it is no longer ready. */
export async function stop(db: Queryable, allocationId: string, epoch: number | null, reason: StopReason): Promise<FencedResult> {
  const { rows } = await db.query(
    `WITH cur AS (SELECT * FROM allocations WHERE id = $1 FOR UPDATE),
     upd AS (
       UPDATE allocations a SET state = 'ended', ended_at = now(), ended_reason = $3,
         restart_deadline = NULL, updated_at = now()
       WHERE a.id = $1 AND a.state <> 'ended' AND ($2::int IS NULL OR a.epoch = $2::int)
       RETURNING a.*
     ), gw AS (UPDATE gateways SET ready_at = NULL, instance_id = NULL FROM upd WHERE gateways.id = upd.gateway_id),
     ev AS (${audit('upd', 'stopped', '$3')})
     ${FENCED_SELECT}`,
    [allocationId, epoch, reason],
  );
  return fencedOutcome(rows);
}

/**
 * Ends an allocation whose gateway did not take Ganymede's notice, and takes the gateway out of the pool
 * until its process says ready or renews its lease again. Only while the allocation was never claimed: a gateway that did claim
 * it (its answer was lost) keeps it.
 */
export async function rollBack(db: Queryable, allocationId: string): Promise<boolean> {
  const { rows } = await db.query(
    `WITH upd AS (
       UPDATE allocations SET state = 'ended', ended_at = now(), ended_reason = 'gateway_unreachable', updated_at = now()
       WHERE id = $1 AND state = 'active' AND claimed_at IS NULL
       RETURNING *
     ), gw AS (UPDATE gateways SET ready_at = NULL FROM upd WHERE gateways.id = upd.gateway_id),
     ev AS (${audit('upd', 'rolled_back', `'gateway_unreachable'`)})
     SELECT id FROM upd`,
    [allocationId],
  );
  return rows.length > 0;
}

/** Ends every restarting allocation whose deadline passed (database clock). Safe to run from several replicas. */
export async function expireRestarts(db: Queryable, outageSeconds: number | null = null): Promise<Allocation[]> {
  const { rows } = await db.query(
    `WITH upd AS (
       UPDATE allocations SET state = 'ended', ended_at = now(), ended_reason = 'restart_timeout',
         restart_deadline = NULL, updated_at = now()
       WHERE id IN (
         SELECT id FROM allocations WHERE state = 'restarting' AND restart_deadline < now()
         FOR UPDATE SKIP LOCKED
       ) AND ${REAPER_ALIVE('$1')}
       RETURNING *
     ), gw AS (UPDATE gateways SET ready_at = NULL, instance_id = NULL FROM upd WHERE gateways.id = upd.gateway_id),
     ev AS (${audit('upd', 'restart_timed_out', `'restart_timeout'`)})
     SELECT ${allocationColumns('upd')} FROM upd JOIN gateways g ON g.id = upd.gateway_id`,
    [outageSeconds],
  );
  return rows.map(toAllocation);
}
