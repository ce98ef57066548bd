/**
 * The allocation row as the code sees it, shared by the transitions and liveness: one column list, one mapping,
 * the audit row every transition appends, and the plain reads.
 */
import type { AllocationEvent, AllocationState, EndedReason, PoolEvent } from '@ganymede/contracts';
import type { Queryable } from '../db/database.js';
import { iso } from './time.js';

export interface Allocation {
  allocation_id: string;
  gateway_id: string;
  gateway_url: string;
  organization_id: string;
  state: AllocationState;
  epoch: number;
  restart_deadline: string | null;
  ended_at: string | null;
  ended_reason: EndedReason | null;
  updated_at: string;
}

/**
 * The one column list `toAllocation` maps: an allocation row under `alias`, with its gateway's URL from `url`.
 * Statements that end in rows of a CTE (`upd`, `ins`) select the same list from it.
 */
export const allocationColumns = (alias: string, url = 'g.url') =>
  `${alias}.id AS allocation_id, ${alias}.gateway_id, ${url} AS gateway_url, ${alias}.organization_id, ${alias}.state,
   ${alias}.epoch, ${alias}.restart_deadline, ${alias}.ended_at, ${alias}.ended_reason, ${alias}.updated_at`;

/** Columns of `a` (allocations) joined with `g` (gateways). */
export const COLUMNS = allocationColumns('a');

export const toAllocation = (r: Record<string, unknown>): Allocation => ({
  allocation_id: r.allocation_id as string,
  gateway_id: r.gateway_id as string,
  gateway_url: r.gateway_url as string,
  organization_id: r.organization_id as string,
  state: r.state as AllocationState,
  epoch: Number(r.epoch),
  restart_deadline: iso(r.restart_deadline),
  ended_at: iso(r.ended_at),
  ended_reason: (r.ended_reason as EndedReason | null) ?? null,
  updated_at: iso(r.updated_at)!,
});

/** Appends one audit row per row of the CTE `source` (which must expose id, gateway_id, organization_id, epoch). */
export const audit = (source: string, kind: string, reason: string) =>
  `INSERT INTO allocation_events (allocation_id, gateway_id, organization_id, kind, reason, epoch)
   SELECT id, gateway_id, organization_id, '${kind}', ${reason}, epoch FROM ${source}`;

export async function getAllocation(db: Queryable, allocationId: string): Promise<Allocation | null> {
  const { rows } = await db.query(`SELECT ${COLUMNS} FROM allocations a JOIN gateways g ON g.id = a.gateway_id WHERE a.id = $1`, [
    allocationId,
  ]);
  return rows[0] ? toAllocation(rows[0]) : null;
}

export type LiveAllocation = Allocation & { state: Exclude<AllocationState, 'ended'> };

/** The gateway's live allocation; `undefined` when no such gateway is registered. */
export async function liveAllocationOfGateway(db: Queryable, gatewayId: string): Promise<LiveAllocation | null | undefined> {
  const { rows } = await db.query(
    `SELECT ${COLUMNS} FROM gateways g LEFT JOIN allocations a ON a.gateway_id = g.id AND a.state <> 'ended'
     WHERE g.id = $1`,
    [gatewayId],
  );
  const row = rows[0];
  if (!row) return undefined;
  return row.allocation_id ? (toAllocation(row) as LiveAllocation) : null;
}

type AllocationEventKind = AllocationEvent['kind'];

export interface AllocationEventRow {
  kind: AllocationEventKind;
  reason: string | null;
  epoch: number;
  at: string;
}

const toEvent = (r: Record<string, unknown>): AllocationEventRow => ({
  kind: r.kind as AllocationEventKind,
  reason: (r.reason as string) ?? null,
  epoch: Number(r.epoch),
  at: iso(r.at)!,
});

export async function eventsOf(db: Queryable, allocationId: string): Promise<AllocationEventRow[]> {
  const { rows } = await db.query('SELECT kind, reason, epoch, at FROM allocation_events WHERE allocation_id = $1 ORDER BY id', [
    allocationId,
  ]);
  return rows.map(toEvent);
}

/**
 * The pool's audit events after `after` (an event id), oldest first. Ids are handed out before commit, so on
 * PostgreSQL an event may become visible after a later id was read: a feed built on this may miss one, never
 * show a wrong one (the dashboard re-reads the pool itself on every tick).
 */
export async function poolEvents(db: Queryable, after: number, limit: number): Promise<PoolEvent[]> {
  const { rows } = await db.query(
    `SELECT id, allocation_id, gateway_id, organization_id, kind, reason, epoch, at
     FROM allocation_events WHERE id > $1 ORDER BY id LIMIT $2`,
    [after, limit],
  );
  return rows.map((r) => ({
    id: Number(r.id),
    allocation_id: r.allocation_id as string,
    gateway_id: r.gateway_id as string,
    organization_id: r.organization_id as string,
    ...toEvent(r),
  }));
}
