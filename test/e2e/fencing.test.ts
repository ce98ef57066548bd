/**
 * Liveness and fencing with real processes: a gateway paused with SIGSTOP past its lease, a second process
 * taking a gateway over, a crash loop, and a control-plane outage longer than a lease.
 */
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { gatewayReady, registerGateway, startOrganization, stopProcess } from '@ganymede/testkit';
import { allocate, ganymede, gateway, gatewayEvent, history, served, transition } from './support.js';

/** Short leases so that expiry happens within a test: 1 s lease, 1 s grace, reaper every 100 ms. */
const FAST_LEASES = { GANYMEDE_LEASE_SECONDS: '1', GANYMEDE_LEASE_GRACE_SECONDS: '1' };

describe('fencing and liveness, real processes', () => {
  it('a gateway paused past its lease loses the allocation; resumed, it is refused and stops serving', async () => {
    const g = await ganymede({ reaperIntervalMs: 100, env: FAST_LEASES });
    const a = await gateway(g, 'run');
    const b = await gateway(g, 'run');
    const { organizationId, allocationId, whoami } = await allocate(g, a);
    const orgToken = await g.api.config({ headers: { authorization: `Bearer ${a.gw.token}` }, body: {} });
    if (orgToken.status !== 200) throw new Error('no config');

    const expired = transition(g, allocationId, 'lease_expired');
    process.kill(whoami.pid, 'SIGSTOP');
    await expired;
    // The organization's next /gateway/start gets the live gateway.
    const next = await startOrganization(g, organizationId);
    expect(next.res).toMatchObject({ status: 201, body: { gateway_id: b.gw.gateway_id } });

    // Late calls with the paused process's epoch and token are refused and change nothing.
    const before = await history(g, allocationId);
    const auth = { authorization: `Bearer ${orgToken.body.organization_token}` };
    expect(await g.api.stop({ headers: auth, body: { reason: 'stop', epoch: whoami.epoch! } })).toMatchObject({
      status: 403,
      body: { error: 'allocation_ended' },
    });
    expect(await g.api.restart({ headers: auth, body: { reason: 'reload', epoch: whoami.epoch! } })).toMatchObject({
      status: 403,
      body: { error: 'allocation_ended' },
    });
    const from = a.proc.logs.length;
    process.kill(whoami.pid, 'SIGCONT');
    // Its next renewal is refused; it notices and stops serving the organization.
    expect(await gatewayEvent(a, 'allocation_lost', from)).toMatchObject({ reason: 'allocation_ended' });
    expect((await served(a, organizationId)).status).toBe(404);
    expect((await served(b, organizationId)).status).toBe(200);
    expect(await history(g, allocationId)).toEqual(before);
  });

  it('a gateway process taken over by another while paused stands down without touching the allocation', async () => {
    const g = await ganymede({ reaperIntervalMs: 100 });
    const a = await gateway(g, 'run');
    const { organizationId, allocationId, whoami } = await allocate(g, a);
    process.kill(whoami.pid, 'SIGSTOP');
    // A second process of the same gateway (another port) takes the allocation over: epoch + 1.
    const takeover = await registerGateway(g).then((other) => ({ ...a.gw, port: other.port, url: other.url }));
    const reclaimed = gatewayReady(g, a.gw.gateway_id, 2, g.proc.logs.length);
    const a2 = await gateway(g, 'run', {}, takeover);
    await reclaimed;
    const from = a.proc.logs.length;
    process.kill(whoami.pid, 'SIGCONT');
    expect(await gatewayEvent(a, 'superseded', from)).toMatchObject({ reason: 'superseded' });
    expect((await a.proc.exited).code).toBe(0);
    expect(await served(a2, organizationId)).toMatchObject({ status: 200, body: { epoch: 2 } });
    const h = await history(g, allocationId);
    expect(h).toMatchObject({ state: 'active', epoch: 2 });
    expect(h.events.map((e) => e.kind)).toEqual(['allocated', 'reclaimed']);
  });

  it('a gateway that keeps dying loses the allocation (crash_loop); the organization gets another gateway', async () => {
    const g = await ganymede({ env: { GANYMEDE_CRASH_LOOP_LIMIT: '2' } });
    const a = await gateway(g, 'supervise');
    await gateway(g, 'run');
    const { organizationId, allocationId, whoami } = await allocate(g, a);
    const reclaimed = gatewayReady(g, a.gw.gateway_id, 2, g.proc.logs.length);
    process.kill(whoami.pid, 'SIGKILL');
    await reclaimed;
    const second = await served(a, organizationId);
    if (second.status !== 200) throw new Error(`not served after the first crash: ${second.status}`);
    const looped = transition(g, allocationId, 'crash_loop');
    process.kill(second.body.pid, 'SIGKILL');
    await looped;
    expect(await history(g, allocationId)).toMatchObject({ state: 'ended', ended_reason: 'crash_loop' });
    const next = await startOrganization(g, organizationId);
    expect(next.res.status).toBe(201);
    expect(next.res.status === 201 && next.res.body.allocation_id).not.toBe(allocationId);
  });

  it('a control-plane outage longer than a lease ends no healthy allocation', async () => {
    const g = await ganymede({ reaperIntervalMs: 100, env: FAST_LEASES });
    const a = await gateway(g, 'run');
    const { organizationId, allocationId } = await allocate(g, a);
    await stopProcess(g.proc, 'SIGKILL');
    // Nobody answers for three lease periods: every lease lapses, past the grace too.
    await sleep(3_000);
    const g2 = await ganymede({ dataDir: g.dataDir, port: g.port, reaperIntervalMs: 100, env: FAST_LEASES });
    // The reaper sees the gap and holds expiry back for one lease period; the gateway renews meanwhile;
    // the first pass after that ends nothing.
    await g2.proc.waitForLog((l) => l.expiry === 'held');
    expect(await g2.proc.waitForLog((l) => l.expiry === 'resumed')).toMatchObject({ ended: 0 });
    expect(g2.proc.logs.some((l) => l.transition === 'lease_expired')).toBe(false);
    expect(await history(g2, allocationId)).toMatchObject({ state: 'active' });
    expect((await served(a, organizationId)).status).toBe(200);
  });
});
