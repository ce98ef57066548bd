import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestGanymede, type TestGanymede } from './support.js';

let g: TestGanymede;
beforeAll(async () => {
  g = await startTestGanymede();
});
afterAll(async () => {
  await g.close();
});

it('allocates, restarts, reclaims, stops', async () => {
  const gw = await g.addReadyGateway(g.target.url);
  const org = randomUUID();
  const { allocation, orgAuth } = await g.allocateTo(org, gw.auth);
  expect(allocation.epoch).toBe(1);
  const r = await g.client.restart({ headers: orgAuth, body: { reason: 'reload', epoch: 1 } });
  expect(r.status).toBe(200);
  const again = await g.client.start({ headers: await g.userToken(org), body: { organization_id: org } });
  expect(again).toMatchObject({ status: 200, body: { state: 'restarting', allocation_id: allocation.allocation_id } });
  const ready = await g.client.ready({ headers: gw.auth, body: { allocation_id: allocation.allocation_id, instance_id: randomUUID() } });
  expect(ready).toMatchObject({ status: 200, body: { reclaimed: true, allocation: { epoch: 2, state: 'active' } } });
  const stale = await g.client.stop({ headers: orgAuth, body: { reason: 'stop', epoch: 1 } });
  expect(stale).toMatchObject({ status: 409, body: { error: 'stale_epoch' } });
  const stop = await g.client.stop({ headers: orgAuth, body: { reason: 'stop', epoch: 2 } });
  expect(stop).toMatchObject({ status: 200, body: { state: 'ended', ended_reason: 'stop' } });
  const hist = await g.client.allocation({ headers: g.admin, params: { allocation_id: allocation.allocation_id } });
  expect(hist.status === 200 && hist.body.events.map((e) => e.kind)).toEqual(['allocated', 'restart_requested', 'reclaimed', 'stopped']);
});
