/**
 * End to end with real processes, real signals and real HTTP: Ganymede (`ganymede serve` on PGlite) and
 * gateways (`gateway supervise` / `gateway run`), driven through their CLIs and signals.
 */
import { randomUUID } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { adminToken, gatewayClient, gatewayReady, stopProcess, userToken } from '@ganymede/testkit';
import { allocate, ganymede, gateway, history, retired, restartUnsupervised, servingAt, transition } from './support.js';

describe('restart protocol, real processes', () => {
  it('gateway reload keeps the allocation: the same organization is served again with epoch + 1', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, allocationId, whoami } = await allocate(g, p);
    const reclaimed = gatewayReady(g, p.gw.gateway_id, whoami.epoch! + 1, g.proc.logs.length);
    const from = p.proc.logs.length;
    await p.cli('reload');
    await reclaimed;
    await retired(p, from);
    const served = await gatewayClient(p.gw).serve({ params: { organization_id: organizationId } });
    expect(served).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: whoami.epoch! + 1 } });
    expect(served.status === 200 && served.body.pid).not.toBe(whoami.pid);
    const h = await history(g, allocationId);
    expect(h.events.map((e) => [e.kind, e.reason, e.epoch])).toEqual([
      ['allocated', null, 1],
      ['restart_requested', 'reload', 1],
      ['reclaimed', 'restart', 2],
    ]);
  });

  it('SIGTERM while the reload marker exists is a restart (deploy); the marker is consumed', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { allocationId, whoami } = await allocate(g, p);
    await writeFile(p.marker, 'deploy\n');
    const reclaimed = gatewayReady(g, p.gw.gateway_id, 2, g.proc.logs.length);
    process.kill(whoami.pid, 'SIGTERM');
    await reclaimed;
    const h = await history(g, allocationId);
    expect(h.events.map((e) => [e.kind, e.reason])).toContainEqual(['restart_requested', 'deploy']);
    expect(h.state).toBe('active');
  });

  it('gateway stop ends the allocation and the supervisor exits 0', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { allocationId } = await allocate(g, p);
    await p.cli('stop');
    expect((await p.proc.exited).code).toBe(0);
    const h = await history(g, allocationId);
    expect(h).toMatchObject({ state: 'ended', ended_reason: 'stop' });
    expect(h.events.map((e) => e.kind)).toEqual(['allocated', 'stopped']);
  });

  it('SIGKILL of the gateway keeps the allocation; the restarted process reclaims it', async () => {
    const g = await ganymede();
    const p = await gateway(g);
    const { organizationId, allocationId, whoami } = await allocate(g, p);
    const reclaimed = gatewayReady(g, p.gw.gateway_id, 2, g.proc.logs.length);
    process.kill(whoami.pid, 'SIGKILL');
    await reclaimed;
    const served = await gatewayClient(p.gw).serve({ params: { organization_id: organizationId } });
    expect(served).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: 2 } });
    expect((await history(g, allocationId)).events.map((e) => e.kind)).toEqual(['allocated', 'reclaimed']);
  });

  it('a restart nobody reclaims is ended by the reaper (restart_timeout)', async () => {
    // Short leases: a short renew deadline (1.5 s), so the shortest restart grace Ganymede grants is 2 s.
    const g = await ganymede({ reaperIntervalMs: 100, env: { GANYMEDE_LEASE_SECONDS: '1', GANYMEDE_LEASE_GRACE_SECONDS: '1' } });
    // Unsupervised, and asking Ganymede for a 1 s grace: nothing brings it back.
    const p = await gateway(g, 'run', { GATEWAY_RESTART_GRACE_SECONDS: '1' });
    const { allocationId } = await allocate(g, p);
    const timedOut = transition(g, allocationId, 'restart_timed_out');
    p.proc.signal('SIGHUP');
    expect((await p.proc.exited).code).toBe(75);
    await timedOut;
    expect(await history(g, allocationId)).toMatchObject({ state: 'ended', ended_reason: 'restart_timeout' });
    const status = await g.api.status({ headers: { authorization: `Bearer ${await adminToken(g)}` } });
    expect(status.status === 200 && status.body.gateways[0]).toMatchObject({ state: 'idle', ready: false });
  });

  it('Ganymede killed with SIGKILL mid-restart and started again loses nothing', async () => {
    const g = await ganymede();
    const p = await gateway(g, 'run');
    const { organizationId, allocationId } = await allocate(g, p);
    expect((await restartUnsupervised(g, p, allocationId)).code).toBe(75);
    await stopProcess(g.proc, 'SIGKILL');

    const g2 = await ganymede({ dataDir: g.dataDir, port: g.port });
    const reclaimed = gatewayReady(g2, p.gw.gateway_id, 2);
    const again = await gateway(g2, 'run', {}, p.gw);
    await reclaimed;
    await servingAt(again, 2);
    const served = await gatewayClient(p.gw).serve({ params: { organization_id: organizationId } });
    expect(served).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: 2 } });
    expect((await history(g2, allocationId)).events.map((e) => e.kind)).toEqual(['allocated', 'restart_requested', 'reclaimed']);
  });

  it('concurrent /gateway/start calls for one organization make exactly one allocation', async () => {
    const g = await ganymede();
    await Promise.all([gateway(g, 'run'), gateway(g, 'run'), gateway(g, 'run')]);
    const organizationId = randomUUID();
    const token = await userToken(g, organizationId);
    const answers = await Promise.all(
      Array.from({ length: 12 }, () =>
        g.api.start({ headers: { authorization: `Bearer ${token}` }, body: { organization_id: organizationId } }),
      ),
    );
    const ids = new Set(answers.map((r) => (r.status === 200 || r.status === 201 ? r.body.allocation_id : r.status)));
    expect(ids.size).toBe(1);
    expect(answers.filter((r) => r.status === 201)).toHaveLength(1);
    expect(answers.filter((r) => r.status === 200)).toHaveLength(11);
    const status = await g.api.status({ headers: { authorization: `Bearer ${await adminToken(g)}` } });
    expect(status.status === 200 && status.body.gateways.filter((x) => x.organization_id === organizationId)).toHaveLength(1);
  });
});
