/**
 * The allocation state machine in SQL (src/sql/transitions.ts, liveness.ts), on a migrated in-memory PGlite: transitions,
 * fencing epochs, audit rows, idempotent repeats, expiry by moving deadlines in SQL, and the schema's own
 * guards (partial unique indexes, triggers). PGlite serializes queries, so there the concurrency tests exercise
 * the SQL's logic; on PostgreSQL (GANYMEDE_TEST_DATABASE=postgres) they meet real lock contention.
 */
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Database } from '../src/db/database.js';
import { eventsOf, getAllocation, liveAllocationOfGateway } from '../src/sql/rows.js';
import {
  allocate,
  anyGatewayFree,
  expireRestarts,
  ready,
  requestRestart,
  rollBack,
  stop,
  withdrawRestart,
} from '../src/sql/transitions.js';
import { addGateway, poolStatus } from '../src/sql/gateways.js';
import { DEFAULT_LIVENESS, expireLeases } from '../src/sql/liveness.js';
import { PG_ERRORS } from '../src/errors.js';
import { onPostgres } from './database.js';
import { openMigratedDatabase, snapshotOf, truncateAll } from './support.js';

let db: Database;
beforeAll(async () => {
  db = await openMigratedDatabase();
});
afterAll(async () => {
  await db?.close();
});
beforeEach(async () => {
  await truncateAll(db);
});

/** A registered gateway whose (idle) process said ready. */
async function readyGateway(url = 'http://127.0.0.1:4101') {
  const id = await addGateway(db, url);
  const r = await ready(db, id, null, randomUUID());
  expect(r).toMatchObject({ kind: 'ok', allocation: null, reclaimed: false, lease: { expires_at: null } });
  return id;
}

async function allocationRow(id: string) {
  const { rows } = await db.query('SELECT * FROM allocations WHERE id = $1', [id]);
  return rows[0]!;
}

async function gatewayRow(id: string) {
  const { rows } = await db.query('SELECT * FROM gateways WHERE id = $1', [id]);
  return rows[0]!;
}

/** Resolves once some other session waits on a lock held by backend `pid` (PostgreSQL). */
async function blockedBy(pid: number) {
  for (;;) {
    const { rows } = await db.query<{ blocked: boolean }>(
      'SELECT EXISTS (SELECT 1 FROM pg_stat_activity WHERE $1 = ANY (pg_blocking_pids(pid))) AS blocked',
      [pid],
    );
    if (rows[0]!.blocked) return;
  }
}

const audit = async (allocationId: string) =>
  (await eventsOf(db, allocationId)).map(({ kind, reason, epoch }) => ({ kind, reason, epoch }));

/** A fresh organization allocated to a fresh ready gateway (not yet claimed by a process). */
async function allocated() {
  const gatewayId = await readyGateway();
  const organizationId = randomUUID();
  const result = await allocate(db, organizationId);
  if (result.kind !== 'created') throw new Error(`allocate answered ${result.kind}`);
  expect(result.allocation.gateway_id).toBe(gatewayId);
  return { gatewayId, organizationId, allocation: result.allocation, id: result.allocation.allocation_id };
}

/** As `allocated`, then claimed by a process (instance). */
async function claimed() {
  const a = await allocated();
  const instanceId = randomUUID();
  const r = await ready(db, a.gatewayId, a.id, instanceId);
  expect(r).toMatchObject({ kind: 'ok', reclaimed: false, allocation: { state: 'active', epoch: 1 } });
  return { ...a, instanceId };
}

/** As `claimed`, then marked restarting. */
async function restarting(grace = 60) {
  const a = await claimed();
  const r = await requestRestart(db, a.id, 1, 'reload', grace);
  expect(r).toMatchObject({ kind: 'ok', allocation: { state: 'restarting', epoch: 1 } });
  return a;
}

/** Seconds between the allocation's restart deadline and the statement that set it (both database clock). */
async function graceOf(id: string) {
  const { rows } = await db.query<{ secs: number }>(
    'SELECT extract(epoch FROM restart_deadline - updated_at)::float8 AS secs FROM allocations WHERE id = $1',
    [id],
  );
  return rows[0]!.secs;
}

const moveDeadlineIntoThePast = (id: string) =>
  db.query(`UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE id = $1`, [id]);

describe('allocate', () => {
  it('creates an active allocation at epoch 1 on the longest-ready free gateway, with an "allocated" audit row', async () => {
    const first = await addGateway(db, 'http://127.0.0.1:4101');
    const second = await addGateway(db, 'http://127.0.0.1:4102');
    // Ready order decides, not registration order.
    await ready(db, second, null, randomUUID());
    await ready(db, first, null, randomUUID());
    await db.query(`UPDATE gateways SET ready_at = now() - interval '1 minute' WHERE id = $1`, [second]);
    const org = randomUUID();
    const r = await allocate(db, org);
    expect(r).toMatchObject({
      kind: 'created',
      allocation: { gateway_id: second, gateway_url: 'http://127.0.0.1:4102', organization_id: org, state: 'active', epoch: 1 },
    });
    if (r.kind !== 'created') return;
    expect(await audit(r.allocation.allocation_id)).toEqual([{ kind: 'allocated', reason: null, epoch: 1 }]);
    const row = await allocationRow(r.allocation.allocation_id);
    expect(row).toMatchObject({ claimed_at: null, holder_instance: null, restart_deadline: null, ended_at: null });
  });

  it('answers the live allocation again for the same organization, without a second one or a second audit row', async () => {
    const a = await allocated();
    await readyGateway('http://127.0.0.1:4102'); // a free gateway is there, and must not be used
    const again = await allocate(db, a.organizationId);
    expect(again).toMatchObject({ kind: 'existing', allocation: { allocation_id: a.id, gateway_id: a.gatewayId, epoch: 1 } });
    const { rows } = await db.query('SELECT count(*)::int AS n FROM allocations WHERE organization_id = $1', [a.organizationId]);
    expect(rows[0]).toEqual({ n: 1 });
    expect(await audit(a.id)).toHaveLength(1);
  });

  it('answers the restarting allocation as existing', async () => {
    const a = await restarting();
    const again = await allocate(db, a.organizationId);
    expect(again).toMatchObject({ kind: 'existing', allocation: { allocation_id: a.id, state: 'restarting' } });
  });

  it('answers none when no gateway is ready or all are taken, and changes nothing', async () => {
    expect(await allocate(db, randomUUID())).toEqual({ kind: 'none' });
    await addGateway(db, 'http://127.0.0.1:4101'); // registered but never ready
    expect(await anyGatewayFree(db)).toBe(false);
    expect(await allocate(db, randomUUID())).toEqual({ kind: 'none' });
    await allocated(); // the only ready gateway is taken
    expect(await anyGatewayFree(db)).toBe(false);
    const before = await snapshotOf(db);
    expect(await allocate(db, randomUUID())).toEqual({ kind: 'none' });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it("gives an ended allocation's gateway and organization a new allocation once the gateway is ready again", async () => {
    const a = await claimed();
    expect((await stop(db, a.id, 1, 'stop')).kind).toBe('ok');
    expect(await allocate(db, a.organizationId)).toEqual({ kind: 'none' }); // the stopped gateway is not ready
    await ready(db, a.gatewayId, null, randomUUID());
    const next = await allocate(db, a.organizationId);
    expect(next).toMatchObject({ kind: 'created', allocation: { gateway_id: a.gatewayId, epoch: 1, state: 'active' } });
    if (next.kind === 'created') expect(next.allocation.allocation_id).not.toBe(a.id);
  });
});

describe('ready (claim and reclaim)', () => {
  it('first claim keeps epoch 1, records the holder, and writes no audit row (no transition)', async () => {
    const a = await allocated();
    const instanceId = randomUUID();
    const r = await ready(db, a.gatewayId, a.id, instanceId);
    expect(r).toMatchObject({ kind: 'ok', reclaimed: false, allocation: { allocation_id: a.id, state: 'active', epoch: 1 } });
    const row = await allocationRow(a.id);
    expect(row.holder_instance).toBe(instanceId);
    expect(row.claimed_at).not.toBeNull();
    expect(await audit(a.id)).toEqual([{ kind: 'allocated', reason: null, epoch: 1 }]);
    expect(await gatewayRow(a.gatewayId)).toMatchObject({ instance_id: instanceId });
  });

  it('a repeated /ready from the same instance changes neither epoch, holder, audit nor times', async () => {
    const a = await claimed();
    const before = { allocation: await allocationRow(a.id), gateway: await gatewayRow(a.gatewayId) };
    for (let i = 0; i < 3; i++) {
      const r = await ready(db, a.gatewayId, a.id, a.instanceId);
      expect(r).toMatchObject({ kind: 'ok', reclaimed: false, allocation: { epoch: 1, state: 'active' } });
    }
    expect(await allocationRow(a.id)).toEqual(before.allocation);
    expect((await gatewayRow(a.gatewayId)).ready_at).toEqual(before.gateway.ready_at);
    expect(await audit(a.id)).toHaveLength(1);
  });

  it('an idle gateway saying ready again keeps its place in the line; a new process of it goes to the back', async () => {
    const [a, b, c] = [
      await readyGateway('http://127.0.0.1:4101'),
      await readyGateway('http://127.0.0.1:4102'),
      await readyGateway('http://127.0.0.1:4103'),
    ];
    await ready(db, a, null, (await gatewayRow(a)).instance_id as string); // the same process, again
    await ready(db, b, null, randomUUID()); // a new process of b
    const picks = [];
    for (let i = 0; i < 3; i++) {
      const r = await allocate(db, randomUUID());
      picks.push(r.kind === 'created' ? r.allocation.gateway_id : null);
    }
    expect(picks).toEqual([a, c, b]);
  });

  it('another instance reclaims an active allocation: epoch + 1 and a "reclaimed" audit row', async () => {
    const a = await claimed();
    const next = randomUUID();
    const r = await ready(db, a.gatewayId, a.id, next);
    expect(r).toMatchObject({ kind: 'ok', reclaimed: true, allocation: { epoch: 2, state: 'active' } });
    expect(await allocationRow(a.id)).toMatchObject({ epoch: 2, holder_instance: next });
    expect(await audit(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'reclaimed', reason: 'crash', epoch: 2 },
    ]);
    // The new holder repeating itself is again a no-op.
    expect(await ready(db, a.gatewayId, a.id, next)).toMatchObject({ reclaimed: false, allocation: { epoch: 2 } });
  });

  it('restarting → active when a new process reclaims it: epoch + 1, deadline cleared', async () => {
    const a = await restarting();
    const r = await ready(db, a.gatewayId, a.id, randomUUID());
    expect(r).toMatchObject({ kind: 'ok', reclaimed: true, allocation: { state: 'active', epoch: 2, restart_deadline: null } });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 2, restart_deadline: null, restart_reason: null });
    expect(await audit(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'restart_requested', reason: 'reload', epoch: 1 },
      { kind: 'reclaimed', reason: 'restart', epoch: 2 },
    ]);
  });

  it('restarting → active is always a reclaim (epoch + 1, audited), even before any process had claimed it', async () => {
    // The process that got Ganymede's notice asked /config, then was told to restart before it said ready.
    const a = await allocated();
    expect(await requestRestart(db, a.id, 1, 'reload', 60)).toMatchObject({ kind: 'ok' });
    const r = await ready(db, a.gatewayId, a.id, randomUUID());
    expect(r).toMatchObject({ kind: 'ok', reclaimed: true, allocation: { state: 'active', epoch: 2 } });
    expect(await audit(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'restart_requested', reason: 'reload', epoch: 1 },
      { kind: 'reclaimed', reason: 'restart', epoch: 2 },
    ]);
  });

  it('restarting → active is a reclaim even from the instance that asked for the restart (a late retry)', async () => {
    const a = await restarting();
    const r = await ready(db, a.gatewayId, a.id, a.instanceId);
    expect(r).toMatchObject({ kind: 'ok', reclaimed: true, allocation: { state: 'active', epoch: 2 } });
    expect((await audit(a.id)).at(-1)).toEqual({ kind: 'reclaimed', reason: 'restart', epoch: 2 });
    // The epoch it held before the restart is now stale.
    expect(await stop(db, a.id, 1, 'stop')).toEqual({ kind: 'stale_epoch', current: 2 });
  });

  it('a /ready with no instance id (an older gateway) is a new process every time', async () => {
    const a = await claimed();
    expect(await ready(db, a.gatewayId, a.id, null)).toMatchObject({ reclaimed: true, allocation: { epoch: 2 } });
    expect(await ready(db, a.gatewayId, a.id, null)).toMatchObject({ reclaimed: true, allocation: { epoch: 3 } });
    expect((await audit(a.id)).map((e) => [e.kind, e.epoch])).toEqual([
      ['allocated', 1],
      ['reclaimed', 2],
      ['reclaimed', 3],
    ]);
  });

  it('a first claim without an instance id keeps epoch 1', async () => {
    const a = await allocated();
    expect(await ready(db, a.gatewayId, a.id, null)).toMatchObject({ reclaimed: false, allocation: { epoch: 1 } });
    expect(await audit(a.id)).toHaveLength(1);
  });

  it('an idle /ready (no allocation id) answers the allocation the gateway holds, without claiming it', async () => {
    const a = await claimed();
    const r = await ready(db, a.gatewayId, null, randomUUID());
    expect(r).toMatchObject({ kind: 'ok', reclaimed: false, allocation: { allocation_id: a.id, epoch: 1 } });
    expect(await allocationRow(a.id)).toMatchObject({ epoch: 1, holder_instance: a.instanceId });
  });

  it('marks the gateway ready and records its instance', async () => {
    const id = await addGateway(db, 'http://127.0.0.1:4101');
    expect(await gatewayRow(id)).toMatchObject({ ready_at: null, instance_id: null });
    const instanceId = randomUUID();
    await ready(db, id, null, instanceId);
    const row = await gatewayRow(id);
    expect(row.ready_at).not.toBeNull();
    expect(row.instance_id).toBe(instanceId);
  });

  it.each([
    ["another gateway's allocation", 'forbidden'],
    ['an unknown allocation', 'not_found'],
    ['an ended allocation', 'ended'],
    ['an unknown gateway', 'forbidden'],
  ] as const)('refuses %s (%s) and changes nothing', async (what, kind) => {
    const a = await claimed();
    const other = await readyGateway('http://127.0.0.1:4102');
    if (what === 'an ended allocation') await stop(db, a.id, null, 'stop');
    const [gatewayId, allocationId] =
      what === "another gateway's allocation"
        ? [other, a.id]
        : what === 'an unknown allocation'
          ? [a.gatewayId, randomUUID()]
          : what === 'an unknown gateway'
            ? [randomUUID(), a.id]
            : [a.gatewayId, a.id];
    const before = await snapshotOf(db);
    expect(await ready(db, gatewayId, allocationId, randomUUID())).toEqual({ kind });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('refuses an unknown gateway even when idle', async () => {
    const before = await snapshotOf(db);
    expect(await ready(db, randomUUID(), null, randomUUID())).toEqual({ kind: 'forbidden' });
    expect(await snapshotOf(db)).toEqual(before);
  });
});

describe('requestRestart', () => {
  it('active → restarting with deadline now() + grace and a "restart_requested" audit row', async () => {
    const a = await claimed();
    const r = await requestRestart(db, a.id, 1, 'deploy', 30);
    expect(r).toMatchObject({ kind: 'ok', allocation: { allocation_id: a.id, state: 'restarting', epoch: 1 } });
    if (r.kind === 'ok') expect(r.allocation.restart_deadline).not.toBeNull();
    expect(await graceOf(a.id)).toBe(30);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'restarting', restart_reason: 'deploy', epoch: 1 });
    expect((await audit(a.id)).at(-1)).toEqual({ kind: 'restart_requested', reason: 'deploy', epoch: 1 });
    // The gateway stays in the pool, held by this allocation.
    expect((await gatewayRow(a.gatewayId)).ready_at).not.toBeNull();
  });

  it('a repeat keeps the first deadline (even asking for more) and writes no second audit row', async () => {
    const a = await restarting(30);
    const before = await allocationRow(a.id);
    const deadline = before.restart_deadline;
    for (const grace of [600, 5]) {
      const r = await requestRestart(db, a.id, 1, 'restart', grace);
      expect(r).toMatchObject({ kind: 'ok', allocation: { state: 'restarting', epoch: 1 } });
    }
    expect((await allocationRow(a.id)).restart_deadline).toEqual(deadline);
    expect((await allocationRow(a.id)).updated_at).toEqual(before.updated_at);
    expect((await audit(a.id)).filter((e) => e.kind === 'restart_requested')).toHaveLength(1);
  });

  it('without an epoch it is accepted (older gateways)', async () => {
    const a = await claimed();
    await ready(db, a.gatewayId, a.id, randomUUID()); // epoch 2
    expect(await requestRestart(db, a.id, null, 'reload', 60)).toMatchObject({ kind: 'ok', allocation: { state: 'restarting', epoch: 2 } });
  });

  it.each([1, 3])('a stale epoch (%i while at 2) changes nothing', async (epoch) => {
    const a = await claimed();
    await ready(db, a.gatewayId, a.id, randomUUID()); // epoch 2
    const before = await snapshotOf(db);
    expect(await requestRestart(db, a.id, epoch, 'reload', 60)).toEqual({ kind: 'stale_epoch', current: 2 });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('a stale epoch on a restarting allocation changes nothing either', async () => {
    const a = await restarting();
    await ready(db, a.gatewayId, a.id, randomUUID()); // reclaimed: epoch 2, active
    await requestRestart(db, a.id, 2, 'reload', 60); // restarting at epoch 2
    const before = await snapshotOf(db);
    expect(await requestRestart(db, a.id, 1, 'reload', 60)).toEqual({ kind: 'stale_epoch', current: 2 });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('answers ended for an ended allocation (whatever the epoch) and not_found for an unknown one', async () => {
    const a = await claimed();
    await stop(db, a.id, 1, 'stop');
    const before = await snapshotOf(db);
    expect(await requestRestart(db, a.id, 1, 'reload', 60)).toEqual({ kind: 'ended' });
    expect(await requestRestart(db, a.id, 7, 'reload', 60)).toEqual({ kind: 'ended' });
    expect(await requestRestart(db, a.id, null, 'reload', 60)).toEqual({ kind: 'ended' });
    expect(await requestRestart(db, randomUUID(), null, 'reload', 60)).toEqual({ kind: 'not_found' });
    expect(await snapshotOf(db)).toEqual(before);
  });
});

describe('withdrawRestart', () => {
  it('restarting → active at the same epoch, deadline and reason cleared, a "restart_withdrawn" audit row', async () => {
    const a = await restarting();
    const gatewayBefore = await gatewayRow(a.gatewayId);
    const r = await withdrawRestart(db, a.id, 1);
    expect(r).toMatchObject({ kind: 'ok', allocation: { allocation_id: a.id, state: 'active', epoch: 1, restart_deadline: null } });
    expect(await allocationRow(a.id)).toMatchObject({
      state: 'active',
      epoch: 1,
      restart_deadline: null,
      restart_reason: null,
      holder_instance: a.instanceId,
    });
    expect(await audit(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'restart_requested', reason: 'reload', epoch: 1 },
      { kind: 'restart_withdrawn', reason: null, epoch: 1 },
    ]);
    // The same process keeps serving: the gateway's row (its process, its place in the pool) is untouched but for
    // its lease, renewed (the process did not renew while its successor booted).
    const { lease_expires_at, ...rest } = await gatewayRow(a.gatewayId);
    const { lease_expires_at: leaseBefore, ...restBefore } = gatewayBefore;
    expect(rest).toEqual(restBefore);
    expect(new Date(lease_expires_at as string | Date).getTime()).toBeGreaterThanOrEqual(new Date(leaseBefore as string | Date).getTime());
  });

  it('renews the lease a long handover let lapse: the reaper does not end the allocation it withdrew', async () => {
    const a = await restarting();
    await db.query(`UPDATE gateways SET lease_expires_at = now() - interval '1 hour' WHERE id = $1`, [a.gatewayId]);
    await withdrawRestart(db, a.id, 1, 10);
    const { rows } = await db.query<{ fresh: boolean }>(
      `SELECT lease_expires_at > now() + interval '5 seconds' AS fresh FROM gateways WHERE id = $1`,
      [a.gatewayId],
    );
    expect(rows[0]?.fresh).toBe(true);
    expect(await expireLeases(db, 0)).toEqual([]);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 1 });
  });

  it('already active at that epoch (a repeat, or no restart at all): ok, and nothing changes', async () => {
    const a = await restarting();
    await withdrawRestart(db, a.id, 1);
    const b = await claimed();
    const before = await snapshotOf(db);
    expect(await withdrawRestart(db, a.id, 1)).toMatchObject({ kind: 'ok', allocation: { state: 'active', epoch: 1 } });
    expect(await withdrawRestart(db, b.id, 1)).toMatchObject({ kind: 'ok', allocation: { state: 'active', epoch: 1 } });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it.each([1, 3])('a stale epoch (%i while at 2) changes nothing, restarting or active', async (epoch) => {
    const a = await restarting();
    await ready(db, a.gatewayId, a.id, randomUUID()); // reclaimed by a successor: epoch 2, active
    let before = await snapshotOf(db);
    expect(await withdrawRestart(db, a.id, epoch)).toEqual({ kind: 'stale_epoch', current: 2 });
    expect(await snapshotOf(db)).toEqual(before);
    await requestRestart(db, a.id, 2, 'reload', 60); // restarting at epoch 2
    before = await snapshotOf(db);
    expect(await withdrawRestart(db, a.id, epoch)).toEqual({ kind: 'stale_epoch', current: 2 });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('answers ended for an ended allocation (whatever the epoch) and not_found for an unknown one', async () => {
    const a = await restarting();
    await moveDeadlineIntoThePast(a.id);
    await expireRestarts(db);
    const before = await snapshotOf(db);
    expect(await withdrawRestart(db, a.id, 1)).toEqual({ kind: 'ended' });
    expect(await withdrawRestart(db, a.id, 7)).toEqual({ kind: 'ended' });
    expect(await withdrawRestart(db, randomUUID(), 1)).toEqual({ kind: 'not_found' });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('writes the transition and its audit row in one statement: a failing audit insert leaves it restarting', async () => {
    const a = await restarting();
    await db.exec(`ALTER TABLE allocation_events ADD CONSTRAINT test_no_withdrawn CHECK (kind <> 'restart_withdrawn')`);
    try {
      await expect(withdrawRestart(db, a.id, 1)).rejects.toMatchObject({ code: '23514' });
    } finally {
      await db.exec('ALTER TABLE allocation_events DROP CONSTRAINT test_no_withdrawn');
    }
    expect(await allocationRow(a.id)).toMatchObject({ state: 'restarting', restart_reason: 'reload' });
  });

  it("a withdrawal and a successor's reclaim issued together: one wins, and the answers and the audit agree", async () => {
    const a = await restarting();
    const successor = randomUUID();
    const [withdrawn, reclaimed] = await Promise.all([withdrawRestart(db, a.id, 1), ready(db, a.gatewayId, a.id, successor)]);
    const kinds = (await audit(a.id)).map((e) => `${e.kind}@${e.epoch}`);
    if (withdrawn.kind === 'ok') {
      // Withdrawn first: the successor's /ready then took over an active allocation (a crash reclaim).
      expect(reclaimed).toMatchObject({ kind: 'ok', reclaimed: true, allocation: { state: 'active', epoch: 2 } });
      expect(kinds).toEqual(['allocated@1', 'restart_requested@1', 'restart_withdrawn@1', 'reclaimed@2']);
    } else {
      expect(withdrawn).toEqual({ kind: 'stale_epoch', current: 2 });
      expect(kinds).toEqual(['allocated@1', 'restart_requested@1', 'reclaimed@2']);
    }
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 2, holder_instance: successor });
  });

  it("the old process takes back what its killed successor reclaimed: a 'takeback' reclaim, never a crash loop", async () => {
    const a = await claimed();
    const old = a.instanceId;
    // More handovers than the crash-loop limit, each failing the same way: the successor reclaims, is killed, and
    // the old process, which served throughout, claims the allocation back.
    const tries = DEFAULT_LIVENESS.crashLoopLimit + 2;
    for (let i = 0; i < tries; i++) {
      const epoch = 1 + 2 * i;
      expect(await requestRestart(db, a.id, epoch, 'reload', 60)).toMatchObject({ kind: 'ok' });
      const successor = await ready(db, a.gatewayId, a.id, randomUUID());
      expect(successor).toMatchObject({ kind: 'ok', reclaimed: true, reclaim: { reason: 'restart' }, allocation: { epoch: epoch + 1 } });
      const takeback = await ready(db, a.gatewayId, a.id, old);
      expect(takeback).toMatchObject({ kind: 'ok', reclaimed: true, reclaim: { reason: 'takeback' }, allocation: { epoch: epoch + 2 } });
    }
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 1 + 2 * tries, holder_instance: old, crash_reclaims: 0 });
    expect((await audit(a.id)).filter((e) => e.kind === 'reclaimed').map((e) => e.reason)).toEqual(
      Array.from({ length: tries }, () => ['restart', 'takeback']).flat(),
    );
    // A process that never held it is still a crash, and enough of them still end it.
    for (let i = 1; i < DEFAULT_LIVENESS.crashLoopLimit; i++) {
      expect(await ready(db, a.gatewayId, a.id, randomUUID())).toMatchObject({ kind: 'ok', reclaim: { reason: 'crash' } });
    }
    expect(await ready(db, a.gatewayId, a.id, randomUUID())).toMatchObject({ kind: 'crash_loop' });
  });
});

describe('stop', () => {
  it('active → ended with the reason, a "stopped" audit row, and the gateway out of the pool', async () => {
    const a = await claimed();
    const r = await stop(db, a.id, 1, 'idle');
    expect(r).toMatchObject({ kind: 'ok', allocation: { state: 'ended', epoch: 1, ended_reason: 'idle', restart_deadline: null } });
    if (r.kind === 'ok') expect(r.allocation.ended_at).not.toBeNull();
    expect((await audit(a.id)).at(-1)).toEqual({ kind: 'stopped', reason: 'idle', epoch: 1 });
    expect(await gatewayRow(a.gatewayId)).toMatchObject({ ready_at: null, instance_id: null });
    expect(await liveAllocationOfGateway(db, a.gatewayId)).toBeNull();
  });

  it('restarting → ended, deadline cleared', async () => {
    const a = await restarting();
    const r = await stop(db, a.id, 1, 'decommission');
    expect(r).toMatchObject({ kind: 'ok', allocation: { state: 'ended', ended_reason: 'decommission', restart_deadline: null } });
    expect((await audit(a.id)).map((e) => e.kind)).toEqual(['allocated', 'restart_requested', 'stopped']);
  });

  it('without an epoch it is accepted', async () => {
    const a = await claimed();
    await ready(db, a.gatewayId, a.id, randomUUID());
    expect(await stop(db, a.id, null, 'stop')).toMatchObject({ kind: 'ok', allocation: { epoch: 2, state: 'ended' } });
  });

  it.each([1, 3])('a stale epoch (%i while at 2) changes nothing', async (epoch) => {
    const a = await claimed();
    await ready(db, a.gatewayId, a.id, randomUUID());
    const before = await snapshotOf(db);
    expect(await stop(db, a.id, epoch, 'stop')).toEqual({ kind: 'stale_epoch', current: 2 });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('a repeat answers ended and changes nothing; an unknown id answers not_found', async () => {
    const a = await claimed();
    await stop(db, a.id, 1, 'stop');
    const before = await snapshotOf(db);
    expect(await stop(db, a.id, 1, 'stop')).toEqual({ kind: 'ended' });
    expect(await stop(db, a.id, null, 'idle')).toEqual({ kind: 'ended' });
    expect(await stop(db, randomUUID(), null, 'stop')).toEqual({ kind: 'not_found' });
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('writes the transition and its audit row in one statement: a failing audit insert leaves the allocation live', async () => {
    const a = await claimed();
    await db.exec(`ALTER TABLE allocation_events ADD CONSTRAINT test_no_stopped CHECK (kind <> 'stopped')`);
    try {
      await expect(stop(db, a.id, 1, 'stop')).rejects.toMatchObject({ code: '23514' });
    } finally {
      await db.exec('ALTER TABLE allocation_events DROP CONSTRAINT test_no_stopped');
    }
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', ended_at: null });
    expect((await gatewayRow(a.gatewayId)).ready_at).not.toBeNull();
  });
});

describe('rollBack (the notified gateway did not answer)', () => {
  it('ends a never-claimed allocation with gateway_unreachable, audits "rolled_back", takes the gateway out of the pool', async () => {
    const a = await allocated();
    expect(await rollBack(db, a.id)).toBe(true);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', ended_reason: 'gateway_unreachable' });
    expect((await audit(a.id)).at(-1)).toEqual({ kind: 'rolled_back', reason: 'gateway_unreachable', epoch: 1 });
    // Out of the pool, but its process is still the gateway's: a lease renewal from it puts it back.
    const before = await gatewayRow(a.gatewayId);
    expect(before.ready_at).toBeNull();
    expect(before.instance_id).not.toBeNull();
    // A repeat does nothing.
    const snapshot = await snapshotOf(db);
    expect(await rollBack(db, a.id)).toBe(false);
    expect(await snapshotOf(db)).toEqual(snapshot);
  });

  it('leaves a claimed (the answer was lost) or restarting allocation alone', async () => {
    const a = await claimed();
    const b = await restarting();
    const before = await snapshotOf(db);
    expect(await rollBack(db, a.id)).toBe(false);
    expect(await rollBack(db, b.id)).toBe(false);
    expect(await rollBack(db, randomUUID())).toBe(false);
    expect(await snapshotOf(db)).toEqual(before);
  });
});

describe('expireRestarts (the reaper)', () => {
  it('ends restarts whose deadline passed (database clock) with restart_timeout, and only those', async () => {
    const expired = await restarting();
    const pending = await restarting();
    const active = await claimed();
    await moveDeadlineIntoThePast(expired.id);
    const ended = await expireRestarts(db);
    expect(ended).toHaveLength(1);
    expect(ended[0]).toMatchObject({ allocation_id: expired.id, state: 'ended', ended_reason: 'restart_timeout', epoch: 1 });
    expect(await allocationRow(expired.id)).toMatchObject({ state: 'ended', ended_reason: 'restart_timeout', restart_deadline: null });
    expect((await audit(expired.id)).at(-1)).toEqual({ kind: 'restart_timed_out', reason: 'restart_timeout', epoch: 1 });
    expect(await gatewayRow(expired.gatewayId)).toMatchObject({ ready_at: null, instance_id: null });

    expect(await allocationRow(pending.id)).toMatchObject({ state: 'restarting' });
    expect(await allocationRow(active.id)).toMatchObject({ state: 'active' });
    expect((await audit(pending.id)).map((e) => e.kind)).toEqual(['allocated', 'restart_requested']);
    expect((await gatewayRow(pending.gatewayId)).ready_at).not.toBeNull();
  });

  it('a second run finds nothing and changes nothing', async () => {
    const a = await restarting();
    await moveDeadlineIntoThePast(a.id);
    expect(await expireRestarts(db)).toHaveLength(1);
    const before = await snapshotOf(db);
    expect(await expireRestarts(db)).toEqual([]);
    expect(await snapshotOf(db)).toEqual(before);
  });

  it('a reclaim after expiry answers ended; the epoch is the one it expired at', async () => {
    const a = await restarting();
    await moveDeadlineIntoThePast(a.id);
    await expireRestarts(db);
    expect(await ready(db, a.gatewayId, a.id, randomUUID())).toEqual({ kind: 'ended' });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', epoch: 1 });
  });

  it('a reclaim before the reaper runs wins: the allocation is no longer restarting', async () => {
    const a = await restarting();
    await moveDeadlineIntoThePast(a.id);
    expect(await ready(db, a.gatewayId, a.id, randomUUID())).toMatchObject({ kind: 'ok', allocation: { state: 'active', epoch: 2 } });
    expect(await expireRestarts(db)).toEqual([]);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active' });
  });
});

describe('schema guards', () => {
  const insertLive = (gatewayId: string, organizationId: string) =>
    db.query(`INSERT INTO allocations (gateway_id, organization_id, state) VALUES ($1, $2, 'active')`, [gatewayId, organizationId]);
  const insertEnded = (gatewayId: string, organizationId: string) =>
    db.query(
      `INSERT INTO allocations (gateway_id, organization_id, state, ended_at, ended_reason) VALUES ($1, $2, 'ended', now(), 'stop')`,
      [gatewayId, organizationId],
    );

  it('refuses a second live allocation on one gateway (23505)', async () => {
    const a = await allocated();
    await expect(insertLive(a.gatewayId, randomUUID())).rejects.toMatchObject({ code: PG_ERRORS.uniqueViolation });
    const b = await restarting();
    await expect(insertLive(b.gatewayId, randomUUID())).rejects.toMatchObject({ code: PG_ERRORS.uniqueViolation });
  });

  it('refuses a second live allocation for one organization (23505)', async () => {
    const a = await allocated();
    const other = await addGateway(db, 'http://127.0.0.1:4102');
    await expect(insertLive(other, a.organizationId)).rejects.toMatchObject({ code: PG_ERRORS.uniqueViolation });
  });

  it('allows any number of ended allocations beside a live one', async () => {
    const a = await allocated();
    await insertEnded(a.gatewayId, a.organizationId);
    await insertEnded(a.gatewayId, a.organizationId);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM allocations WHERE gateway_id = $1', [a.gatewayId]);
    expect(rows[0]).toEqual({ n: 3 });
  });

  it('an ended allocation never changes again', async () => {
    const a = await claimed();
    await stop(db, a.id, 1, 'stop');
    const attempts = [
      `UPDATE allocations SET state = 'active', ended_at = NULL, ended_reason = NULL WHERE id = $1`,
      `UPDATE allocations SET updated_at = now() WHERE id = $1`,
      `UPDATE allocations SET epoch = epoch + 1 WHERE id = $1`,
    ];
    for (const sql of attempts) await expect(db.query(sql, [a.id])).rejects.toMatchObject({ code: '23514' });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', epoch: 1 });
  });

  it('an epoch never decreases', async () => {
    const a = await claimed();
    await ready(db, a.gatewayId, a.id, randomUUID()); // epoch 2
    await expect(db.query('UPDATE allocations SET epoch = 1 WHERE id = $1', [a.id])).rejects.toMatchObject({ code: '23514' });
    await expect(db.query('UPDATE allocations SET epoch = 0 WHERE id = $1', [a.id])).rejects.toMatchObject({ code: '23514' });
    expect((await allocationRow(a.id)).epoch).toBe(2);
    await db.query('UPDATE allocations SET epoch = epoch WHERE id = $1', [a.id]); // equal is fine
  });

  it('states carry their fields: restarting has a deadline, ended a time and reason', async () => {
    const a = await allocated();
    await expect(db.query(`UPDATE allocations SET state = 'restarting' WHERE id = $1`, [a.id])).rejects.toMatchObject({ code: '23514' });
    await expect(db.query(`UPDATE allocations SET state = 'ended' WHERE id = $1`, [a.id])).rejects.toMatchObject({ code: '23514' });
    await expect(db.query(`UPDATE allocations SET state = 'paused' WHERE id = $1`, [a.id])).rejects.toMatchObject({ code: '23514' });
  });
});

describe('concurrency (truly concurrent on PostgreSQL; serialized by PGlite)', () => {
  it('20 concurrent allocate() for one organization make exactly one allocation', async () => {
    for (let i = 0; i < 5; i++) await readyGateway(`http://127.0.0.1:${4101 + i}`);
    const org = randomUUID();
    const results = await Promise.all(Array.from({ length: 20 }, () => allocate(db, org)));
    expect(results.filter((r) => r.kind === 'created')).toHaveLength(1);
    const ids = new Set(results.map((r) => (r.kind === 'none' ? null : r.allocation.allocation_id)));
    expect(ids.size).toBe(1);
    expect(ids.has(null)).toBe(false);
    const { rows } = await db.query('SELECT count(*)::int AS n FROM allocations');
    expect(rows[0]).toEqual({ n: 1 });
    const { rows: events } = await db.query('SELECT count(*)::int AS n FROM allocation_events');
    expect(events[0]).toEqual({ n: 1 });
  });

  it("an allocate that loses a race it could not see answers the winner's allocation, not none", async () => {
    await readyGateway('http://127.0.0.1:4101');
    await readyGateway('http://127.0.0.1:4102');
    const org = randomUUID();
    let loser: ReturnType<typeof allocate> | undefined;
    const winner = await db.transaction(async (tx) => {
      const won = await allocate(tx, org);
      loser = allocate(db, org);
      // On PostgreSQL the loser's statement starts before the winner commits: it skips the winner's locked
      // gateway, takes the other, and waits on the organization's unique index, its snapshot blind to the
      // winner. (PGlite queues it behind this transaction instead.)
      if (onPostgres) await blockedBy((await tx.query<{ pid: number }>('SELECT pg_backend_pid() AS pid')).rows[0]!.pid);
      return won;
    });
    expect(winner.kind).toBe('created');
    const lost = await loser!;
    expect(lost).toMatchObject({
      kind: 'existing',
      allocation: { allocation_id: winner.kind === 'created' && winner.allocation.allocation_id },
    });
    const { rows } = await db.query('SELECT count(*)::int AS n FROM allocations');
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('10 organizations over 5 gateways: exactly 5 allocations, no gateway twice', async () => {
    const gateways = [];
    for (let i = 0; i < 5; i++) gateways.push(await readyGateway(`http://127.0.0.1:${4101 + i}`));
    const orgs = Array.from({ length: 10 }, () => randomUUID());
    const results = await Promise.all(orgs.map((org) => allocate(db, org)));
    const created = results.flatMap((r) => (r.kind === 'created' ? [r.allocation] : []));
    expect(created).toHaveLength(5);
    expect(results.filter((r) => r.kind === 'none')).toHaveLength(5);
    expect(new Set(created.map((a) => a.gateway_id))).toEqual(new Set(gateways));
    expect(new Set(created.map((a) => a.organization_id)).size).toBe(5);
    const pool = await poolStatus(db, 10);
    expect(pool.filter((g) => g.state === 'active')).toHaveLength(5);
  });

  it('a restart and a stop issued together apply in turn: the answers and the audit tell the same order', async () => {
    const a = await claimed();
    const [restart, stopped] = await Promise.all([requestRestart(db, a.id, 1, 'reload', 60), stop(db, a.id, 1, 'stop')]);
    // Either order is allowed (PostgreSQL may run them either way); a stop always wins in the end.
    expect(stopped.kind).toBe('ok');
    expect(await getAllocation(db, a.id)).toMatchObject({ state: 'ended', ended_reason: 'stop' });
    const kinds = (await audit(a.id)).map((e) => e.kind);
    if (restart.kind === 'ok') expect(kinds).toEqual(['allocated', 'restart_requested', 'stopped']);
    else expect({ restart: restart.kind, kinds }).toEqual({ restart: 'ended', kinds: ['allocated', 'stopped'] });
  });
});
