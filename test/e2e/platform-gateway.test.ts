/**
 * A rolling upgrade, Ganymede first: the platform's gateway (protocol v1), as a real process sending its requests
 * byte for byte (packages/testkit/src/platform-gateway.ts), lives a whole life against this Ganymede: ready,
 * allocated (Ganymede's /collab/ping and /collab/start reach it), config, a SIGKILL and its successor's reclaim
 * with config and ready, and its permanent stop `{}` ending the allocation.
 */
import { ConfigResponse } from '@ganymede/contracts';
import {
  adminToken,
  platformExchange,
  registerGateway,
  startGanymedeProcess,
  startOrganization,
  startPlatformGatewayProcess,
  stopProcess,
  type GanymedeProcess,
  type LoggedProcess,
} from '@ganymede/testkit';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

let g: GanymedeProcess;
const processes: LoggedProcess[] = [];
beforeAll(async () => {
  g = await startGanymedeProcess();
});
afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await g?.proc.kill();
});

const start = (gw: Awaited<ReturnType<typeof registerGateway>>) => {
  const p = startPlatformGatewayProcess(g, gw);
  processes.push(p);
  return p;
};

describe("the platform's gateway against this Ganymede", () => {
  it('ready, allocated the old way, config, SIGKILL and reclaim, stop {}: one allocation, from allocated to stopped', async () => {
    const gw = await registerGateway(g);
    const admin = { authorization: `Bearer ${await adminToken(g)}` };

    // Boot: no allocation yet (config 404), then the idle ready the platform's way.
    const first = start(gw);
    expect(await platformExchange(first, 'configAtBoot')).toMatchObject({ status: 404, body: { error: 'no_allocation' } });
    const ready = await platformExchange(first, 'ready');
    expect(ready).toMatchObject({ status: 200, body: { gateway_id: gw.gateway_id, allocation: null } });

    // Allocated: told with GET /collab/ping, then POST /collab/start {} (never POST /allocated), which reads config.
    const { organizationId, res } = await startOrganization(g);
    expect(res.status).toBe(201);
    if (res.status !== 201) return;
    expect(res.body).toMatchObject({ gateway_id: gw.gateway_id, organization_id: organizationId, epoch: 1 });
    const allocationId = res.body.allocation_id;
    const calls = first.logs.filter((l) => l.event === 'called');
    expect(calls.map((c) => [c.method, c.url])).toEqual([
      ['GET', '/collab/ping'],
      ['POST', '/collab/start'],
    ]);
    expect(calls[1]).toMatchObject({ headers: { 'content-type': 'application/json' }, body: '{}' });
    const config = await platformExchange(first, 'configOnStart');
    expect(config.status).toBe(200);
    // The fields the platform's gateway reads are there (empty: Ganymede keeps no directory of organizations).
    expect(config.body).toMatchObject({
      gateway_id: gw.gateway_id,
      organization_id: organizationId,
      allocation_id: allocationId,
      organization_name: '',
      projects: [],
      project_names: [],
      members: [],
    });
    expect(ConfigResponse.strict().safeParse(config.body).success).toBe(true);

    // SIGKILL: gone without a word. Its successor reads config (the same allocation) and says ready the old way.
    expect(await first.kill()).toEqual({ code: null, signal: 'SIGKILL' });
    const successor = start(gw);
    const reread = await platformExchange(successor, 'configAtBoot');
    expect(reread).toMatchObject({ status: 200, body: { allocation_id: allocationId, organization_id: organizationId, state: 'active' } });
    expect(await platformExchange(successor, 'ready')).toMatchObject({
      status: 200,
      body: { allocation: { allocation_id: allocationId, state: 'active' }, reclaimed: false },
    });
    const held = await g.api.allocation({ headers: admin, params: { allocation_id: allocationId } });
    expect(held).toMatchObject({ status: 200, body: { state: 'active', ended_at: null } });
    // Not offered to another organization meanwhile: the gateway holds its allocation.
    expect((await startOrganization(g)).res.status).toBe(503);

    // Its permanent stop: `{}` with the organization token, reason stop.
    expect(await stopProcess(successor)).toEqual({ code: 0, signal: null });
    expect(await platformExchange(successor, 'stop')).toMatchObject({
      status: 200,
      body: { allocation_id: allocationId, state: 'ended', ended_reason: 'stop' },
    });
    const ended = await g.api.allocation({ headers: admin, params: { allocation_id: allocationId } });
    expect(ended.status).toBe(200);
    if (ended.status !== 200) return;
    expect(ended.body).toMatchObject({ state: 'ended', ended_reason: 'stop' });
    expect(ended.body.events.map((e) => [e.kind, e.reason])).toEqual([
      ['allocated', null],
      ['stopped', 'stop'],
    ]);
  });
});
