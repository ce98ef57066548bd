/**
 * POST /gateway/restart/withdraw over real HTTP (hot restart): the process that asked for a restart keeps serving
 * while its successor boots; when the successor fails, the old process takes the restart back and the allocation
 * is plainly active again at the same epoch. Always fenced by the epoch it names; idempotent; audited once.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { bufferLogger, errorBodyProblem, rawRequest, useGanymede } from './support.js';

const logs = bufferLogger();
const g = useGanymede({ manualReaper: true, logger: logs.logger });

type Live = Awaited<ReturnType<typeof g.live>>;

const restart = (a: Live, epoch = 1) => g.client.restart({ headers: a.orgAuth, body: { reason: 'deploy', epoch } });
const withdraw = (a: Live, body: { epoch: number; allocation_id?: string } = { epoch: 1 }) =>
  g.client.withdrawRestart({ headers: a.orgAuth, body });

async function allocationRow(id: string) {
  return (await g.ganymede.db.query('SELECT * FROM allocations WHERE id = $1', [id])).rows[0]!;
}

async function history(id: string) {
  const res = await g.client.allocation({ headers: g.admin, params: { allocation_id: id } });
  if (res.status !== 200) throw new Error(`allocation answered ${res.status}`);
  return res.body;
}
const trail = async (id: string) => (await history(id)).events.map(({ kind, reason, epoch }) => ({ kind, reason, epoch }));

/** A live allocation whose holder asked for a restart (epoch 1), as a hot restart starts. */
async function restarting() {
  const a = await g.live();
  expect(await restart(a)).toMatchObject({ status: 200, body: { state: 'restarting', epoch: 1 } });
  return a;
}

describe('withdrawing a restart', () => {
  it('restarting → active at the same epoch, the deadline and reason cleared, one "restart_withdrawn" audit row', async () => {
    const a = await restarting();
    const res = await withdraw(a);
    expect(res).toEqual({ ...res, status: 200, body: { allocation_id: a.id, state: 'active', epoch: 1 } });
    expect(await allocationRow(a.id)).toMatchObject({
      state: 'active',
      epoch: 1,
      restart_deadline: null,
      restart_reason: null,
      holder_instance: a.instanceId,
    });
    expect(await trail(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'restart_requested', reason: 'deploy', epoch: 1 },
      { kind: 'restart_withdrawn', reason: null, epoch: 1 },
    ]);
    // What the gateway and the operators see: active, no deadline.
    expect(await g.client.config({ headers: a.gw.auth, body: {} })).toMatchObject({
      status: 200,
      body: { allocation_id: a.id, state: 'active', epoch: 1, restart_deadline: null },
    });
    const status = await g.client.status({ headers: g.admin });
    expect(status.status === 200 && status.body.gateways.find((e) => e.gateway_id === a.gw.gatewayId)).toMatchObject({
      state: 'active',
      epoch: 1,
      restart_deadline: null,
    });
    expect(logs.lines.some((l) => l.includes('"transition":"restart_withdrawn"') && l.includes(a.id))).toBe(true);
  });

  it('the old process keeps its hold: its lease renews at the same epoch, and the reaper has no deadline to expire', async () => {
    const a = await restarting();
    await g.ganymede.db.query(`UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE id = $1`, [a.id]);
    expect((await withdraw(a)).status).toBe(200); // before the reaper ran: the withdrawal wins
    expect(await g.ganymede.reaper.runOnce()).toBe(0);
    const renewed = await g.client.lease({ headers: a.gw.auth, body: { instance_id: a.instanceId, allocation_id: a.id, epoch: 1 } });
    expect(renewed).toMatchObject({ status: 200, body: { allocation: { allocation_id: a.id, state: 'active', epoch: 1 } } });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 1 });
  });

  it('a repeat answers 200 and changes nothing (not even updated_at), without a second audit row', async () => {
    const a = await restarting();
    const first = await withdraw(a);
    expect(first.status).toBe(200);
    const before = await g.snapshot();
    for (const body of [{ epoch: 1 }, { epoch: 1, allocation_id: a.id }]) {
      const again = await withdraw(a, body);
      expect(again, JSON.stringify(body)).toEqual({ ...again, status: 200, body: first.body });
    }
    expect(await g.snapshot()).toEqual(before);
    expect((await trail(a.id)).filter((e) => e.kind === 'restart_withdrawn')).toHaveLength(1);
  });

  it('on an allocation that was never restarting: 200 at its epoch, nothing changes, no audit row', async () => {
    const a = await g.live();
    const before = await g.snapshot();
    expect(await withdraw(a)).toMatchObject({ status: 200, body: { allocation_id: a.id, state: 'active', epoch: 1 } });
    expect(await g.snapshot()).toEqual(before);
  });

  it('after a withdrawal, /gateway/restart works again, and a successor reclaims at epoch + 1', async () => {
    const a = await restarting();
    expect((await withdraw(a)).status).toBe(200);
    const again = await restart(a);
    expect(again).toMatchObject({ status: 200, body: { allocation_id: a.id, state: 'restarting', epoch: 1 } });
    expect(again.status === 200 && again.body.restart_deadline).toBeTruthy();
    const successor = randomUUID();
    const claimed = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: successor } });
    expect(claimed).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { state: 'active', epoch: 2 } } });
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 2, holder_instance: successor, restart_deadline: null });
    expect(await trail(a.id)).toEqual([
      { kind: 'allocated', reason: null, epoch: 1 },
      { kind: 'restart_requested', reason: 'deploy', epoch: 1 },
      { kind: 'restart_withdrawn', reason: null, epoch: 1 },
      { kind: 'restart_requested', reason: 'deploy', epoch: 1 },
      { kind: 'reclaimed', reason: 'restart', epoch: 2 },
    ]);
    // The old process's epoch is stale now: it cannot withdraw its successor's hold.
    expect(await withdraw(a)).toMatchObject({ status: 409, body: { error: 'stale_epoch' } });
  });
});

describe('refusals change nothing', () => {
  it('a successor already reclaimed it (epoch + 1): 409 stale_epoch, for an older or a newer epoch', async () => {
    const a = await restarting();
    const successor = randomUUID();
    const claimed = await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: successor } });
    expect(claimed).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 2 } } });
    const before = await g.snapshot();
    expect(await withdraw(a, { epoch: 1 })).toEqual(
      expect.objectContaining({
        status: 409,
        body: { error: 'stale_epoch', message: 'epoch 1 is stale: the allocation is at epoch 2' },
      }),
    );
    expect(await withdraw(a, { epoch: 3 })).toMatchObject({ status: 409, body: { error: 'stale_epoch' } });
    expect(await g.snapshot()).toEqual(before);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'active', epoch: 2, holder_instance: successor });
  });

  it('a stale epoch on an allocation restarting again (at epoch 2) leaves it restarting', async () => {
    const a = await restarting();
    await g.client.ready({ headers: a.gw.auth, body: { allocation_id: a.id, instance_id: randomUUID() } }); // epoch 2
    expect((await restart(a, 2)).status).toBe(200);
    const before = await g.snapshot();
    expect(await withdraw(a, { epoch: 1 })).toMatchObject({ status: 409, body: { error: 'stale_epoch' } });
    expect(await g.snapshot()).toEqual(before);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'restarting', epoch: 2 });
  });

  it.each([
    [
      'stopped',
      async (a: Live) => expect((await g.client.stop({ headers: a.orgAuth, body: { reason: 'stop', epoch: 1 } })).status).toBe(200),
    ],
    [
      'expired by the reaper (restart_timeout)',
      async (a: Live) => {
        await g.ganymede.db.query(`UPDATE allocations SET restart_deadline = now() - interval '1 second' WHERE id = $1`, [a.id]);
        expect(await g.ganymede.reaper.runOnce()).toBe(1);
      },
    ],
  ] as const)('an ended allocation (%s): 403 allocation_ended', async (_, end) => {
    const a = await restarting();
    await end(a);
    const before = await g.snapshot();
    for (const body of [{ epoch: 1 }, { epoch: 2 }]) {
      expect(await withdraw(a, body), JSON.stringify(body)).toMatchObject({ status: 403, body: { error: 'allocation_ended' } });
    }
    expect(await g.snapshot()).toEqual(before);
  });

  it("another allocation's organization token, or one naming another allocation: 403 forbidden", async () => {
    const a = await restarting();
    const b = await restarting();
    const before = await g.snapshot();
    const named = await withdraw(a, { epoch: 1, allocation_id: b.id });
    expect(named).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    const ofB = await g.client.withdrawRestart({ headers: b.orgAuth, body: { epoch: 1, allocation_id: a.id } });
    expect(ofB).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    // Tokens of the other kinds: the gateway's own, a user's of the organization, an admin's.
    for (const headers of [a.gw.auth, await g.userToken(a.organizationId), g.admin]) {
      const res = await g.client.withdrawRestart({ headers, body: { epoch: 1 } });
      expect(res).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    }
    expect(await g.snapshot()).toEqual(before);
    expect(await allocationRow(a.id)).toMatchObject({ state: 'restarting' });
    expect(await allocationRow(b.id)).toMatchObject({ state: 'restarting' });
  });

  it('an unknown allocation: 404 allocation_not_found', async () => {
    const res = await g.client.withdrawRestart({ headers: await g.orgToken(randomUUID()), body: { epoch: 1 } });
    expect(res).toMatchObject({ status: 404, body: { error: 'allocation_not_found' } });
  });

  it.each([
    ['no epoch (a withdrawal is always fenced)', {}],
    ['no epoch, with its allocation id', 'allocation_id'],
    ['an epoch of 0', { epoch: 0 }],
    ['an epoch as a string', { epoch: '1' }],
    ['an unknown field', { epoch: 1, reason: 'reload' }],
  ] as const)('%s: 400 with the contract error body', async (_, body) => {
    const a = await restarting();
    const before = await g.snapshot();
    const payload = body === 'allocation_id' ? { allocation_id: a.id } : body;
    const res = await rawRequest(
      g.url,
      'POST',
      '/gateway/restart/withdraw',
      { ...a.orgAuth, 'content-type': 'application/json' },
      JSON.stringify(payload),
    );
    expect(res.status, res.text).toBe(400);
    expect(errorBodyProblem(res.body), res.text).toBeNull();
    expect(res.body).toMatchObject({ error: 'bad_request' });
    expect(await g.snapshot()).toEqual(before);
  });
});
