/**
 * Repeated calls and calls that race the reaper each have one defined answer (README, "Repeated calls"):
 * - a repeated /gateway/restart, /gateway/restart/withdraw, /gateway/stop, /gateway/ready (same process) and
 *   /gateway/lease;
 * - a call and a reaper pass ending the same allocation: whichever statement commits first wins and the other
 *   sees its result. Each race is run in both orders (deterministically), then both at once.
 * Expiry is arranged by moving deadlines and leases into the past in SQL; the reaper runs by hand.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { useGanymede } from './support.js';

const GRACE = 10;

const g = useGanymede({ leaseSeconds: 10, leaseGraceSeconds: GRACE, manualReaper: true });

const sql = <T = Record<string, unknown>>(text: string, params?: unknown[]) => g.ganymede.db.query<T>(text, params);
const reap = () => g.ganymede.reaper.runOnce();

const live = () => g.live();
type Live = Awaited<ReturnType<typeof live>>;

async function allocationRow(id: string) {
  return (await sql('SELECT * FROM allocations WHERE id = $1', [id])).rows[0]!;
}
const TERMINAL = ['stopped', 'restart_timed_out', 'rolled_back', 'lease_expired', 'crash_loop'];
async function terminalEvents(id: string) {
  const { rows } = await sql<{ kind: string }>('SELECT kind FROM allocation_events WHERE allocation_id = $1 ORDER BY id', [id]);
  return rows.map((r) => r.kind).filter((k) => TERMINAL.includes(k));
}
/**
 * The tables a repeated call must leave alone, but `updated_at`: a repeated /ready or /restart rewrites the row
 * as it was and so moves `updated_at` (and /admin/status's `since`) without changing anything it reports.
 */
async function allocationTables() {
  const { allocations, allocation_events } = await g.snapshot();
  return { allocations: allocations!.map((r) => ({ ...(r as object), updated_at: undefined })), allocation_events };
}

const restart = (a: Live, body: Record<string, unknown> = { reason: 'reload', epoch: 1 }) =>
  g.client.restart({ headers: a.orgAuth, body: body as never });
const withdraw = (a: Live, body: Record<string, unknown> = { epoch: 1 }) =>
  g.client.withdrawRestart({ headers: a.orgAuth, body: body as never });
const stop = (a: Live, body: Record<string, unknown> = { reason: 'stop', epoch: 1 }) => g.client.stop({ headers: a.orgAuth, body });
const ready = (a: Live, instance_id: string) => g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id } });
const renew = (a: Live) => g.client.lease({ headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 1 } });

async function restartPastDeadline() {
  const a = await live();
  expect((await restart(a)).status).toBe(200);
  await sql(`UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE id = $1`, [a.id]);
  return a;
}
async function leasePastGrace() {
  const a = await live();
  expect((await renew(a)).status).toBe(200);
  await sql('UPDATE gateways SET lease_expires_at = now() - make_interval(secs => $2) WHERE id = $1', [a.gw.gatewayId, GRACE + 1]);
  return a;
}

describe('repeated calls', () => {
  it('/gateway/restart: every repeat answers 200 with the first deadline; the first reason stands; one audit row', async () => {
    const a = await live();
    const first = await restart(a, { reason: 'reload', epoch: 1, grace_seconds: 30 });
    expect(first).toMatchObject({ status: 200, body: { allocation_id: a.id, state: 'restarting', epoch: 1 } });
    const before = await allocationTables();
    for (const body of [
      { reason: 'reload', epoch: 1, grace_seconds: 30 },
      { reason: 'deploy', epoch: 1, grace_seconds: 5 },
      { reason: 'restart' },
    ]) {
      const again = await restart(a, body);
      expect(again, JSON.stringify(body)).toEqual({ ...again, status: 200, body: first.body });
    }
    expect(await allocationTables()).toEqual(before);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'restarting', restart_reason: 'reload', epoch: 1 });
    const { rows } = await sql(`SELECT count(*)::int AS n FROM allocation_events WHERE allocation_id = $1 AND kind = 'restart_requested'`, [
      a.id,
    ]);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('/gateway/restart/withdraw: every repeat answers 200 active at the same epoch; nothing changes; one audit row', async () => {
    const a = await live();
    expect((await restart(a)).status).toBe(200);
    const first = await withdraw(a);
    expect(first).toMatchObject({ status: 200, body: { allocation_id: a.id, state: 'active', epoch: 1 } });
    const before = await g.snapshot();
    for (const body of [{ epoch: 1 }, { epoch: 1, allocation_id: a.id }, { epoch: 1 }]) {
      const again = await withdraw(a, body);
      expect(again, JSON.stringify(body)).toEqual({ ...again, status: 200, body: first.body });
    }
    expect(await g.snapshot()).toEqual(before);
    const { rows } = await sql(`SELECT count(*)::int AS n FROM allocation_events WHERE allocation_id = $1 AND kind = 'restart_withdrawn'`, [
      a.id,
    ]);
    expect(rows[0]).toEqual({ n: 1 });
  });

  it('/gateway/stop: the first answers 200; every repeat answers 403 allocation_ended and changes nothing', async () => {
    const a = await live();
    expect(await stop(a)).toMatchObject({ status: 200, body: { state: 'ended', ended_reason: 'stop', epoch: 1 } });
    const before = await g.snapshot();
    for (const body of [{ reason: 'stop', epoch: 1 }, { reason: 'idle' }, { reason: 'decommission', epoch: 7, allocation_id: a.id }]) {
      expect(await stop(a, body), JSON.stringify(body)).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    }
    expect(await g.snapshot()).toEqual(before);
    expect(await allocationRow(a.id)).toMatchObject({ ended_reason: 'stop' });
  });

  it('/gateway/ready from the same process: 200 with the same epoch, reclaimed false, no audit row', async () => {
    const a = await live(); // claimed by a.instanceId at epoch 1
    let before = await allocationTables();
    for (let i = 0; i < 3; i++) {
      expect(await ready(a, a.instanceId)).toMatchObject({
        status: 200,
        body: { reclaimed: false, allocation: { allocation_id: a.id, epoch: 1 } },
      });
    }
    expect(await allocationTables()).toEqual(before);

    // After a restart: the first /ready of the new process reclaims (epoch + 1), its repeats do not.
    expect((await restart(a)).status).toBe(200);
    const next = randomUUID();
    expect(await ready(a, next)).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 2, state: 'active' } } });
    before = await allocationTables();
    for (let i = 0; i < 3; i++) {
      expect(await ready(a, next)).toMatchObject({ status: 200, body: { reclaimed: false, allocation: { epoch: 2, state: 'active' } } });
    }
    expect(await allocationTables()).toEqual(before);
  });

  it('/gateway/lease: every repeat answers 200; the lease only moves on; nothing else changes', async () => {
    const a = await live();
    const before = await allocationTables();
    const gatewayBefore = (await g.snapshot()).gateways!;
    const expiries: number[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await renew(a);
      expect(res).toMatchObject({ status: 200, body: { allocation: { allocation_id: a.id, epoch: 1, state: 'active' } } });
      if (res.status === 200) expiries.push(Date.parse(res.body.lease.expires_at!));
    }
    expect([...expiries].sort((x, y) => x - y)).toEqual(expiries);
    expect(await allocationTables()).toEqual(before);
    const strip = (rows: unknown[]) => rows.map((r) => ({ ...(r as object), lease_expires_at: undefined }));
    expect(strip((await g.snapshot()).gateways!)).toEqual(strip(gatewayBefore));
  });
});

interface Outcome {
  /** What the call answers. */
  answer: { status: number; body: Record<string, unknown> };
  /** How many allocations the reaper pass ends. */
  reaped: number;
  /** The allocation afterwards. */
  final: Record<string, unknown>;
  /** Its terminal audit rows afterwards. */
  terminal: string[];
}

interface Race {
  name: string;
  setUp: () => Promise<Live>;
  call: (a: Live) => Promise<{ status: number; body: unknown }>;
  callFirst: Outcome;
  reaperFirst: Outcome;
  /**
   * The call renews the gateway's lease, which the reaper reads without locking (it locks the allocation only).
   * On PostgreSQL, run at once, the reaper may act on the lapsed lease it read just before the call committed:
   * the call answered 200 and the allocation still ends; the gateway learns it at its next renewal (409).
   */
  renewsLease?: true;
}

const ENDED_403 = { status: 403, body: { error: 'allocation_ended' } };
const ENDED_409 = { status: 409, body: { error: 'allocation_ended' } };
const restartTimedOut = { final: { state: 'ended', ended_reason: 'restart_timeout', epoch: 1 }, terminal: ['restart_timed_out'] };
const leaseExpired = { final: { state: 'ended', ended_reason: 'lease_expired', epoch: 1 }, terminal: ['lease_expired'] };

const RACES: Race[] = [
  {
    name: '/gateway/stop vs the reaper expiring the same restart',
    setUp: restartPastDeadline,
    call: (a) => stop(a),
    callFirst: {
      answer: { status: 200, body: { state: 'ended', ended_reason: 'stop' } },
      reaped: 0,
      final: { state: 'ended', ended_reason: 'stop' },
      terminal: ['stopped'],
    },
    reaperFirst: { answer: ENDED_403, reaped: 1, ...restartTimedOut },
  },
  {
    name: '/gateway/ready (a reclaim) vs the reaper expiring the same restart',
    setUp: restartPastDeadline,
    call: (a) => ready(a, randomUUID()),
    callFirst: {
      answer: { status: 200, body: { reclaimed: true, allocation: { state: 'active', epoch: 2 } } },
      reaped: 0,
      final: { state: 'active', epoch: 2, restart_deadline: null },
      terminal: [],
    },
    reaperFirst: { answer: ENDED_409, reaped: 1, ...restartTimedOut },
  },
  {
    name: '/gateway/restart/withdraw vs the reaper expiring the same restart',
    setUp: restartPastDeadline,
    call: (a) => withdraw(a),
    callFirst: {
      answer: { status: 200, body: { state: 'active', epoch: 1 } },
      reaped: 0,
      final: { state: 'active', epoch: 1, restart_deadline: null },
      terminal: [],
    },
    reaperFirst: { answer: ENDED_403, reaped: 1, ...restartTimedOut },
  },
  {
    name: '/gateway/lease vs the reaper expiring the same lease',
    setUp: leasePastGrace,
    renewsLease: true,
    call: (a) => renew(a),
    callFirst: {
      answer: { status: 200, body: { allocation: { state: 'active', epoch: 1 } } },
      reaped: 0,
      final: { state: 'active' },
      terminal: [],
    },
    reaperFirst: { answer: ENDED_409, reaped: 1, ...leaseExpired },
  },
  {
    name: '/gateway/ready (a crash reclaim, which renews the lease) vs the reaper expiring the lease',
    setUp: leasePastGrace,
    renewsLease: true,
    call: (a) => ready(a, randomUUID()),
    callFirst: {
      answer: { status: 200, body: { reclaimed: true, allocation: { state: 'active', epoch: 2 } } },
      reaped: 0,
      final: { state: 'active', epoch: 2 },
      terminal: [],
    },
    reaperFirst: { answer: ENDED_409, reaped: 1, ...leaseExpired },
  },
  {
    name: '/gateway/restart vs the reaper expiring the lease (lease expiry leaves a restarting allocation alone)',
    setUp: leasePastGrace,
    call: (a) => restart(a),
    callFirst: {
      answer: { status: 200, body: { state: 'restarting', epoch: 1 } },
      reaped: 0,
      final: { state: 'restarting', restart_reason: 'reload' },
      terminal: [],
    },
    reaperFirst: { answer: ENDED_403, reaped: 1, ...leaseExpired },
  },
  {
    name: '/gateway/stop vs the reaper expiring the lease',
    setUp: leasePastGrace,
    call: (a) => stop(a),
    callFirst: {
      answer: { status: 200, body: { state: 'ended', ended_reason: 'stop' } },
      reaped: 0,
      final: { state: 'ended', ended_reason: 'stop' },
      terminal: ['stopped'],
    },
    reaperFirst: { answer: ENDED_403, reaped: 1, ...leaseExpired },
  },
];

async function expectOutcome(a: Live, answer: { status: number; body: unknown }, reaped: number, expected: Outcome) {
  expect(answer, JSON.stringify(answer.body)).toMatchObject(expected.answer);
  expect(reaped).toBe(expected.reaped);
  expect(await allocationRow(a.id)).toMatchObject(expected.final);
  expect(await terminalEvents(a.id)).toEqual(expected.terminal);
}

describe('a call racing the reaper: whichever commits first wins, the other sees its result', () => {
  it.each(RACES)('$name: the call first', async (race) => {
    const a = await race.setUp();
    const answer = await race.call(a);
    const reaped = await reap();
    await expectOutcome(a, answer, reaped, race.callFirst);
  });

  it.each(RACES)('$name: the reaper first; the call, repeated, answers the same and changes nothing', async (race) => {
    const a = await race.setUp();
    const reaped = await reap();
    const answer = await race.call(a);
    await expectOutcome(a, answer, reaped, race.reaperFirst);
    const before = await g.snapshot();
    expect(await race.call(a)).toMatchObject(race.reaperFirst.answer);
    expect(await g.snapshot()).toEqual(before);
  });

  it.each(RACES)('$name: both at once end in one of those two outcomes', async (race) => {
    const a = await race.setUp();
    const [answer, reaped] = await Promise.all([race.call(a), reap()]);
    const outcome = reaped === 0 ? race.callFirst : race.reaperFirst;
    const renewalLost = g.ganymede.db.kind === 'postgres' && race.renewsLease && reaped === 1 && answer.status === 200;
    if (renewalLost) {
      expect(await allocationRow(a.id)).toMatchObject(race.reaperFirst.final);
      return;
    }
    await expectOutcome(a, answer, reaped, outcome);
  });
});
