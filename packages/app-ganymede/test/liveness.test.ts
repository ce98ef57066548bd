/**
 * Liveness over real HTTP: lease renewal (`POST /gateway/lease`, one statement, fenced by instance and epoch),
 * what a renewal puts back in the pool, lapsed leases kept out of it, lease expiry past the grace,
 * crash-loop release, the failover grace after a control-plane outage, and each expired item ended once.
 *
 * Time never passes by sleeping: leases, deadlines, audit times and the control plane's heartbeat are moved
 * into the past in SQL, and the reaper is run by hand (its timer is stopped).
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bearer, closedUrl, controlPlaneOf, recordQueries, useGanymede } from './support.js';
import { inProcessGateway } from './in-process-gateway.js';
import { expireLeases } from '../src/sql/liveness.js';
import { expireRestarts } from '../src/sql/transitions.js';

const LEASE = 10;
const GRACE = 10;
const CRASH_LOOP_LIMIT = 3;
const WINDOW = 300;

const g = useGanymede({
  leaseSeconds: LEASE,
  leaseGraceSeconds: GRACE,
  crashLoopLimit: CRASH_LOOP_LIMIT,
  crashLoopWindowSeconds: WINDOW,
  manualReaper: true,
});

type Auth = { authorization: string };
type Gw = Awaited<ReturnType<typeof gateway>>;

const sql = <T = Record<string, unknown>>(text: string, params?: unknown[]) => g.ganymede.db.query<T>(text, params);
const reap = () => g.ganymede.reaper.runOnce();
const gateway = (url = g.target.url) => g.addReadyGateway(url);

/** A fresh organization allocated to a fresh gateway (or `gw`), claimed by a process (`instanceId`, the gateway's current one). */
const live = (gw?: Gw) => g.live(gw);
type Live = Awaited<ReturnType<typeof live>>;

const renew = (auth: Auth, instance_id: string, allocation_id: string | null, epoch?: number) =>
  g.client.lease({ headers: auth, body: { instance_id, allocation_id, ...(epoch === undefined ? {} : { epoch }) } });

/** A new process of the allocation's gateway takes it over (a crash reclaim when it is active). */
const reclaim = (a: Live, instance_id: string = randomUUID()) =>
  g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id } });

const start = async (organizationId: string) =>
  g.client.start({ headers: await g.userToken(organizationId), body: { organization_id: organizationId } });

async function gatewayRow(id: string) {
  return (await sql('SELECT * FROM gateways WHERE id = $1', [id])).rows[0]!;
}
async function allocationRow(id: string) {
  return (await sql('SELECT * FROM allocations WHERE id = $1', [id])).rows[0]!;
}
async function audit(id: string) {
  const { rows } = await sql<{ kind: string; reason: string | null; epoch: number }>(
    'SELECT kind, reason, epoch FROM allocation_events WHERE allocation_id = $1 ORDER BY id',
    [id],
  );
  return rows.map((r) => ({ ...r, epoch: Number(r.epoch) }));
}
async function poolEntry(gatewayId: string) {
  const res = await g.client.status({ headers: g.admin });
  if (res.status !== 200) throw new Error(`status answered ${res.status}`);
  return res.body.gateways.find((e) => e.gateway_id === gatewayId)!;
}

/** The gateway's lease lapsed `secondsAgo` seconds ago (database clock). */
const lapse = (gatewayId: string, secondsAgo: number) =>
  sql('UPDATE gateways SET lease_expires_at = now() - make_interval(secs => $2) WHERE id = $1', [gatewayId, secondsAgo]);
/** Seconds until the gateway's lease lapses (database clock). */
async function leaseLeft(gatewayId: string) {
  const { rows } = await sql<{ left: number }>(
    'SELECT extract(epoch FROM lease_expires_at - now())::float8 AS left FROM gateways WHERE id = $1',
    [gatewayId],
  );
  return rows[0]!.left;
}

/** An allocation restarting past its deadline. */
async function expiredRestart() {
  const a = await live();
  expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch: 1 } })).status).toBe(200);
  await sql(`UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE id = $1`, [a.id]);
  return a;
}

/** An active allocation whose gateway renewed once, then let its lease lapse past the grace. */
async function expiredLease() {
  const a = await live();
  expect((await renew(a.gw.auth, a.instanceId, a.id, 1)).status).toBe(200);
  await lapse(a.gw.gatewayId, GRACE + 1);
  return a;
}

describe('POST /gateway/lease: renewal', () => {
  it('answers a lease of leaseSeconds from the database clock, and the allocation the process serves', async () => {
    const a = await live();
    const res = await renew(a.gw.auth, a.instanceId, a.id, 1);
    expect(res).toMatchObject({
      status: 200,
      body: {
        lease: { seconds: LEASE },
        allocation: { allocation_id: a.id, organization_id: a.organizationId, state: 'active', epoch: 1 },
      },
    });
    if (res.status !== 200) return;
    const row = await gatewayRow(a.gw.gatewayId);
    expect(new Date(row.lease_expires_at as string).toISOString()).toBe(res.body.lease.expires_at);
    const left = await leaseLeft(a.gw.gatewayId);
    expect(left).toBeGreaterThan(LEASE - 5);
    expect(left).toBeLessThanOrEqual(LEASE);
  });

  it('without an epoch (the allocation is named, not its epoch) it renews too', async () => {
    const a = await live();
    expect(await renew(a.gw.auth, a.instanceId, a.id)).toMatchObject({ status: 200, body: { allocation: { epoch: 1 } } });
  });

  it('each renewal is one statement (one round trip), whatever it answers', async () => {
    const a = await live();
    const idle = await gateway();
    const calls: [string, () => Promise<{ status: number }>, number][] = [
      ['serving', () => renew(a.gw.auth, a.instanceId, a.id, 1), 200],
      ['idle', () => renew(idle.auth, idle.instanceId, null), 200],
      ['stale epoch', () => renew(a.gw.auth, a.instanceId, a.id, 5), 409],
      ['superseded', () => renew(a.gw.auth, randomUUID(), a.id, 1), 409],
      ['unknown allocation', () => renew(a.gw.auth, a.instanceId, randomUUID(), 1), 409],
      ["another gateway's allocation", () => renew(idle.auth, idle.instanceId, a.id, 1), 403],
    ];
    for (const [what, call, status] of calls) {
      const recorder = recordQueries(g.ganymede.db);
      let res;
      try {
        res = await call();
      } finally {
        recorder.stop();
      }
      expect(res.status, what).toBe(status);
      expect(recorder.texts, what).toHaveLength(1);
    }
  });

  it("/gateway/ready's answer carries the lease: null until the process first renews, then renewed by each /ready", async () => {
    const gw = await gateway();
    const first = await g.client.ready({ headers: gw.auth, body: { allocation_id: null, instance_id: gw.instanceId } });
    expect(first).toMatchObject({ status: 200, body: { lease: { expires_at: null, seconds: LEASE } } });
    expect((await gatewayRow(gw.gatewayId)).lease_expires_at).toBeNull();

    expect((await renew(gw.auth, gw.instanceId, null)).status).toBe(200);
    await lapse(gw.gatewayId, 1);
    const again = await g.client.ready({ headers: gw.auth, body: { allocation_id: null, instance_id: gw.instanceId } });
    expect(again.status).toBe(200);
    if (again.status !== 200) return;
    expect(again.body.lease.expires_at).not.toBeNull();
    expect(new Date(again.body.lease.expires_at!).toISOString()).toBe(
      new Date((await gatewayRow(gw.gatewayId)).lease_expires_at as string).toISOString(),
    );
    expect(await leaseLeft(gw.gatewayId)).toBeGreaterThan(LEASE - 5);
  });
});

describe('POST /gateway/lease: fencing refuses, and changes nothing', () => {
  /** Each sets up a world and answers the refused renewal with what it must answer. */
  const FENCED: [string, () => Promise<{ send: () => Promise<{ status: number; body: unknown }>; status: number; error: string }>][] = [
    [
      'another process of the gateway said ready since (superseded)',
      async () => {
        const a = await live();
        expect((await reclaim(a)).status).toBe(200);
        return { send: () => renew(a.gw.auth, a.instanceId, a.id, 1), status: 409, error: 'superseded' };
      },
    ],
    [
      'an idle process whose gateway another process took over (superseded)',
      async () => {
        const gw = await gateway();
        expect((await g.client.ready({ headers: gw.auth, body: { allocation_id: null, instance_id: randomUUID() } })).status).toBe(200);
        return { send: () => renew(gw.auth, gw.instanceId, null), status: 409, error: 'superseded' };
      },
    ],
    [
      'the process names the epoch its allocation left (stale_epoch)',
      async () => {
        const a = await live();
        // The same process asked for a restart and reclaimed it (a late retry): the allocation is at epoch 2.
        expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch: 1 } })).status).toBe(200);
        expect(await reclaim(a, a.instanceId)).toMatchObject({ status: 200, body: { allocation: { epoch: 2 } } });
        return { send: () => renew(a.gw.auth, a.instanceId, a.id, 1), status: 409, error: 'stale_epoch' };
      },
    ],
    [
      'the allocation ended under the process: its lease expired (allocation_ended)',
      async () => {
        const a = await expiredLease();
        expect(await reap()).toBe(1);
        return { send: () => renew(a.gw.auth, a.instanceId, a.id, 1), status: 409, error: 'allocation_ended' };
      },
    ],
    [
      'the allocation ended under the process: it was stopped (allocation_ended)',
      async () => {
        const a = await live();
        expect((await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop', epoch: 1 } })).status).toBe(200);
        return { send: () => renew(a.gw.auth, a.instanceId, a.id, 1), status: 409, error: 'allocation_ended' };
      },
    ],
    [
      'the allocation never existed (allocation_ended)',
      async () => {
        const a = await live();
        return { send: () => renew(a.gw.auth, a.instanceId, randomUUID(), 1), status: 409, error: 'allocation_ended' };
      },
    ],
    [
      "another gateway's allocation (forbidden)",
      async () => {
        const a = await live();
        const other = await gateway();
        return { send: () => renew(other.auth, other.instanceId, a.id, 1), status: 403, error: 'forbidden' };
      },
    ],
    [
      'a gateway that is not registered (forbidden)',
      async () => {
        await live();
        const token = bearer(await g.ganymede.tokens.sign({ typ: 'gateway', sub: randomUUID() }));
        return { send: () => renew(token, randomUUID(), null), status: 403, error: 'forbidden' };
      },
    ],
  ];

  it.each(FENCED)('%s', async (_, setUp) => {
    const { send, status, error } = await setUp();
    const before = await g.snapshot();
    const res = await send();
    expect(res, JSON.stringify(res.body)).toMatchObject({ status, body: { error } });
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('what a renewal brings back into the pool', () => {
  it('an idle renewal answers an allocation that raced in; the process then claims it at epoch 1', async () => {
    const gw = await gateway();
    const org = randomUUID();
    // The notice target takes Ganymede's notice without claiming: the allocation waits for the process.
    const started = await start(org);
    expect(started.status).toBe(201);
    if (started.status !== 201) return;
    const res = await renew(gw.auth, gw.instanceId, null);
    expect(res).toMatchObject({
      status: 200,
      body: { allocation: { allocation_id: started.body.allocation_id, organization_id: org, state: 'active', epoch: 1 } },
    });
    const claim = await g.client.ready({
      headers: gw.auth,
      body: { allocation_id: started.body.allocation_id, instance_id: gw.instanceId },
    });
    expect(claim).toMatchObject({ status: 200, body: { reclaimed: false, allocation: { epoch: 1, state: 'active' } } });
    expect(await audit(started.body.allocation_id)).toEqual([{ kind: 'allocated', reason: null, epoch: 1 }]);
  });

  it('a rolled-back gateway (it missed the notice) is back in the pool once its process renews', async () => {
    const gw = await gateway(await closedUrl());
    expect((await start(randomUUID())).status).toBe(503);
    expect(await poolEntry(gw.gatewayId)).toMatchObject({ ready: false });
    expect(await renew(gw.auth, gw.instanceId, null)).toMatchObject({ status: 200, body: { allocation: null } });
    expect(await poolEntry(gw.gatewayId)).toMatchObject({ ready: true, state: 'idle' });
    // Its process listens again: the next /start gets it.
    await sql('UPDATE gateways SET url = $1 WHERE id = $2', [g.target.url, gw.gatewayId]);
    expect(await start(randomUUID())).toMatchObject({ status: 201, body: { gateway_id: gw.gatewayId } });
  });

  it('a gateway whose lease expired is back in the pool once its (resumed) process renews idle', async () => {
    const a = await expiredLease();
    expect(await reap()).toBe(1);
    expect(await poolEntry(a.gw.gatewayId)).toMatchObject({ ready: false, state: 'idle' });
    expect((await start(randomUUID())).status).toBe(503);
    // The process learns its allocation ended, drops it, and renews idle.
    expect(await renew(a.gw.auth, a.instanceId, a.id, 1)).toMatchObject({ status: 409, body: { error: 'allocation_ended' } });
    expect(await renew(a.gw.auth, a.instanceId, null)).toMatchObject({ status: 200, body: { allocation: null } });
    expect(await poolEntry(a.gw.gatewayId)).toMatchObject({ ready: true, state: 'idle' });
    expect(await start(randomUUID())).toMatchObject({ status: 201, body: { gateway_id: a.gw.gatewayId } });
  });
});

describe('lapsed leases and the pool', () => {
  it('a gateway whose lease lapsed is never allocated, even within the grace and longest ready', async () => {
    const lapsed = await gateway();
    const fresh = await gateway();
    for (const gw of [lapsed, fresh]) expect((await renew(gw.auth, gw.instanceId, null)).status).toBe(200);
    await sql(`UPDATE gateways SET ready_at = now() - interval '1 hour' WHERE id = $1`, [lapsed.gatewayId]);
    await lapse(lapsed.gatewayId, 1);
    expect(await start(randomUUID())).toMatchObject({ status: 201, body: { gateway_id: fresh.gatewayId } });
    const before = await g.snapshot();
    expect(await start(randomUUID())).toMatchObject({ status: 503, body: { error: 'no_gateway_available' } });
    expect(await g.snapshot()).toEqual(before);
  });

  it('a gateway that never renewed (an older one: no lease) is allocatable and never expires', async () => {
    const older = await gateway();
    expect((await gatewayRow(older.gatewayId)).lease_expires_at).toBeNull();
    const org = randomUUID();
    expect(await start(org)).toMatchObject({ status: 201, body: { gateway_id: older.gatewayId } });
    const before = await g.snapshot();
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('lease expiry (the reaper)', () => {
  it('ends an active allocation only once its lease lapsed more than the grace ago', async () => {
    const a = await live();
    expect((await renew(a.gw.auth, a.instanceId, a.id, 1)).status).toBe(200);
    await lapse(a.gw.gatewayId, GRACE - 5);
    let before = await g.snapshot();
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);

    await lapse(a.gw.gatewayId, GRACE + 1);
    const gatewayBefore = await gatewayRow(a.gw.gatewayId);
    expect(await reap()).toBe(1);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', ended_reason: 'lease_expired', epoch: 1 });
    expect((await audit(a.id)).at(-1)).toEqual({ kind: 'lease_expired', reason: 'lease_expired', epoch: 1 });
    // Out of the pool; its lease and its process are left as they were (the process may resume and renew).
    expect(await gatewayRow(a.gw.gatewayId)).toEqual({ ...gatewayBefore, ready_at: null });
    expect(gatewayBefore.instance_id).toBe(a.instanceId);

    before = await g.snapshot();
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);
    // The organization gets a live gateway next.
    const fresh = await gateway();
    expect(await start(a.organizationId)).toMatchObject({ status: 201, body: { gateway_id: fresh.gatewayId } });
  });

  it('leaves a restarting allocation to its restart deadline, whatever its lease', async () => {
    const a = await live();
    expect((await renew(a.gw.auth, a.instanceId, a.id, 1)).status).toBe(200);
    expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch: 1 } })).status).toBe(200);
    await lapse(a.gw.gatewayId, GRACE + 3600);
    const before = await g.snapshot();
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('crash-loop release', () => {
  it(`the crash reclaim that is the limit-th (${CRASH_LOOP_LIMIT}) within the window ends the allocation (crash_loop); those before reclaim`, async () => {
    const a = await live();
    for (let epoch = 2; epoch < 1 + CRASH_LOOP_LIMIT; epoch++) {
      expect(await reclaim(a)).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch, state: 'active' } } });
    }
    const gatewayBefore = await gatewayRow(a.gw.gatewayId);
    const res = await reclaim(a);
    expect(res).toMatchObject({ status: 409, body: { error: 'allocation_ended' } });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', ended_reason: 'crash_loop', epoch: CRASH_LOOP_LIMIT });
    expect(await audit(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      ...Array.from({ length: CRASH_LOOP_LIMIT - 1 }, (_, i) => ({ kind: 'reclaimed', reason: 'crash', epoch: i + 2 })),
      { kind: 'crash_loop', reason: 'crash_loop', epoch: CRASH_LOOP_LIMIT },
    ]);
    // The refused claim did not make its process current, and the gateway left the pool (to the back of the line).
    expect(await gatewayRow(a.gw.gatewayId)).toEqual({ ...gatewayBefore, ready_at: null });

    // Once ended, it stays ended: another process is refused the same way and nothing is written.
    const before = await g.snapshot();
    expect(await reclaim(a)).toMatchObject({ status: 409, body: { error: 'allocation_ended' } });
    expect(await g.snapshot()).toEqual(before);
  });

  it('restart reclaims do not count, however many; crash reclaims after them count from zero', async () => {
    const a = await live();
    let epoch = 1;
    for (let i = 0; i < CRASH_LOOP_LIMIT + 1; i++) {
      expect((await g.client.restart({ headers: a.orgAuth, body: { reason: 'reload', epoch } })).status).toBe(200);
      expect(await reclaim(a)).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: ++epoch } } });
    }
    for (let i = 1; i < CRASH_LOOP_LIMIT; i++) {
      expect(await reclaim(a)).toMatchObject({ status: 200, body: { allocation: { epoch: ++epoch } } });
    }
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch });
    expect((await audit(a.id)).filter((e) => e.kind === 'reclaimed').map((e) => e.reason)).toEqual([
      ...Array(CRASH_LOOP_LIMIT + 1).fill('restart'),
      ...Array(CRASH_LOOP_LIMIT - 1).fill('crash'),
    ]);
  });

  it('a process repeating its /ready is no crash', async () => {
    const a = await live();
    for (let i = 0; i < CRASH_LOOP_LIMIT + 1; i++) {
      expect(await reclaim(a, a.instanceId)).toMatchObject({ status: 200, body: { reclaimed: false, allocation: { epoch: 1 } } });
    }
    expect(await audit(a.id)).toHaveLength(1);
  });

  it('crash reclaims older than the window do not count (the window edge, both sides)', async () => {
    const a = await live();
    for (let i = 1; i < CRASH_LOOP_LIMIT; i++) expect((await reclaim(a)).status).toBe(200);
    // Of the CRASH_LOOP_LIMIT - 1 crash reclaims so far, the first falls just outside the window, the rest just inside.
    await sql(
      `UPDATE allocation_events SET at = now() - make_interval(secs => CASE WHEN epoch = 2 THEN $2 + 10 ELSE $2 - 10 END)
       WHERE allocation_id = $1 AND kind = 'reclaimed'`,
      [a.id, WINDOW],
    );
    const next = 1 + CRASH_LOOP_LIMIT;
    expect(await reclaim(a)).toMatchObject({ status: 200, body: { allocation: { epoch: next } } });
    // Now CRASH_LOOP_LIMIT - 1 are inside again: the next one is the limit-th.
    expect(await reclaim(a)).toMatchObject({ status: 409, body: { error: 'allocation_ended' } });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', ended_reason: 'crash_loop', epoch: next });
  });

  it('after the release the organization gets a new allocation', async () => {
    const a = await live();
    const other = await gateway();
    for (let i = 0; i < CRASH_LOOP_LIMIT; i++) await reclaim(a);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', ended_reason: 'crash_loop' });
    const res = await start(a.organizationId);
    expect(res).toMatchObject({ status: 201, body: { gateway_id: other.gatewayId } });
    expect(res.body).not.toMatchObject({ allocation_id: a.id });
  });
});

describe('failover grace (the control plane was down)', () => {
  const outage = () => g.ganymede.reaper.outageSeconds;
  const heartbeatAgo = (seconds: number) => sql('UPDATE control_plane SET last_reaped_at = now() - make_interval(secs => $1)', [seconds]);

  it('after an outage longer than outageSeconds, the next passes hold all expiry back for one lease; then it resumes', async () => {
    const restart = await expiredRestart();
    const lease = await expiredLease();
    await heartbeatAgo(outage() + 1);
    const before = await g.snapshot();
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);
    const cp = await controlPlaneOf(g.ganymede.db);
    expect(cp.last_reaped).toBeGreaterThan(-5); // this pass is the heartbeat now
    expect(cp.held_for).toBeGreaterThan(LEASE - 5);
    expect(cp.held_for).toBeLessThanOrEqual(LEASE);
    // The next pass, within the hold, holds back too (the outage is over, the hold is not).
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);

    await sql(`UPDATE control_plane SET expiry_held_until = now() - interval '1 second'`);
    expect(await reap()).toBe(2);
    expect(await allocationRow(restart.id)).toMatchObject({ state: 'ended', ended_reason: 'restart_timeout' });
    expect(await allocationRow(lease.id)).toMatchObject({ state: 'ended', ended_reason: 'lease_expired' });
  });

  it('an outage shorter than outageSeconds holds nothing back', async () => {
    await expiredRestart();
    await expiredLease();
    await heartbeatAgo(outage() - 1);
    expect(await reap()).toBe(2);
    expect((await controlPlaneOf(g.ganymede.db)).held_for).toBeLessThanOrEqual(0);
  });

  it('an expiry statement that runs long after its pass began (Ganymede cut off from its database meanwhile) ends nothing', async () => {
    const restart = await expiredRestart();
    const lease = await expiredLease();
    // The pass's heartbeat ran, then the database went out of reach; its expiry statements run only once it is back.
    await heartbeatAgo(outage() + 1);
    const before = await g.snapshot();
    expect(await expireRestarts(g.ganymede.db, outage())).toEqual([]);
    expect(await expireLeases(g.ganymede.db, GRACE, outage())).toEqual([]);
    expect(await g.snapshot()).toEqual(before);
    // The same statements right after a heartbeat end both.
    await heartbeatAgo(0);
    expect((await expireRestarts(g.ganymede.db, outage())).map((a) => a.allocation_id)).toEqual([restart.id]);
    expect((await expireLeases(g.ganymede.db, GRACE, outage())).map((a) => a.allocation_id)).toEqual([lease.id]);
  });

  it('a longer hold already in place is kept, not shortened', async () => {
    await expiredLease();
    await sql(`UPDATE control_plane SET expiry_held_until = now() + interval '1 hour'`);
    await heartbeatAgo(outage() + 1);
    expect(await reap()).toBe(0);
    expect((await controlPlaneOf(g.ganymede.db)).held_for).toBeGreaterThan(3500);
  });

  it('gateways that reach Ganymede during the hold keep their allocations when it ends', async () => {
    const restart = await expiredRestart();
    const lease = await expiredLease();
    await heartbeatAgo(outage() + 1);
    expect(await reap()).toBe(0);
    // During the hold: the restarted process reclaims, the paused one renews.
    expect(await reclaim(restart)).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 2 } } });
    expect((await renew(lease.gw.auth, lease.instanceId, lease.id, 1)).status).toBe(200);
    await sql(`UPDATE control_plane SET expiry_held_until = now() - interval '1 second'`);
    expect(await reap()).toBe(0);
    expect(await allocationRow(restart.id)).toMatchObject({ state: 'active', epoch: 2 });
    expect(await allocationRow(lease.id)).toMatchObject({ state: 'active', epoch: 1 });
  });
});

describe('each expired item is ended exactly once', () => {
  it('with one audit row, however many passes run at once', async () => {
    const restarts = [await expiredRestart(), await expiredRestart()];
    const leases = [await expiredLease(), await expiredLease()];
    const counts = await Promise.all([reap(), reap(), reap(), reap()]);
    expect(counts.reduce((a, b) => a + b, 0)).toBe(4);
    const terminal = ['stopped', 'restart_timed_out', 'rolled_back', 'lease_expired', 'crash_loop'];
    for (const [items, reason, kind] of [
      [restarts, 'restart_timeout', 'restart_timed_out'],
      [leases, 'lease_expired', 'lease_expired'],
    ] as const) {
      for (const a of items) {
        expect(await allocationRow(a.id)).toMatchObject({ state: 'ended', ended_reason: reason });
        expect((await audit(a.id)).filter((e) => terminal.includes(e.kind))).toEqual([{ kind, reason, epoch: 1 }]);
      }
    }
    const before = await g.snapshot();
    expect(await reap()).toBe(0);
    expect(await g.snapshot()).toEqual(before);
  });
});

describe('a real gateway (in process) and its renewal loop', () => {
  it('claims an allocation that raced in from its renewal; drops it and says ready idle when its lease expired', async () => {
    const { gateway: gw, gatewayId, next, close } = await inProcessGateway(g, g.target.url);
    try {
      const firstRenewal = next('lease');
      await gw.start();
      expect(await firstRenewal).toBe(200);
      expect(gw.whoami().allocation_id).toBeNull();

      // Allocated, but the notice went to the notice target: the process hears of it from its next renewal.
      const org = randomUUID();
      const claimed = next('claim');
      const started = await start(org);
      expect(started.status).toBe(201);
      if (started.status !== 201) return;
      expect(await claimed).toBe(200);
      expect(gw.whoami()).toMatchObject({ allocation_id: started.body.allocation_id, organization_id: org, epoch: 1 });
      expect(await allocationRow(started.body.allocation_id)).toMatchObject({ holder_instance: gw.instanceId, state: 'active' });

      // Its lease lapses past the grace (as if it had been paused) and the reaper ends the allocation.
      const idle = next('idle');
      await lapse(gatewayId, GRACE + 1);
      expect(await reap()).toBe(1);
      expect(await idle).toBe(200);
      expect(gw.whoami().allocation_id).toBeNull();
      expect(await poolEntry(gatewayId)).toMatchObject({ ready: true, state: 'idle' });
    } finally {
      await close();
    }
  });
});
