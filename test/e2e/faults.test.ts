/**
 * The fault matrix: Ganymede, then a gateway, killed with SIGKILL at each step of allocate, restart,
 * reclaim, stop and expiry (failpoints armed through FAILPOINTS), then started again. Each time the state
 * is consistent and converges the way the rules say: the gateway reclaims, or the allocation ends.
 */
import { randomUUID } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { type GanymedeProcess, gatewayReady, startOrganization, stopProcess } from '@ganymede/testkit';
import {
  allocate,
  ganymede,
  gateway,
  gatewayProcess,
  history,
  restartUnsupervised,
  retired,
  served,
  servingAt,
  transition,
} from './support.js';

const FAST_LEASES = { GANYMEDE_LEASE_SECONDS: '1', GANYMEDE_LEASE_GRACE_SECONDS: '1' };

/** Ganymede dies at `failpoint` while `action` runs; answers a new Ganymede on the same data and port. */
async function killedAt(g: GanymedeProcess, failpoint: string, action: () => Promise<unknown>, env: NodeJS.ProcessEnv = {}) {
  await stopProcess(g.proc, 'SIGKILL');
  const armed = await ganymede({ dataDir: g.dataDir, port: g.port, env: { ...env, FAILPOINTS: failpoint } });
  await action().catch(() => undefined); // its answer is lost with the process
  expect((await armed.proc.exited).signal).toBe('SIGKILL');
  return ganymede({ dataDir: g.dataDir, port: g.port, env });
}

describe('Ganymede killed at each step, then started again', () => {
  it.each(['before', 'after'])('%s allocate: the organization gets exactly one served allocation', async (when) => {
    const g = await ganymede({ env: FAST_LEASES });
    const a = await gateway(g, 'run');
    const organizationId = randomUUID();
    // At debug: the renewal is seen by its request lines.
    const env = { ...FAST_LEASES, GANYMEDE_LOG_LEVEL: 'debug' };
    const g2 = await killedAt(g, `ganymede:${when}:allocate`, () => startOrganization(g, organizationId), env);
    // Its 1 s lease lapsed while Ganymede was down: the gateway is back in the pool once a renewal has gone through.
    const renewal = await g2.proc.waitForLog((l) => (l.req as { url?: string } | undefined)?.url === '/gateway/lease');
    await g2.proc.waitForLog((l) => l.reqId === renewal.reqId && l.msg === 'request completed');
    const again = await startOrganization(g2, organizationId);
    expect(again.res.status).toBe(when === 'before' ? 201 : 200);
    if (again.res.status !== 200 && again.res.status !== 201) throw new Error('not allocated');
    // Allocated but never told: the idle gateway learns of it from its next lease renewal and claims it.
    if (when === 'after') {
      const allocationId = again.res.body.allocation_id;
      // The gateway's own word that it holds it (claimed from a renewal, or reclaimed while settling again).
      await a.proc.waitForLog((l) => (l.event === 'claimed' || l.event === 'reclaimed') && l.allocation_id === allocationId);
    }
    expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { allocation_id: again.res.body.allocation_id } });
    expect((await history(g2, again.res.body.allocation_id)).events.map((e) => e.kind)).toEqual(['allocated']);
  });

  it.each(['before', 'after'])('%s restart: the restarted gateway reclaims with epoch 2', async (when) => {
    const g = await ganymede();
    const a = await gateway(g, 'supervise');
    const { organizationId, allocationId } = await allocate(g, a);
    const from = a.proc.logs.length;
    const g2 = await killedAt(g, `ganymede:${when}:restart`, () => a.cli('reload'));
    await gatewayReady(g2, a.gw.gateway_id, 2);
    await retired(a, from);
    expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: 2 } });
    const kinds = (await history(g2, allocationId)).events.map((e) => [e.kind, e.reason]);
    expect(kinds).toEqual(
      when === 'before'
        ? [
            ['allocated', null],
            ['reclaimed', 'crash'],
          ]
        : [
            ['allocated', null],
            ['restart_requested', 'reload'],
            ['reclaimed', 'restart'],
          ],
    );
  });

  it.each(['before', 'after'])('%s reclaim: the gateway retries and holds the allocation at epoch 2, reclaimed once', async (when) => {
    const g = await ganymede();
    const a = await gateway(g, 'run');
    const { organizationId, allocationId } = await allocate(g, a);
    await restartUnsupervised(g, a, allocationId);
    // The restarted process's /ready is where Ganymede dies; the process retries until Ganymede is back.
    const b = await gatewayProcess(g, a.gw, 'run');
    const g2 = await killedAt(g, `ganymede:${when}:ready`, async () => undefined);
    await gatewayReady(g2, a.gw.gateway_id, 2);
    await servingAt(b, 2);
    const h = await history(g2, allocationId);
    expect(h.events.map((e) => e.kind)).toEqual(['allocated', 'restart_requested', 'reclaimed']);
    expect(h.epoch).toBe(2);
    expect((await served(b, organizationId)).status).toBe(200);
  });

  it.each(['before', 'after'])('%s stop: the allocation ends (stopped, or its lease expires)', async (when) => {
    const g = await ganymede({ reaperIntervalMs: 100, env: FAST_LEASES });
    const a = await gateway(g, 'supervise');
    const { allocationId } = await allocate(g, a);
    const g2 = await killedAt(g, `ganymede:${when}:stop`, () => a.cli('stop'), FAST_LEASES);
    expect((await a.proc.exited).code).toBe(0);
    if (when === 'before') await transition(g2, allocationId, 'lease_expired');
    expect(await history(g2, allocationId)).toMatchObject({
      state: 'ended',
      ended_reason: when === 'before' ? 'lease_expired' : 'stop',
    });
  });

  it.each(['before', 'after'])('%s expiry: an unreclaimed restart ends exactly once (restart_timeout)', async (when) => {
    // Short leases: each restart of Ganymede here is an outage that holds expiry back for one lease period.
    const g = await ganymede({ reaperIntervalMs: 100, env: FAST_LEASES });
    const a = await gateway(g, 'run', { GATEWAY_RESTART_GRACE_SECONDS: '1' });
    const { allocationId } = await allocate(g, a);
    await restartUnsupervised(g, a, allocationId);
    // The armed reaper dies on its first pass (before), or right after the pass that ended the restart (after).
    const g2 = await killedAt(g, `ganymede:${when}:expire`, async () => undefined, FAST_LEASES);
    if (when === 'before') await transition(g2, allocationId, 'restart_timed_out');
    const h = await history(g2, allocationId);
    expect(h).toMatchObject({ state: 'ended', ended_reason: 'restart_timeout' });
    expect(h.events.filter((e) => e.kind === 'restart_timed_out')).toHaveLength(1);
  });
});

describe('the gateway killed at each step, then started again', () => {
  it.each([
    [
      'gateway:before:restart',
      'SIGHUP',
      [
        ['allocated', null],
        ['reclaimed', 'crash'],
      ],
    ],
    [
      'gateway:after:restart',
      'SIGHUP',
      [
        ['allocated', null],
        ['restart_requested', 'reload'],
        ['reclaimed', 'restart'],
      ],
    ],
  ] as const)('%s: the next process reclaims with epoch 2', async (failpoint, signal, events) => {
    const g = await ganymede();
    const a = await gateway(g, 'run', { FAILPOINTS: failpoint });
    const { organizationId, allocationId } = await allocate(g, a);
    a.proc.signal(signal);
    expect((await a.proc.exited).signal).toBe('SIGKILL');
    const reclaimed = gatewayReady(g, a.gw.gateway_id, 2, g.proc.logs.length);
    const b = await gateway(g, 'run', {}, a.gw);
    await reclaimed;
    await servingAt(b, 2);
    expect(await served(b, organizationId)).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: 2 } });
    expect((await history(g, allocationId)).events.map((e) => [e.kind, e.reason])).toEqual(events);
  });

  it.each(['gateway:before:reclaim', 'gateway:after:reclaim'])(
    '%s while reclaiming: the next process holds it (epoch 2, or 3 after a reclaim)',
    async (failpoint) => {
      const g = await ganymede();
      const a = await gateway(g, 'run');
      const { organizationId, allocationId } = await allocate(g, a);
      await restartUnsupervised(g, a, allocationId);
      // The first restarted process dies mid-boot (before its /reclaim, or after it reclaimed at epoch 2).
      const dying = await gatewayProcess(g, a.gw, 'run', { FAILPOINTS: failpoint });
      expect((await dying.proc.exited).signal).toBe('SIGKILL');
      const expected = failpoint === 'gateway:after:reclaim' ? 3 : 2;
      // Awaited by epoch: the dying process's own ready line may reach us after its exit does.
      const reclaimed = gatewayReady(g, a.gw.gateway_id, expected);
      const b = await gatewayProcess(g, a.gw, 'run');
      await reclaimed;
      await servingAt(b, expected);
      expect(await served(b, organizationId)).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: expected } });
    },
  );

  it.each([
    ['gateway:before:stop', 'lease_expired'],
    ['gateway:after:stop', 'stop'],
  ] as const)('%s: the allocation ends (%s)', async (failpoint, reason) => {
    const g = await ganymede({ reaperIntervalMs: 100, env: FAST_LEASES });
    const a = await gateway(g, 'run', { FAILPOINTS: failpoint });
    const { allocationId } = await allocate(g, a);
    a.proc.signal('SIGTERM');
    expect((await a.proc.exited).signal).toBe('SIGKILL');
    if (reason === 'lease_expired') await transition(g, allocationId, 'lease_expired');
    expect(await history(g, allocationId)).toMatchObject({ state: 'ended', ended_reason: reason });
  });
});
