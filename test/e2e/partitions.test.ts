/**
 * Partitions between a gateway and Ganymede, made real by a TCP proxy in between (the test kit's `startTcpProxy`):
 * who served the organization, and when. The gateways log each request they serve (`served`, at debug level):
 * the serving windows of two processes for one organization must never overlap.
 *
 * Leases: `PARTITION_LEASES` (support.ts); calls to Ganymede time out after 1 s (a loaded machine answers well within it).
 */
import { describe, expect, it } from 'vitest';
import { GANYMEDE_CLI, logTime, runCli, startOrganization, startTcpProxy } from '@ganymede/testkit';
import {
  allocate,
  ganymede,
  gateway,
  gatewayEvent,
  history,
  HISTORY_GATEWAY,
  PARTITION_LEASES,
  served,
  servedTimes,
  transition,
} from './support.js';

const LEASES = { ...PARTITION_LEASES, GANYMEDE_RESTART_GRACE_SECONDS: '8' };

/** A cluster of one Ganymede, gateway A reaching it through a proxy the test controls, and gateway B directly. */
async function partitioned(mode: 'run' | 'supervise' = 'run', gatewayEnv: NodeJS.ProcessEnv = {}) {
  const g = await ganymede({ reaperIntervalMs: 100, env: LEASES });
  const proxy = await startTcpProxy({ port: g.port });
  const a = await gateway(g, mode, { ...HISTORY_GATEWAY, ...gatewayEnv, GANYMEDE_URL: proxy.url });
  const { organizationId, allocationId, whoami } = await allocate(g, a);
  const b = await gateway(g, 'run', HISTORY_GATEWAY);
  return { g, proxy, a, b, organizationId, allocationId, whoami };
}

describe('partitions between a gateway and Ganymede', () => {
  it('cut off past its lease, a gateway stops serving before Ganymede ends its allocation; healed, it stands down', async () => {
    const { g, proxy, a, b, organizationId, allocationId } = await partitioned();
    const from = a.proc.logs.length;
    const expired = transition(g, allocationId, 'lease_expired');
    proxy.set('blackhole');
    const paused = await gatewayEvent(a, 'serving_paused', from);
    expect(await served(a, organizationId)).toMatchObject({ status: 503, body: { error: 'not_serving' } });
    const ended = await expired;
    expect(logTime(paused)).toBeLessThan(logTime(ended));

    // The organization's next /gateway/start gets the gateway that can reach Ganymede.
    const next = await startOrganization(g, organizationId);
    expect(next.res).toMatchObject({ status: 201, body: { gateway_id: b.gw.gateway_id } });
    expect(await served(b, organizationId)).toMatchObject({ status: 200 });
    expect((await served(a, organizationId)).status).toBe(503);

    proxy.set('pass');
    expect(await gatewayEvent(a, 'allocation_lost', from)).toMatchObject({ reason: 'allocation_ended' });
    expect((await served(a, organizationId)).status).toBe(404);
    expect(Math.max(...servedTimes(a, organizationId))).toBeLessThan(Math.min(...servedTimes(b, organizationId)));
    await proxy.close();
  });

  it('healed after a lost renewal, before the deadline: the gateway never stops serving', async () => {
    const { g, proxy, a, organizationId, allocationId, whoami } = await partitioned();
    const from = a.proc.logs.length;
    proxy.set('blackhole');
    const failed = await gatewayEvent(a, 'lease_failed', from);
    expect(Number(failed.serving_left_ms)).toBeGreaterThan(0);
    // Cut off, and still within its deadline: it serves.
    expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { epoch: whoami.epoch } });
    proxy.set('pass');
    const healed = a.proc.logs.length;
    await gatewayEvent(a, 'lease_renewed', healed);
    expect(a.proc.logs.slice(from).filter((l) => l.event === 'serving_paused')).toEqual([]);
    expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { epoch: whoami.epoch } });
    expect(await history(g, allocationId)).toMatchObject({ state: 'active', epoch: whoami.epoch });
    await proxy.close();
  });

  it('healed just after the deadline, before Ganymede could end the allocation: the gateway resumes at its epoch', async () => {
    const { g, proxy, a, organizationId, allocationId, whoami } = await partitioned();
    const from = a.proc.logs.length;
    proxy.set('blackhole');
    await gatewayEvent(a, 'serving_paused', from);
    expect(await served(a, organizationId)).toMatchObject({ status: 503, body: { error: 'not_serving' } });
    proxy.set('pass');
    const resumed = await gatewayEvent(a, 'serving_resumed', from);
    expect(resumed).toMatchObject({ allocation_id: allocationId, epoch: whoami.epoch });
    expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { allocation_id: allocationId, epoch: whoami.epoch } });
    const h = await history(g, allocationId);
    expect(h).toMatchObject({ state: 'active', epoch: whoami.epoch });
    expect(h.events.map((e) => e.kind)).toEqual(['allocated']);
    await proxy.close();
  });

  it.each([
    ['only what Ganymede sends is cut', 'cut-down'],
    ['only what the gateway sends is cut', 'cut-up'],
    ['every connection is reset', 'reset'],
  ] as const)('%s: the gateway stops serving at its deadline all the same, and resumes once healed', async (_, mode) => {
    const { proxy, a, organizationId } = await partitioned();
    const from = a.proc.logs.length;
    proxy.set(mode);
    await gatewayEvent(a, 'serving_paused', from);
    expect((await served(a, organizationId)).status).toBe(503);
    proxy.set('pass');
    await gatewayEvent(a, 'serving_resumed', from);
    expect((await served(a, organizationId)).status).toBe(200);
    await proxy.close();
  });

  it('a slow path that still answers within the deadline keeps the gateway serving', async () => {
    const { proxy, a, organizationId, whoami } = await partitioned('run', { GATEWAY_REQUEST_TIMEOUT_MS: '3000' });
    const from = a.proc.logs.length;
    proxy.set({ slowMs: 300 });
    // Two renewals through the slow path, each answered in time.
    await gatewayEvent(a, 'lease_renewed', from);
    await gatewayEvent(a, 'lease_renewed', a.proc.logs.length);
    expect(a.proc.logs.slice(from).filter((l) => l.event === 'serving_paused')).toEqual([]);
    expect(await served(a, organizationId)).toMatchObject({ status: 200, body: { epoch: whoami.epoch } });
    await proxy.close();
  });

  it('cut off in the middle of a hot restart: the old process stops serving before the organization can move', async () => {
    const { g, proxy, a, b, organizationId, allocationId } = await partitioned('supervise', { GATEWAY_HANDOVER_TIMEOUT_MS: '4000' });
    const from = a.proc.logs.length;
    const started = a.proc.waitForLog((l) => l.event === 'handover_started', { from, timeoutMs: 30_000 });
    void a.cli('reload');
    await started;
    proxy.set('blackhole');
    const paused = await gatewayEvent(a, 'serving_paused', from);
    // The allocation ends by its restart deadline or its lease, whichever the partition left: after the pause.
    const ended = await g.proc.waitForLog(
      (l) => l.allocation_id === allocationId && (l.transition === 'restart_timed_out' || l.transition === 'lease_expired'),
      { timeoutMs: 30_000 },
    );
    expect(logTime(paused)).toBeLessThan(logTime(ended));
    const next = await startOrganization(g, organizationId);
    expect(next.res).toMatchObject({ status: 201, body: { gateway_id: b.gw.gateway_id } });
    expect(await served(b, organizationId)).toMatchObject({ status: 200 });
    expect((await served(a, organizationId)).status).not.toBe(200);
    // Never two at once: every request A's processes served was taken before B's first.
    expect(Math.max(...servedTimes(a, organizationId))).toBeLessThan(Math.min(...servedTimes(b, organizationId)));
    proxy.set('pass');
    await proxy.close();
  });
});

describe('lease margins', () => {
  it('ganymede serve refuses settings that would let a cut-off gateway serve past its allocation, and says why', async () => {
    const refused = runCli(GANYMEDE_CLI, ['serve', '--memory', '--port', '0'], { ...LEASES, GANYMEDE_RENEW_DEADLINE_MS: '10000' });
    await expect(refused).rejects.toMatchObject({
      code: 1,
      stderr: expect.stringMatching(/--renew-deadline-ms 10000 is not below \(lease 4 s \+ grace 6 s\)/),
    });
  });
});
