/**
 * The platform's gateway (protocol v1) against this Ganymede, call by call (test/e2e/platform-gateway.test.ts lives
 * its whole life): its ready `{gateway_id}` must name the token's gateway, records the protocol each ready speaks
 * (a database CHECK allows only v1 and v2), and decides how the gateway is told of an allocation.
 */
import { randomUUID } from 'node:crypto';
import { findFreePort } from '@ganymede/testkit/free-port';
import { platformRequests, servePlatformGateway, type ReceivedCall } from '@ganymede/testkit/platform-gateway';
import { rawExchange } from '@ganymede/testkit/raw-http';
import { describe, expect, it } from 'vitest';
import { bearer, closedUrl, useGanymede } from './support.js';

const g = useGanymede({ notifyTimeoutMs: 1_500 });

const protocolOf = async (gatewayId: string) =>
  (await g.ganymede.db.query<{ protocol: string }>('SELECT protocol FROM gateways WHERE id = $1', [gatewayId])).rows[0]?.protocol;

async function addGateway(url: string) {
  const added = await g.client.addGateway({ headers: g.admin, body: { url } });
  if (added.status !== 201) throw new Error(`addGateway answered ${added.status}`);
  return added.body;
}

describe("the platform gateway's ready", () => {
  it('names its own gateway: 200, idle, protocol v1; the next ready the v2 way records v2', async () => {
    const gw = await addGateway(g.target.url);
    const answer = await rawExchange(g.url, platformRequests.ready(gw.token, gw.gateway_id));
    expect(answer).toMatchObject({ status: 200, body: { gateway_id: gw.gateway_id, allocation: null, reclaimed: false } });
    expect(await protocolOf(gw.gateway_id)).toBe('v1');
    const v2 = await g.client.ready({ headers: bearer(gw.token), body: { allocation_id: null, instance_id: randomUUID() } });
    expect(v2.status).toBe(200);
    expect(await protocolOf(gw.gateway_id)).toBe('v2');
  });

  it('names another gateway: 403 forbidden, and nothing changes (not its readiness, not its protocol)', async () => {
    const gw = await addGateway(g.target.url);
    const other = await addGateway(g.target.url);
    const before = await g.snapshot();
    const answer = await rawExchange(g.url, platformRequests.ready(gw.token, other.gateway_id));
    expect(answer).toMatchObject({ status: 403, body: { error: 'forbidden' } });
    expect(await g.snapshot()).toEqual(before);
  });

  it('the database refuses a protocol other than v1 and v2', async () => {
    const gw = await addGateway(g.target.url);
    await expect(g.ganymede.db.query(`UPDATE gateways SET protocol = 'v3' WHERE id = $1`, [gw.gateway_id])).rejects.toMatchObject({
      code: '23514',
    });
  });
});

describe('a v1 gateway is told of its allocation the old way', () => {
  it('GET /collab/ping, then POST /collab/start {}, never POST /allocated; its config then answers the allocation', async () => {
    const port = await findFreePort();
    const gw = await addGateway(`http://127.0.0.1:${port}`);
    const received: ReceivedCall[] = [];
    const configs: unknown[] = [];
    const platform = await servePlatformGateway({
      ganymedeUrl: g.url,
      gatewayId: gw.gateway_id,
      gatewayToken: gw.token,
      port,
      onCall: (call) => received.push(call),
      onExchange: (call, answer) => call === 'configOnStart' && configs.push(answer.body),
    });
    try {
      await platform.boot();
      const organizationId = randomUUID();
      const started = await g.client.start({ headers: await g.userToken(organizationId), body: { organization_id: organizationId } });
      expect(started).toMatchObject({ status: 201, body: { gateway_id: gw.gateway_id } });
      expect(received.map((c) => [c.method, c.url, c.body])).toEqual([
        ['GET', '/collab/ping', ''],
        ['POST', '/collab/start', '{}'],
      ]);
      expect(received[1]!.headers['content-type']).toBe('application/json');
      expect(received.some((c) => 'authorization' in c.headers)).toBe(false);
      expect(configs).toEqual([expect.objectContaining({ organization_id: organizationId, projects: [], members: [] })]);
      expect(g.target.received).toEqual([]);
    } finally {
      await platform.close();
    }
  });

  it('one that does not answer is rolled back (gateway_unreachable) and out of the pool: 503', async () => {
    const gw = await addGateway(await closedUrl());
    expect((await rawExchange(g.url, platformRequests.ready(gw.token, gw.gateway_id))).status).toBe(200);
    const organizationId = randomUUID();
    const started = await g.client.start({ headers: await g.userToken(organizationId), body: { organization_id: organizationId } });
    expect(started).toMatchObject({ status: 503, body: { error: 'no_gateway_available' } });
    const { rows } = await g.ganymede.db.query<{ ended_reason: string }>('SELECT ended_reason FROM allocations WHERE gateway_id = $1', [
      gw.gateway_id,
    ]);
    expect(rows).toEqual([{ ended_reason: 'gateway_unreachable' }]);
  });
});

describe("the platform gateway's stop", () => {
  it('{} with the organization token ends the allocation with reason stop', async () => {
    const { orgAuth, id } = await g.live();
    const answer = await rawExchange(g.url, platformRequests.stop(orgAuth.authorization.slice('Bearer '.length)));
    expect(answer).toMatchObject({ status: 200, body: { allocation_id: id, state: 'ended', ended_reason: 'stop' } });
  });
});
