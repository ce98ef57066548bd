/**
 * Partitions between Ganymede and PostgreSQL, made real by a TCP proxy in between (the test kit's `startTcpProxy`).
 * PostgreSQL only (vitest.config.ts leaves this folder out of PGlite runs: the embedded database has no network).
 *
 * Leases as in test/e2e/partitions.test.ts (`PARTITION_LEASES`); the gateways log each request they serve (`served`,
 * monotonic time), so who served when can be checked.
 */
import { describe, expect, it } from 'vitest';
import { logTime, startOrganization, startTcpProxy, testDatabaseUrl } from '@ganymede/testkit';
import { allocate, gateway, gatewayEvent, HISTORY_GATEWAY, PARTITION_LEASES, served, servedTimes, transition } from '../e2e/support.js';
import { startCluster } from './cluster.js';

/** PostgreSQL's URL with its port replaced by the proxy's. */
function through(port: number): string {
  const url = new URL(testDatabaseUrl());
  url.host = `127.0.0.1:${port}`;
  return url.toString();
}

/** Replicas, replica 0 reaching PostgreSQL through a proxy the test controls; closed after the test. */
async function clusterCutAt0(count: number) {
  const pg = new URL(testDatabaseUrl());
  const proxy = await startTcpProxy({ host: pg.hostname, port: Number(pg.port || 5432) });
  const cluster = await startCluster({
    count,
    databaseUrl: testDatabaseUrl(),
    databaseUrlOf: (n) => (n === 0 ? through(proxy.port) : testDatabaseUrl()),
    reaperIntervalMs: 100,
    env: PARTITION_LEASES,
  });
  return {
    proxy,
    cluster,
    close: async () => {
      proxy.set('pass');
      await cluster.close();
      await proxy.close();
    },
  };
}

describe('partitions between Ganymede and PostgreSQL', () => {
  it('Ganymede cut off from PostgreSQL past the lease: its gateway stops serving, nobody else is given the organization, and it resumes once healed', async () => {
    const { proxy, cluster, close } = await clusterCutAt0(1);
    try {
      const g = cluster.replicas[0]!;
      const a = await gateway(g, 'run', HISTORY_GATEWAY);
      const { organizationId, allocationId, whoami } = await allocate(g, a);
      const b = await gateway(g, 'run', HISTORY_GATEWAY);
      const from = a.proc.logs.length;
      proxy.set('blackhole');
      await gatewayEvent(a, 'serving_paused', from);
      expect(await served(a, organizationId)).toMatchObject({ status: 503, body: { error: 'not_serving' } });
      // Past lease + grace with nobody able to reach the database: no replica could end the allocation.
      const more = a.proc.logs.length;
      for (let i = 0; i < 3; i++) await gatewayEvent(a, 'lease_failed', a.proc.logs.length);
      expect(a.proc.logs.slice(more).filter((l) => l.event === 'serving_resumed')).toEqual([]);
      proxy.set('pass');
      // The control plane's heartbeat holds expiry back after an outage: the gateway's renewal gets through first.
      expect(await gatewayEvent(a, 'serving_resumed', from)).toMatchObject({ allocation_id: allocationId, epoch: whoami.epoch });
      expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: whoami.epoch } });
      expect(servedTimes(b, organizationId)).toEqual([]);
      expect(g.proc.logs.filter((l) => l.allocation_id === allocationId && l.transition === 'lease_expired')).toEqual([]);
    } finally {
      await close();
    }
  });

  it('one of three replicas cut off: its gateway stops serving, the others go on, the organization moves through them', async () => {
    const { proxy, cluster, close } = await clusterCutAt0(3);
    try {
      const [r0, r1, r2] = [cluster.replicas[0]!, cluster.replicas[1]!, cluster.replicas[2]!];
      const a = await gateway(r0, 'run', HISTORY_GATEWAY);
      const first = await allocate(r0, a);
      const b = await gateway(r1, 'run', HISTORY_GATEWAY);
      const second = await allocate(r1, b);
      const c = await gateway(r2, 'run', HISTORY_GATEWAY);

      const fromA = a.proc.logs.length;
      const fromB = b.proc.logs.length;
      proxy.set('blackhole');
      const paused = await gatewayEvent(a, 'serving_paused', fromA);
      // Either live replica's reaper ends it (the other finds nothing left to end).
      const ended = await Promise.race([
        transition(r1, first.allocationId, 'lease_expired'),
        transition(r2, first.allocationId, 'lease_expired'),
      ]);
      expect(logTime(paused)).toBeLessThan(logTime(ended));
      // The gateway on a live replica never stopped.
      expect(await served(b, second.organizationId)).toMatchObject({ status: 200, body: { epoch: second.whoami.epoch } });
      expect(b.proc.logs.slice(fromB).filter((l) => l.event === 'serving_paused')).toEqual([]);

      const moved = await startOrganization(r2, first.organizationId);
      expect(moved.res).toMatchObject({ status: 201, body: { gateway_id: c.gw.gateway_id } });
      expect(await served(c, first.organizationId)).toMatchObject({ status: 200 });
      expect(Math.max(...servedTimes(a, first.organizationId))).toBeLessThan(Math.min(...servedTimes(c, first.organizationId)));

      proxy.set('pass');
      expect(await gatewayEvent(a, 'allocation_lost', fromA)).toMatchObject({ reason: 'allocation_ended' });
      expect((await served(a, first.organizationId)).status).toBe(404);
    } finally {
      await close();
    }
  });
});
